#!/usr/bin/env bash
# Multi-GPU training through torchrun and mmengine's `pytorch` launcher.
#   tools/dist_train.sh CONFIG GPUS [train.py options...]
# NNODES, NODE_RANK, MASTER_ADDR and PORT select a multi-node run.
set -euo pipefail
CONFIG=$1
GPUS=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
PYTHON=${PYTHON:-python}
exec "$PYTHON" -m torch.distributed.run \
  --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
  --nproc_per_node="$GPUS" --master_port="${PORT:-29500}" \
  "$here/train.py" "$CONFIG" --launcher pytorch "$@"
