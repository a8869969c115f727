"""The comparison benchmark: its configs train, its table's statistics, and the runner end to
end on a tiny built-in dataset (reusing finished rows on a second call)."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pytest
import torch
from ds2d2_testlib import (
    REPO,
    SYNTHETIC_FILES,
    build,
    load_config,
    make_batch,
    placeholder_data,
    without_pretrained,
)

from ds2d2_mm.tooling.compare import (
    COMPARE_PRESETS,
    CompareBench,
    ComparePreset,
    Row,
    RowResult,
    difference,
    discover_bench,
    format_table,
    median_step_time,
    read_bench_row,
    summarise,
    trainable_elements,
)
from ds2d2_mm.utils.errors import ConfigError

BENCH = sorted((REPO / "configs" / "demo" / "bench").glob("*.py"))


def test_every_bench_config_is_a_row_or_a_frozen_part():
    preset = COMPARE_PRESETS["demo"]
    used = {preset.teacher, preset.amplifier, *(r.config for r in preset.rows)}
    assert {str(p.relative_to(REPO)) for p in BENCH} == used
    assert len({r.name for r in preset.rows}) == len(preset.rows) == 18
    # the rows of another family name the row they are measured against
    family = {r.name: r.baseline for r in preset.rows if r.group == "family"}
    assert family == {"RTMDet-tiny": "RTMDet-tiny",
                      "DS2D2 RetinaNet->RTMDet-tiny": "RTMDet-tiny"}


#: A method added by dropping one config into a bench folder.
NEW_METHOD = """_base_ = ['./ds2d2.py']
bench_row = dict(name='NewKD', group='method', order=75)
model = dict(amplifier_config=None, amplifier_ckpt=None, distill_cfg=dict(
    explicit=dict(_delete_=True, type='FitNetLoss'), amplifiers=dict(full=0.0, high=0.0)))
"""


def test_a_config_dropped_into_a_bench_folder_is_a_row(tmp_path):
    from mmengine.config import Config

    configs = tmp_path / "configs"
    shutil.copytree(REPO / "configs", configs)  # the bench configs inherit from ../ and ../../
    bench = configs / "demo" / "bench"
    (bench / "newkd.py").write_text(NEW_METHOD)
    preset = ComparePreset(bench=str(bench), work_root=str(tmp_path / "work"),
                           test_ann="annotations/test.json")
    shipped = [r.name for r in COMPARE_PRESETS["demo"].rows]
    names = [r.name for r in preset.rows]
    at = shipped.index("CrossKD") + 1  # order 75: after CrossKD (70), before prediction KD (80)
    assert names == shipped[:at] + ["NewKD"] + shipped[at:]
    row = preset.rows[at]
    assert (row.config, row.group) == (f"{bench}/newkd.py", "method")
    assert preset.teacher == f"{bench}/teacher.py" and preset.amplifier == f"{bench}/hfamp.py"
    chosen = CompareBench(preset, rows=["NewKD"])
    assert [r.name for r in chosen.rows] == ["baseline", "DS2D2", "NewKD"]
    # mmengine's Config takes the key as a plain value (merged over ds2d2.py's declaration)
    cfg = Config.fromfile(row.config)
    assert cfg.bench_row == dict(name="NewKD", group="method", order=75)
    assert cfg.model.distill_cfg.explicit.type == "FitNetLoss"


def test_the_runner_ignores_the_row_declaration(tmp_path):
    from ds2d2_mm.cli import train

    config = REPO / "configs" / "demo" / "bench" / "baseline.py"
    data = placeholder_data(tmp_path / "data", **SYNTHETIC_FILES)
    runner = train.build_runner(train.parse_args([str(config), "--work-dir", str(tmp_path),
                                                  "--cfg-options", *data]))
    assert runner.cfg.bench_row == read_bench_row(config)
    assert type(runner.model).__name__ == "RetinaNet"


@pytest.mark.parametrize(("line", "key", "says"), [
    ("bench_row = dict(name='X', group='methods', order=1)", "bench_row.group", "one of"),
    ("bench_row = dict(name='X', group='method')", "bench_row.order", "missing"),
    ("bench_row = dict(name='X', group='method', order='1')", "bench_row.order", "integer"),
    ("bench_row = dict(name='X', group='method', order=1, colour='red')", "bench_row.colour",
     "not a key"),
    ("bench_row = dict(name=NAME, group='method', order=1)", "bench_row.name", "literal"),
    ("bench_row = dict(name='', group='method', order=1)", "bench_row.name", "non-empty"),
    ("bench_row = {'name': 'X', 'group': 'method', 'order': True}", "bench_row.order",
     "integer"),
    ("bench_row = dict(role='student')", "bench_row.role", "one of"),
    ("bench_row = dict(role='teacher', order=1)", "bench_row.order", "role alone"),
    ("bench_row = ['X', 'method', 1]", "bench_row", "must be dict"),
    ("model = dict()", "bench_row", "no top-level"),
    ("bench_row = dict(name='FGD', group='method', order=1)", "bench_row.name", "fgd.py too"),
    ("bench_row = dict(name='X', group='family', order=1, baseline='Y')", "bench_row.baseline",
     "no row of the bench"),
    ("bench_row = dict(name='X', group='family', order=1, baseline=3)", "bench_row.baseline",
     "a string"),
], ids=lambda v: v if isinstance(v, str) and v.startswith("bench_row") else None)
def test_a_malformed_row_declaration_is_refused_naming_file_and_key(tmp_path, line, key, says):
    bench = tmp_path / "bench"
    shutil.copytree(REPO / "configs" / "demo" / "bench", bench)
    bad = bench / "zz_bad.py"
    bad.write_text(f"_base_ = ['./ds2d2.py']\n{line}\n")
    with pytest.raises(ConfigError) as err:
        discover_bench(bench)
    message = str(err.value)
    assert message.startswith(f"{bad}: "), message
    assert re.search(re.escape(key) + r"\b", message) and says in message, message


def test_a_bench_needs_one_teacher_amplifier_baseline_and_ds2d2(tmp_path):
    bench = tmp_path / "bench"
    shutil.copytree(REPO / "configs" / "demo" / "bench", bench)
    (bench / "teacher2.py").write_text("bench_row = dict(role='teacher')\n")
    with pytest.raises(ConfigError, match=r"2 configs declare bench_row = dict\(role='teacher'\)"):
        discover_bench(bench)
    (bench / "teacher2.py").unlink()
    (bench / "baseline.py").unlink()
    with pytest.raises(ConfigError, match=r"0 rows of group 'baseline'"):
        discover_bench(bench)


@pytest.mark.parametrize("path", BENCH, ids=lambda p: p.name)
def test_bench_config_trains_one_iteration(path):
    cfg = load_config(path)
    if path.stem not in ("teacher", "hfamp"):
        assert cfg.train_cfg.max_epochs == 6  # one schedule for every row
    model_cfg = without_pretrained(cfg.model.to_dict())
    if model_cfg["type"] == "SpectralDistiller":
        model_cfg.update(teacher_ckpt=None, amplifier_ckpt=None, allow_random_teacher=True)
    if model_cfg["type"] == "HighFrequencyAmplifier":
        model_cfg["teacher_ckpt"] = None
    model = build(model_cfg)
    inputs, samples = make_batch(model, size=96, num_classes=4)
    losses = model.loss(inputs, samples)
    total = sum(sum(v) if isinstance(v, list) else v for k, v in losses.items() if "loss" in k)
    assert torch.isfinite(total)
    total.backward()


#: Bench configs whose comments say their method's values are published, and the DIOR config of the
#: same method whose published values (tests/configs/test_compare_configs.py) they share.
SAME_AS_DIOR = {"fitnet": "retina_r101_r18_dior_fitnet.py", "fgd": "retina_r101_r18_dior_fgd.py",
                "pkd": "retina_r101_r18_dior_pkd.py", "mgd": "retina_r101_r18_dior_mgd.py",
                "crosskd": "retina_r101_r18_dior_crosskd.py"}
BENCH_CHECKED = {REPO / "configs" / "demo" / "bench" / f"{n}.py" for n in SAME_AS_DIOR}


@pytest.mark.parametrize("name", sorted(SAME_AS_DIOR))
def test_bench_methods_take_their_published_values(name):
    from test_compare_configs import FEATURE, PREDICTION

    cfg = without_pretrained(load_config(REPO / "configs/demo/bench" / f"{name}.py").model
                             .to_dict())
    cfg.update(teacher_ckpt=None, amplifier_ckpt=None, allow_random_teacher=True)
    model = build(cfg)
    dior = SAME_AS_DIOR[name]
    if dior in FEATURE:
        for key, value in FEATURE[dior].items():
            if key == "type":
                assert type(model.explicit).__name__ == value
            elif key == "levels":  # None: every level (4 here); PKD: the first four
                assert model.explicit.levels == (value or (0, 1, 2, 3))
            else:
                assert getattr(model.explicit, key) == value, key
    else:
        implicit, kd_cls, kd_reg, _ = PREDICTION[dior]
        assert type(model.implicit).__name__ == implicit["type"]
        assert model.implicit.weight == implicit["weight"]
        # this project's: the bench head has 2 convs, the teacher's takes over after the first
        assert model.implicit.reused_teacher_head_idx == 1
        # the bench baseline's FPN, not the official CrossKD students' (configs/compare/README.md)
        from test_compare_configs import BASELINE_EXTRA_CONVS, CROSSKD_OFFICIAL_EXTRA_CONVS

        bench = REPO / "configs/demo/bench"
        baseline = load_config(bench / "baseline.py").model.neck.add_extra_convs
        assert cfg["student"]["neck"]["add_extra_convs"] == baseline == BASELINE_EXTRA_CONVS
        assert f"'{CROSSKD_OFFICIAL_EXTRA_CONVS}'" in (bench / f"{name}.py").read_text()
        assert (type(model.kd_cls).__name__, model.kd_cls.beta) == (kd_cls["type"], kd_cls["beta"])
        assert type(model.kd_reg).__name__ == kd_reg["type"]
    assert model.amplifiers == []


def result(name, group, seed, ap, step=0.1, params=0):
    return RowResult(row=Row(name, f"{name}.py", group), seed=seed,
                     metrics={"AP": ap, "AP50": 2 * ap, "APs": ap / 2}, extra_params=params,
                     step_time=step)


def test_table_statistics_by_hand():
    results = [result("baseline", "baseline", s, ap, step=0.1)
               for s, ap in enumerate([0.20, 0.22, 0.21])]
    results += [result("DS2D2", "ds2d2", s, ap, step=0.25, params=1024)
                for s, ap in enumerate([0.30, 0.31, 0.32])]
    results += [result("FitNet", "method", s, ap, step=0.15) for s, ap in enumerate([0.29, 0.33,
                                                                                     0.31])]
    summary = {e["name"]: e for e in summarise(results)}
    mean, sd = summary["DS2D2"]["stats"]["AP"]
    assert mean == pytest.approx(0.31) and sd == pytest.approx(0.01)
    assert summary["DS2D2"]["rel_time"] == pytest.approx(2.5)
    diff, se = difference([0.20, 0.22, 0.21], [0.30, 0.31, 0.32])
    assert diff == pytest.approx(-0.10)
    assert se == pytest.approx(math.sqrt(0.01**2 / 3 + 0.01**2 / 3))
    table = format_table(list(summary.values()), [0, 1, 2])
    lines = {line.split(" | ")[0].strip("| "): line for line in table.splitlines()
             if line.startswith("| ") and "---" not in line}
    assert "| 31.0 ± 1.0 | 62.0 ± 2.0 | 15.5 ± 0.5 | 1,024 | 2.50x |" in lines["DS2D2"]
    assert lines["baseline"].endswith("| -10.0* |")  # 10 points, far beyond 2 standard errors
    assert lines["FitNet"].endswith("| +0.0 |")  # within the noise: no star
    one_seed = format_table(summarise([result("DS2D2", "ds2d2", 0, 0.3),
                                       result("baseline", "baseline", 0, 0.1)]), [0])
    assert "| -20.0 |" in one_seed  # no standard error from one seed: never starred


def test_step_time_and_trainable_elements_from_files(tmp_path):
    vis = tmp_path / "run" / "20261201_000000" / "vis_data"
    vis.mkdir(parents=True)
    times = [5.0] + [0.2] * 8 + [0.3]  # a slow first logging window is left out
    vis.joinpath("scalars.json").write_text("\n".join(
        json.dumps({"loss": 1.0, "time": t, "step": 10 * (i + 1)}) for i, t in enumerate(times)))
    assert median_step_time(tmp_path / "run") == pytest.approx(0.2)
    assert median_step_time(tmp_path / "none") is None
    ckpt = tmp_path / "d.pth"
    adam = {0: {"step": torch.tensor(3.0), "exp_avg": torch.zeros(10),
                "exp_avg_sq": torch.zeros(10)},
            1: {"step": torch.tensor(3.0), "exp_avg": torch.zeros(2, 3),
                "exp_avg_sq": torch.zeros(2, 3)}}
    torch.save({"state_dict": {"student.w": torch.zeros(10), "decomposer.filter": torch.zeros(99)},
                "optimizer": {"state": adam, "param_groups": []}}, ckpt)
    assert trainable_elements(ckpt) == 16  # buffers (the filter) do not count
    torch.save({"optimizer": {"state": {0: {"momentum_buffer": torch.zeros(4, 4)}}}}, ckpt)
    assert trainable_elements(ckpt) == 16
    torch.save({"state_dict": {}}, ckpt)
    with pytest.raises(ValueError, match="no optimizer state"):
        trainable_elements(ckpt)


def test_a_family_row_is_measured_against_its_own_baseline():
    chosen = CompareBench(COMPARE_PRESETS["demo"], rows=["DS2D2 RetinaNet->RTMDet-tiny"])
    assert [r.name for r in chosen.rows] == ["baseline", "DS2D2", "RTMDet-tiny",
                                             "DS2D2 RetinaNet->RTMDet-tiny"]
    het = chosen.rows[-1]
    assert not het.alone and chosen.rows[2].alone and chosen.rows[0].alone
    assert chosen._baseline(het).config == "configs/demo/bench/rtmdet_tiny.py"
    assert chosen._baseline(chosen.rows[1]).name == "baseline"

    def family(name, seed, step, base="RTMDet-tiny"):
        return RowResult(row=Row(name, f"{name}.py", "family", base), seed=seed,
                         metrics={"AP": 0.1, "AP50": 0.2, "APs": 0.05}, step_time=step)

    results = [result("baseline", "baseline", 0, 0.2, step=0.1),
               family("RTMDet-tiny", 0, 0.3), family("pair", 0, 0.9)]
    summary = {e["name"]: e for e in summarise(results)}
    assert summary["pair"]["rel_time"] == pytest.approx(3.0)  # against RTMDet-tiny, not 0.1
    assert summary["RTMDet-tiny"]["rel_time"] == pytest.approx(1.0)


def test_unknown_rows_are_named():
    with pytest.raises(ValueError, match=r"unknown rows \['FitNt'\]"):
        CompareBench(COMPARE_PRESETS["demo"], rows=["FitNt"])


@pytest.mark.slow
def test_runner_end_to_end_and_reuse(tmp_path, capsys):
    one_epoch = ["train_cfg.max_epochs=1", "param_scheduler.1.end=1",
                 "default_hooks.checkpoint.interval=1", "train_dataloader.num_workers=0",
                 "train_dataloader.persistent_workers=False", "test_dataloader.num_workers=0",
                 "test_dataloader.persistent_workers=False"]
    kwargs = dict(seeds=[0], rows=["CrossKD"], work_root=tmp_path / "work",
                  extra_options=one_epoch, data_root=tmp_path / "data",
                  synthetic=dict(num_train=8, num_val=4, num_test=4, img_size=96))
    results = CompareBench(COMPARE_PRESETS["demo"], **kwargs).run(monitor_every=5)
    assert [(r.row.name, r.seed) for r in results] == [("baseline", 0), ("DS2D2", 0),
                                                       ("CrossKD", 0)]
    work = tmp_path / "work" / "seed0"
    for r in results:
        # one epoch on 8 images may detect nothing: the metric is then missing (NaN, shown '-')
        assert set(r.metrics) == {"AP", "AP50", "APs"}
        assert r.step_time is not None and r.step_time > 0
    for scored in ("baseline", "ds2d2/student_test", "crosskd/student_test"):
        assert (work / scored / "test_metrics.json").is_file()  # the exported student, tested
    assert results[1].extra_params == 32 * 32  # the DISW adapter; CrossKD adds none
    assert results[2].extra_params == 0
    table = (tmp_path / "work" / "compare.md").read_text()
    assert "| CrossKD | method | 1 |" in table
    out = capsys.readouterr().out
    assert "runs done" in out and "| DS2D2 | ds2d2 | 1 |" in out
    # a second call reuses every run and score
    logs = sorted((tmp_path / "work" / "seed0" / "logs").glob("*.log"))
    sizes = [p.stat().st_size for p in logs]
    again = CompareBench(COMPARE_PRESETS["demo"], **kwargs).run(monitor_every=5)
    assert [json.dumps(r.metrics) for r in again] == [json.dumps(r.metrics) for r in results]
    text = [p.read_text() for p in logs]
    assert all("done before" in t[s:] and "evaluated before" in t[s:]
               for t, s in zip(text, sizes, strict=True))
    assert not any(Path(p).name.startswith("$") for p in logs)
