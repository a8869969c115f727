"""LoadMultiBandImage, raster layouts and errors, streaming band statistics (rasters written here
with tifffile)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

tifffile = pytest.importorskip("tifffile")

BAND_COUNTS = (1, 4, 13)
DTYPES = (np.uint8, np.uint16, np.float32)


def raster(bands: int, dtype, seed: int = 0, size: tuple[int, int] = (12, 10)) -> np.ndarray:
    """A random ``(H, W, C)`` raster covering ``dtype``'s range (floats: signed, fractional)."""
    rng = np.random.default_rng(seed)
    shape = (*size, bands)
    if np.issubdtype(dtype, np.integer):
        return rng.integers(0, np.iinfo(dtype).max, shape, endpoint=True).astype(dtype)
    return (rng.standard_normal(shape) * 1000).astype(dtype)


def write(path: Path, hwc: np.ndarray, layout: str) -> Path:
    """Write ``hwc`` ``(H, W, C)`` as ``layout``: 'contig' (H, W, C; PlanarConfiguration 1),
    'separate' (C, H, W; PlanarConfiguration 2) or 'pages' (C, H, W; one band per page).
    One band is written as a plain (H, W) image."""
    if hwc.shape[-1] == 1:
        tifffile.imwrite(path, hwc[..., 0], photometric="minisblack")
    elif layout == "contig":
        tifffile.imwrite(path, hwc, photometric="minisblack", planarconfig="contig")
    elif layout == "separate":
        tifffile.imwrite(path, np.moveaxis(hwc, -1, 0), photometric="minisblack",
                         planarconfig="separate")
    else:
        tifffile.imwrite(path, np.moveaxis(hwc, -1, 0), photometric="minisblack")
    return path


def load(path: Path, **kwargs) -> dict:
    from ds2d2_mm.datasets import LoadMultiBandImage

    return LoadMultiBandImage(**kwargs)(dict(img_path=str(path)))


@pytest.mark.parametrize("layout", ["contig", "separate", "pages"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bands", BAND_COUNTS)
def test_values_equal_what_was_written_in_every_layout_and_dtype(tmp_path, bands, dtype, layout):
    data = raster(bands, dtype)
    path = write(tmp_path / "r.tif", data, layout)
    out = load(path, to_float32=False)
    assert out["img"].dtype == dtype
    np.testing.assert_array_equal(out["img"], data)
    assert out["img_shape"] == out["ori_shape"] == data.shape[:2]
    as_float = load(path)["img"]
    assert as_float.dtype == np.float32 and as_float.shape == data.shape
    np.testing.assert_array_equal(as_float, data.astype(np.float32))


@pytest.mark.parametrize("layout", ["contig", "separate"])
def test_band_selection_keeps_the_given_bands_in_order(tmp_path, layout):
    data = raster(13, np.uint16, seed=1)
    path = write(tmp_path / "s2.tif", data, layout)
    picked = [3, 2, 1, 7, -1]
    out = load(path, bands=picked, expected_bands=13)
    np.testing.assert_array_equal(out["img"], data[..., picked].astype(np.float32))


def test_geotiff_tags_do_not_matter(tmp_path):
    """A GeoTIFF is a TIFF with extra tags (here ModelPixelScale, ModelTiepoint, GeoKeys)."""
    data = raster(4, np.uint16, seed=2)
    geo = [(33550, "d", 3, (10.0, 10.0, 0.0)), (33922, "d", 6, (0, 0, 0, 500000.0, 4e6, 0)),
           (34735, "H", 8, (1, 1, 0, 1, 1024, 0, 1, 1))]
    tifffile.imwrite(tmp_path / "geo.tif", data, photometric="minisblack",
                     planarconfig="contig", extratags=geo, compression="zlib")
    np.testing.assert_array_equal(load(tmp_path / "geo.tif", to_float32=False)["img"], data)


def test_band_count_mismatch_names_file_and_both_counts(tmp_path):
    from ds2d2_mm.datasets import ImageError

    path = write(tmp_path / "four.tif", raster(4, np.uint8), "contig")
    with pytest.raises(ImageError, match=r"four\.tif.*has 4 bands.*expects 13"):
        load(path, expected_bands=13)


def test_band_index_out_of_range_names_file_index_and_count(tmp_path):
    from ds2d2_mm.datasets import ImageError

    path = write(tmp_path / "four.tif", raster(4, np.uint8), "separate")
    with pytest.raises(ImageError, match=r"four\.tif.*band index 4 .*has 4 bands"):
        load(path, bands=[0, 4])


@pytest.mark.parametrize("cut", [0.5, 0.999, 8 / 1e9])
def test_truncated_or_broken_tiff_names_the_file(tmp_path, cut):
    from ds2d2_mm.datasets import ImageError

    path = write(tmp_path / "whole.tif", raster(4, np.uint16), "separate")
    data = path.read_bytes()
    bad = tmp_path / "cut.tif"
    bad.write_bytes(data[:max(8, int(len(data) * cut))])
    with pytest.raises(ImageError, match=r"cut\.tif"):
        load(bad)
    (tmp_path / "junk.tif").write_bytes(b"not a tiff at all")
    with pytest.raises(ImageError, match=r"junk\.tif: cannot read as TIFF"):
        load(tmp_path / "junk.tif")
    with pytest.raises(ImageError, match=r"missing\.tif"):
        load(tmp_path / "missing.tif")


def test_truncated_tiled_compressed_tiff_names_the_file(tmp_path):
    from ds2d2_mm.datasets import ImageError

    path = tmp_path / "tiles.tif"
    tifffile.imwrite(path, raster(4, np.float32, size=(64, 64)), photometric="minisblack",
                     planarconfig="contig", tile=(16, 16), compression="zlib")
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(ImageError, match=r"tiles\.tif: truncated TIFF"):
        load(path)


def test_nodata_is_masked_and_filled_per_band(tmp_path):
    data = raster(4, np.uint16, seed=3)
    data[0, :3] = 0  # all bands
    data[5, 5, 2] = 0  # one band only
    path = write(tmp_path / "nd.tif", data, "contig")
    fill = [10.5, 20.5, 30.5, 40.5]
    out = load(path, nodata=0, fill=fill)
    mask = out["nodata_mask"]
    assert mask.shape == data.shape and mask.dtype == bool
    np.testing.assert_array_equal(mask, data == 0)
    expected = np.where(data == 0, np.asarray(fill, np.float32), data.astype(np.float32))
    np.testing.assert_array_equal(out["img"], expected)
    # default fill is 0; integer output rounds the fill
    np.testing.assert_array_equal(load(path, nodata=0)["img"][0, 0], 0)
    ints = load(path, nodata=0, fill=fill, to_float32=False)["img"]
    assert ints.dtype == np.uint16 and ints[0, 0].tolist() == [10, 20, 30, 40]


def test_nodata_fill_from_a_band_stats_file_and_nan_nodata(tmp_path):
    data = raster(3, np.float32, seed=4)
    data[2, 2] = np.nan
    path = write(tmp_path / "nan.tif", data, "separate")
    stats = tmp_path / "stats.json"
    stats.write_text(json.dumps({"bands": 3, "mean": [1.0, 2.0, 3.0], "std": [1, 1, 1]}))
    out = load(path, nodata=float("nan"), fill=str(stats))
    assert out["img"][2, 2].tolist() == [1.0, 2.0, 3.0]
    assert out["nodata_mask"].sum() == 3 and np.isfinite(out["img"]).all()


def test_nodata_everywhere_names_the_file(tmp_path):
    from ds2d2_mm.datasets import ImageError

    path = write(tmp_path / "empty.tif", np.full((8, 8, 4), 65535, np.uint16), "contig")
    with pytest.raises(ImageError, match=r"empty\.tif: every value .*nodata"):
        load(path, nodata=65535)
    assert load(path, nodata=0)["img"].max() == 65535  # another nodata value: nothing masked


def test_fill_length_must_match_the_kept_bands(tmp_path):
    from ds2d2_mm.datasets import ImageError

    with pytest.raises(ValueError, match="fill has 3 values for 2 bands"):
        load(tmp_path / "x.tif", bands=[0, 1], fill=[1, 2, 3])
    data = raster(4, np.uint8)
    data[0, 0] = 0
    path = write(tmp_path / "f.tif", data, "contig")
    with pytest.raises(ImageError, match=r"f\.tif: fill has 3 values but 4 bands"):
        load(path, nodata=0, fill=[1, 2, 3])


def test_mmdet_resize_flip_and_pack_keep_the_bands(tmp_path):
    """mmcv's cv2 resize handles 4 and 13 bands exactly as band-by-band resizing."""
    import mmcv
    from mmcv.transforms import Compose

    for bands in BAND_COUNTS:
        data = raster(bands, np.float32, seed=bands, size=(20, 30))
        path = write(tmp_path / f"b{bands}.tif", data, "separate")
        pipe = Compose([dict(type="LoadMultiBandImage", expected_bands=bands),
                        dict(type="Resize", scale=(15, 10), keep_ratio=False),
                        dict(type="RandomFlip", prob=1.0, direction="horizontal"),
                        dict(type="PackDetInputs")])
        out = pipe(dict(img_path=str(path), img_id=0, instances=[]))
        img = out["inputs"]
        assert tuple(img.shape) == (bands, 10, 15)
        per_band = np.stack([mmcv.imresize(np.ascontiguousarray(data[..., c]), (15, 10))
                             for c in range(bands)], 0)[..., ::-1]
        np.testing.assert_allclose(img.numpy(), per_band, rtol=1e-5, atol=1e-2)
        assert out["data_samples"].img_shape == (10, 15)


# -- band statistics --------------------------------------------------------------------------

def stats_folder(tmp_path: Path, nodata: float | None, dtype=np.uint16) -> tuple[Path, np.ndarray]:
    """Five 4-band rasters of different sizes and layouts; returns the folder and every value
    stacked as (N_pixels, 4)."""
    folder = tmp_path / "rasters"
    folder.mkdir()
    values = []
    for i, size in enumerate([(12, 10), (7, 9), (16, 16), (5, 21), (9, 9)]):
        data = raster(4, dtype, seed=10 + i, size=size)
        if nodata is not None:
            data[: 2 + i, : 3] = nodata
            data[-1, -1, 1] = nodata
        write(folder / f"{i}.tif", data, ["contig", "separate", "pages"][i % 3])
        values.append(data.reshape(-1, 4))
    (folder / "notes.txt").write_text("not a raster")
    return folder, np.concatenate(values)


def numpy_stats(values: np.ndarray, nodata: float | None) -> tuple[np.ndarray, np.ndarray]:
    means, stds = [], []
    for band in values.T.astype(np.float64):
        keep = band if nodata is None else band[band != nodata]
        means.append(keep.mean())
        stds.append(keep.std())
    return np.array(means), np.array(stds)


@pytest.mark.parametrize("nodata", [None, 0])
def test_band_stats_equal_numpy_on_the_stacked_array(tmp_path, nodata):
    from ds2d2_mm.cli.band_stats import run
    from ds2d2_mm.datasets import band_stats

    folder, values = stats_folder(tmp_path, nodata)
    args = [str(folder), "--no-progress"] + ([] if nodata is None else ["--nodata", "0"])
    assert run(args) == 0
    doc = json.loads((folder / "band_stats.json").read_text())
    mean, std = numpy_stats(values, nodata)
    np.testing.assert_allclose(doc["mean"], mean, rtol=1e-6)
    np.testing.assert_allclose(doc["std"], std, rtol=1e-6)
    assert doc["bands"] == 4 and doc["files"] == 5 and doc["count"] == len(values)
    valid = (values != nodata).sum(0) if nodata is not None else [len(values)] * 4
    assert doc["valid"] == list(valid)
    assert band_stats(folder / "band_stats.json") == (doc["mean"], doc["std"])


def test_band_stats_of_float_data_with_a_large_offset_are_exact(tmp_path):
    """Chan's merge keeps the std exact where E[x^2] - E[x]^2 would cancel."""
    from ds2d2_mm.datasets import BandStatsAccumulator

    rng = np.random.default_rng(0)
    images = [(1e6 + rng.standard_normal((50, 40, 2))).astype(np.float64) for _ in range(4)]
    acc = BandStatsAccumulator()
    for img in images:
        acc.update(img)
    doc = acc.result()
    stacked = np.concatenate([i.reshape(-1, 2) for i in images])
    np.testing.assert_allclose(doc["std"], stacked.std(0), rtol=1e-9)
    np.testing.assert_allclose(doc["mean"], stacked.mean(0), rtol=1e-12)


def test_band_stats_from_a_coco_json_with_band_selection(tmp_path):
    from ds2d2_mm.cli.band_stats import run

    folder, values = stats_folder(tmp_path, None, dtype=np.float32)
    coco = tmp_path / "ann.json"
    coco.write_text(json.dumps({"images": [{"id": i, "file_name": f"rasters/{i}.tif"}
                                           for i in (0, 2, 4)]}))
    out = tmp_path / "out" / "stats.json"
    assert run([str(coco), "--bands", "3", "1", "--out", str(out), "--no-progress"]) == 0
    doc = json.loads(out.read_text())
    sizes = [120, 63, 256, 105, 81]
    starts = np.cumsum([0, *sizes])
    used = np.concatenate([values[starts[i]:starts[i + 1]] for i in (0, 2, 4)])[:, [3, 1]]
    mean, std = numpy_stats(used, None)
    np.testing.assert_allclose(doc["mean"], mean, rtol=1e-6)
    np.testing.assert_allclose(doc["std"], std, rtol=1e-6)
    assert doc["files"] == 3 and doc["band_indices"] == [3, 1]


def test_band_stats_errors_name_the_file(tmp_path, capsys):
    from ds2d2_mm.cli.band_stats import run
    from ds2d2_mm.datasets import DatasetError, read_band_stats

    folder = tmp_path / "mixed"
    folder.mkdir()
    write(folder / "a.tif", raster(4, np.uint8), "contig")
    write(folder / "b.tif", raster(3, np.uint8), "contig")
    assert run([str(folder), "--no-progress"]) == 1
    assert "b.tif: 3 bands, but the files before it have 4" in capsys.readouterr().err
    (folder / "b.tif").write_bytes(b"II*\x00junk")
    assert run([str(folder), "--no-progress"]) == 1
    assert "b.tif" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"bands": 2, "mean": [1, 2], "std": [1, 0]}))
    with pytest.raises(DatasetError, match=r"bad\.json.*bands \[1\]"):
        read_band_stats(bad)
