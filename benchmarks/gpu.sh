#!/usr/bin/env bash
# One short GPU check for a lent H200 (< 5 min): lorafair's inference path on a Qwen2.5-1.5B-shaped
# classifier with random bf16 weights, 2,000 synthetic examples at 128 and 256 tokens; QPS, tokens/s and
# the fraction of 790 TFLOP/s. Needs only python3 with torch, transformers, numpy and tqdm (the H200
# image has them); lorafair itself is taken from ./src, so nothing is installed.
#   bash benchmarks/gpu.sh [OUTPUT_JSON]        (default benchmarks/results/gpu.json)
# Wheels for a machine without transformers: put them in ./.whl (see benchmarks/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
if ! "$PY" -c 'import torch, transformers, numpy, tqdm' 2>/dev/null; then
  if compgen -G '.whl/*.whl' >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PYTHONPATH"
  else
    echo "gpu.sh: $PY lacks torch/transformers/numpy/tqdm and there are no wheels in .whl/" >&2; exit 2
  fi
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
timeout 280 "$PY" benchmarks/gpu_bench.py --output "${1:-benchmarks/results/gpu.json}"
