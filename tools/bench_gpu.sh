#!/usr/bin/env bash
# The GPU run of the stepcost benchmark (docs/benchmarks.md), one call of tools/benchmark.py:
# RetinaNet and Faster R-CNN R101 -> R18 at 800 px, batch 2, 60 / 500 / 2000 boxes per image,
# fp32 and AMP, the student, the distiller and its variants, the compiled and frozen-fp16
# variants (distill_cfg.accelerate), peak memory against the student's and the teacher
# forward's; every round rewrites the JSON, so a run stopped by the time limit keeps its rows.
#
#   bash tools/bench_gpu.sh [out.json]        REF=<git rev> also measures that revision
#
# Sized for under 8 minutes on one H200 (timeout 470 s).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench_gpu_stepcost.json}
python=${PYTHON:-python}
ref_args=()
if [ -n "${REF:-}" ]; then
  ref_args=(--compare-ref "$REF")
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
exec timeout 470 "$python" tools/benchmark.py --sections stepcost --device cuda \
  --detector retina,faster_rcnn --size 800 --batch 2 --boxes 60,500,2000 \
  --precisions fp32,amp --compile --frozen-fp16 --rounds 5 --step-warmup 3 --threads 4 \
  --json "$out" "${ref_args[@]}"
