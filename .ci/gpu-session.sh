#!/usr/bin/env bash
# One session on a lent GPU machine (issue 18, item 5), about 8 minutes in all: builds cuda_ext,
# runs the gpu-marked tests, the criss-cross benchmarks and bench_stages on CUDA, and DeepLab and
# CCNet training steps with amp off / bf16 / fp16 (bench_stages' train rows). Each step has its
# own timeout, so one hang does not eat the rest; a failing step is recorded and the next runs.
# Needs only PyTorch, pytest and nvcc there (no Snakemake). Outputs go to $OUT (the folder whose files come back) if set, else to ./gpu-session/.
#
#   bash .ci/gpu-session.sh            # on the GPU machine, from the repository root
#   DEVICE=cpu bash .ci/gpu-session.sh # smoke check anywhere: CPU, tiny sizes, no build
set -u
OUT=${OUT:-$PWD/gpu-session}
DEVICE=${DEVICE:-cuda}
PY=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
mkdir -p "$OUT"
STATUS="$OUT/status.txt"
: > "$STATUS"

step() {  # step NAME SECONDS COMMAND...: run with a timeout, log to $OUT/NAME.log, record rc
  local name=$1 limit=$2
  shift 2
  local start=$SECONDS
  timeout --kill-after=10 "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  echo "$name rc=$rc ${limit}s-limit $((SECONDS - start))s" | tee -a "$STATUS"
}

{ nvidia-smi 2>&1 || true; "$PY" -c 'import torch; print(torch.__version__, torch.version.cuda)'; } \
  > "$OUT/machine.txt" 2>&1

# The lent machines have PyTorch and nvcc but no internet: use the python there (no `make setup`,
# which would pip-install .venv), with this tree on the path and the extension installed into it.
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [ "$DEVICE" = cuda ]; then
  step cuda_ext 150 env FORCE_CUDA=1 "$PY" -m pip install --quiet --no-build-isolation --no-deps \
    --no-index ./cuda_ext
  step pytest_gpu 60 "$PY" -m pytest tests/ops tests/refine/test_random_walk.py -m gpu -q \
    -p no:cacheprovider -rs  # the modules with gpu tests: their imports need no Snakemake
  step bench_cca 60 "$PY" benchmarks/bench_cca.py --device cuda
  # DeepLab and CCNet training steps, amp off / bf16 / fp16, at the VOC crop (512², batch 8)
  step train_amp 60 "$PY" benchmarks/bench_stages.py --device cuda --networks deeplab ccnet \
    --modes train --iters 5
  step bench_stages 120 "$PY" benchmarks/bench_stages.py --device cuda
else  # CPU smoke: the scripts' code paths at tiny sizes
  step train_amp 300 "$PY" benchmarks/bench_stages.py --device cpu --networks deeplab ccnet \
    --modes train --crop 64 --warmup 0 --iters 1
fi
cat "$STATUS"
! grep -qv ' rc=0 ' "$STATUS"
