#!/usr/bin/env bash
# Creates or updates the project environment (.venv) idempotently.
#
# Every step leaves a stamp in .venv/.stamps named after a hash of what it installed, so a second
# run skips finished steps and takes seconds. mmcv 2.1.0 is source-only on PyPI: it is built once
# with its CPU (or, where nvcc and a CUDA torch exist, CUDA) ops, with the `-std=c++17` flag of its
# setup.py raised to `-std=c++20` (ATen from torch >= 2.10 needs C++20), and the wheel is cached
# outside the repo in $DS2D2_CACHE (default ~/.cache/ds2d2_mm) keyed by mmcv, torch, Python and
# the build recipe.
#
# The build recipe (measured on 2 cores, see docs/get_started.md): no debug info and -O1 (Python's build flags
# would add -g -O3; -DNDEBUG and -fwrapv, which they also carry, are kept), and for CPU builds
# the 77 op sources grouped into 8 unity translation units (tools/mmcv_unity.py), since parsing
# torch's headers is most of each file's compile time. MMCV_CFLAGS overrides the flags.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
VENV=${VENV:-$root/.venv}
PYTHON=${PYTHON:-python3.11}
CACHE=${DS2D2_CACHE:-$HOME/.cache/ds2d2_mm}
REQ=$root/requirements
CONS=$REQ/constraints.txt
stamps=$VENV/.stamps
t0=$(date +%s)

say() { printf '[setup %4ss] %s\n' "$(( $(date +%s) - t0 ))" "$*"; }
# pip prints one warning per package for index folders of this machine that do not exist;
# drop those lines, keep everything else (pip's own exit status is kept by pipefail).
quiet() { "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }; }
pin() { sed -n "s/^$1==\(.*\)$/\1/p" "$CONS"; }
digest() { cat "$@" | sha256sum | cut -c1-16; }

# step NAME KEY CMD...: runs CMD unless the stamp NAME-KEY exists.
step() {
  local name=$1 key=$2; shift 2
  if [ -f "$stamps/$name-$key" ]; then say "$name: up to date"; return 0; fi
  say "$name: installing"
  "$@"
  rm -f "$stamps/$name"-*
  touch "$stamps/$name-$key"
}

if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV"
fi
mkdir -p "$stamps"
PY=$VENV/bin/python
PIP=(quiet "$PY" -m pip install --disable-pip-version-check -q -c "$CONS")

step build "$(digest "$CONS" "$REQ/build.txt")" "${PIP[@]}" -r "$REQ/build.txt"
step torch "$(pin torch)-$(pin torchvision)" "${PIP[@]}" "torch==$(pin torch)" "torchvision==$(pin torchvision)"

mmcv_v=$(pin mmcv)
torch_v=$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])')
py_v=$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
cuda_ops=cpu
if command -v nvcc >/dev/null 2>&1 && "$PY" -c 'import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  cuda_ops=cuda
fi
MMCV_CFLAGS=${MMCV_CFLAGS:-"-DNDEBUG -fwrapv -O1 -g0"}
unity=0
[ "$cuda_ops" = cpu ] && unity=1
recipe=$(printf '%s unity=%s\n' "$MMCV_CFLAGS" "$unity" | cat - "$root/tools/mmcv_unity.py" \
  | sha256sum | cut -c1-10)
wheel_dir=$CACHE/mmcv-$mmcv_v-torch$torch_v-$py_v-$cuda_ops-$recipe

build_mmcv() {
  if ! ls "$wheel_dir"/mmcv-*.whl >/dev/null 2>&1; then
    local src
    src=$(mktemp -d)
    say "mmcv: building $mmcv_v with $cuda_ops ops against torch $torch_v (CFLAGS $MMCV_CFLAGS)"
    quiet "$PY" -m pip download --disable-pip-version-check -q --no-deps --no-binary :all: \
      "mmcv==$mmcv_v" -d "$src"
    tar -xzf "$src"/mmcv-"$mmcv_v".tar.gz -C "$src"
    sed -i 's/-std=c++17/-std=c++20/g' "$src/mmcv-$mmcv_v/setup.py"
    if [ "$unity" = 1 ]; then
      "$PY" "$root/tools/mmcv_unity.py" "$src/mmcv-$mmcv_v" || true  # falls back to per file
    fi
    mkdir -p "$wheel_dir.tmp"
    local force=0
    [ "$cuda_ops" = cuda ] && force=1
    (cd "$src/mmcv-$mmcv_v" && MMCV_WITH_OPS=1 FORCE_CUDA=$force MAX_JOBS=${MAX_JOBS:-$(nproc)} \
      CFLAGS="$MMCV_CFLAGS" "$PY" -m pip wheel --disable-pip-version-check -q --no-build-isolation --no-deps . -w "$wheel_dir.tmp")
    rm -rf "$wheel_dir" && mv "$wheel_dir.tmp" "$wheel_dir"
    rm -rf "$src"
  else
    say "mmcv: reusing cached wheel in $wheel_dir"
  fi
  quiet "$PY" -m pip install --disable-pip-version-check -q --no-deps --force-reinstall \
    "$wheel_dir"/mmcv-*.whl
}
step mmcv "$mmcv_v-$torch_v-$py_v-$cuda_ops-$recipe" build_mmcv

# mmcv's runtime requirements (it was installed without them above)
step runtime "$(digest "$CONS" "$REQ/runtime.txt" "$REQ/sam3.txt" "$REQ/tests.txt" "$REQ/deploy.txt")" \
  "${PIP[@]}" -r "$REQ/runtime.txt" -r "$REQ/sam3.txt" -r "$REQ/tests.txt" -r "$REQ/deploy.txt" addict packaging pillow pyyaml yapf opencv-python
step package "$(digest "$root/setup.py")" "${PIP[@]}" --no-deps --no-build-isolation -e "$root"

"$PY" - <<'PY'
import mmcv, mmdet, mmengine, mmrotate, torch
from mmcv.ops import nms  # noqa: F401  (fails when mmcv was built without ops)
print(f"torch {torch.__version__} | mmcv {mmcv.__version__} | mmengine {mmengine.__version__} "
      f"| mmdet {mmdet.__version__} | mmrotate {mmrotate.__version__}")
PY
say "environment ready: $VENV"
