#!/usr/bin/env bash
# The prepared one-call GPU run: benchmarks/gpu_check.sh with the choices a lent GPU needs, for one
# NVIDIA H200 with this workplace's image (torch 2.11 + CUDA 13, 16 cores, no network; no
# mamba-ssm, soundfile or MiniLM there), sized by estimate to fit 470 s (it has not run yet):
#   env     torch, the GPU, whether mamba-ssm's kernels import
#   fused   mamba-ssm against the reference (reported as skipped unless its wheels were carried)
#   tests   tests/model on CUDA (the device-fixture tests: decode == forward, CUDA-graph decoding ==
#           eager, the compiled step, the scan), which need neither soundfile nor MiniLM
#   decode  ms per decode step, CUDA graphs against eager: 1 prompt at the small (34M) and paper
#           (281M) presets, 64 prompts at small; 30 s of audio at paper size; same codes or not
#   speed   training tokens/s, SiMBA against the Transformer, 2,588 frames, batch 8, bf16, eager and
#           compiled (compile seconds), SiMBA's chunk sizes
#   scan    the chunked scan alone on the GPU, by chunk size
# Results (summary.json, gpu_decode.json, gpu_train.json, scan_speed_cuda.json, logs.tar.gz) go
# to OUT: $OUT on the device machine, else --out. Each step's JSON is written as it goes, so a step
# cut by the time limit still returns what it measured.
#
# Wheels carried in .whl/ (e.g. mamba-ssm's: docs/gpu.md) are installed into /tmp/site first.
#
# Usage: benchmarks/gpu_run.sh [--out DIR] [--time-limit S] [--python PY] [--dry-run]
#   on the device tool: command "bash benchmarks/gpu_run.sh", timeout_s 540 (carry [".whl"] if any)
set -u

OUT_DIR="${OUT:-}"
TIME_LIMIT=470
PYTHON=python3
DRY=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT_DIR="${2:-}"; shift 2 ;;
    --time-limit) TIME_LIMIT="${2:-}"; shift 2 ;;
    --python) PYTHON="${2:-}"; shift 2 ;;
    --dry-run) DRY=(--dry-run); shift ;;
    -h|--help) sed -n '2,/^set -u$/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_run.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -z "$OUT_DIR" ]; then
  echo "gpu_run.sh: no OUT: pass --out DIR (the device machine sets \$OUT)" >&2; exit 2
fi
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT" || exit 2
if [ ${#DRY[@]} -eq 0 ] && ls .whl/*.whl >/dev/null 2>&1; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "gpu_run.sh: the carried wheels did not install" >&2; exit 1; }
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
# one kernel configuration for mamba-ssm, where carried: its autotuning takes minutes per process
export MAMBA_DETERMINISTIC=1 PYTHONUNBUFFERED=1
exec bash "$ROOT/benchmarks/gpu_check.sh" --python "$PYTHON" --only env,fused,tests,decode,speed,scan \
  --tests tests/model --workers 8 --time-limit "$TIME_LIMIT" --workdir /tmp/ssmusic_gpu_run --out "$OUT_DIR" "${DRY[@]}"
