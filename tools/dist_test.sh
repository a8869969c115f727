#!/usr/bin/env bash
# Multi-GPU evaluation through torchrun and mmengine's `pytorch` launcher.
#   tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py options...]
set -euo pipefail
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
PYTHON=${PYTHON:-python}
exec "$PYTHON" -m torch.distributed.run \
  --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
  --nproc_per_node="$GPUS" --master_port="${PORT:-29500}" \
  "$here/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "$@"
