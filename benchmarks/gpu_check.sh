#!/usr/bin/env bash
# The GPU path in one run (< 8 minutes on one modern GPU), offline: nothing is installed or fetched.
#
#   1. env     torch, the GPU, whether mamba-ssm's kernels import
#   2. tests   the test suite, with CUDA tensors in the tests that take the `device` fixture
#              (SSMUSIC_TEST_DEVICE=cuda; see tests/conftest.py)
#   3. fused   mamba-ssm's fused scan and step against the pure-PyTorch reference, values and
#              gradients (tests/test_mamba2.py; skipped, and reported so, without mamba-ssm)
#   4. train   a small demo dataset built here (ssmusic data demo + prepare), then 200 steps of the
#              small preset (bf16 autocast on CUDA)
#   5. bench   ssmusic bench --device cuda (decode floor, batch table, the backbones, peers, training)
# and one summary table: step, status, seconds, where its log is.
#
# Usage: benchmarks/gpu_check.sh [--device cuda|cpu] [--quick] [--dry-run] [--workdir DIR] [--python PY]
#   --device cpu --quick   the same steps at toy sizes on the CPU (checks the script, not the GPU)
#   --dry-run              print the commands and the summary rows, run nothing
set -u

DEVICE=cuda
QUICK=0
DRY=0
WORKDIR=""
PYTHON="${PYTHON:-python}"

usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE="${2:-}"; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --dry-run) DRY=1; shift ;;
    --workdir) WORKDIR="${2:-}"; shift 2 ;;
    --python) PYTHON="${2:-}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$DEVICE" in
  cuda|cpu) ;;
  *) echo "gpu_check.sh: --device: expected cuda or cpu, got '$DEVICE'" >&2; exit 2 ;;
esac

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORKDIR="${WORKDIR:-$(mktemp -d -t ssmusic_gpu_check.XXXXXX)}"
mkdir -p "$WORKDIR"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 SSMUSIC_TEST_DEVICE="$DEVICE"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

if [ "$QUICK" = 1 ]; then
  TESTS=(tests/test_decode_weights.py tests/test_scan.py tests/test_device.py)
  CLIPS=6; SECONDS_PER_CLIP=2; PRESET=tiny; STEPS=4; BENCH=(--quick --decode-floor)
else
  TESTS=(tests)
  CLIPS=40; SECONDS_PER_CLIP=5; PRESET=small; STEPS=200; BENCH=(--positions 100,2588 --steps 10)
fi
XDIST=()
if "$PYTHON" -c "import xdist" 2>/dev/null; then XDIST=(-n 2); fi

SUMMARY="$WORKDIR/summary.tsv"
: > "$SUMMARY"

# run NAME COMMAND...: runs it with its output in WORKDIR/NAME.log, records status and seconds.
run() {
  local name="$1"; shift
  local log="$WORKDIR/$name.log"
  if [ "$DRY" = 1 ]; then
    echo "[$name] $*"
    printf '%s\t%s\t%s\t%s\n' "$name" "dry-run" "-" "$log" >> "$SUMMARY"
    return 0
  fi
  echo "== $name: $*"
  local start=$SECONDS status
  "$@" > "$log" 2>&1
  local code=$?
  if [ $code -eq 0 ]; then status=ok; else status="FAILED ($code)"; fi
  # a fused check that skipped every test ran nothing: say so rather than "ok"
  if [ "$name" = fused ] && [ $code -eq 0 ] && grep -q "skipped" "$log" && ! grep -q "passed" "$log"; then
    status="skipped (mamba-ssm kernels not importable, or no CUDA)"
  fi
  printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$((SECONDS - start))" "$log" >> "$SUMMARY"
  tail -n 3 "$log"
}

run env "$PYTHON" -c "
import importlib.util, torch
print('torch', torch.__version__, '| cuda', torch.version.cuda, '| available', torch.cuda.is_available())
if '$DEVICE' == 'cuda':
    assert torch.cuda.is_available(), 'no CUDA device visible to torch'
    print('gpu', torch.cuda.get_device_name(0))
from ssmusic.ops import kernels
print('mamba-ssm installed', importlib.util.find_spec('mamba_ssm') is not None, '| kernels import', kernels._mamba_ssm() is not None)
"
run tests "$PYTHON" -m pytest -q -p no:warnings -rs "${XDIST[@]}" "${TESTS[@]}"
run fused "$PYTHON" -m pytest -q -p no:warnings -rs tests/test_mamba2.py -k fused
run data "$PYTHON" -m ssmusic data demo "$WORKDIR/demo" --clips "$CLIPS" --seconds "$SECONDS_PER_CLIP" --workers 4
run prepare "$PYTHON" -m ssmusic prepare "$WORKDIR/demo" --captions "$WORKDIR/demo/captions.csv" \
  --out "$WORKDIR/data" --clip-seconds "$SECONDS_PER_CLIP"
run train "$PYTHON" -m ssmusic train "$WORKDIR/data" --out "$WORKDIR/run" --preset "$PRESET" --steps "$STEPS" \
  --batch-size 8 --eval-every "$STEPS" --save-every "$STEPS" --warmup-steps 10 --device "$DEVICE"
run bench "$PYTHON" -m ssmusic bench --device "$DEVICE" "${BENCH[@]}" --out "$WORKDIR/bench_$DEVICE.json"

echo
echo "gpu_check: device $DEVICE$([ "$QUICK" = 1 ] && echo ', quick'); logs in $WORKDIR"
echo
echo "| step | status | seconds | log |"
echo "|---|---|---|---|"
while IFS=$'\t' read -r name status seconds log; do
  echo "| $name | $status | $seconds | $log |"
done < "$SUMMARY"
if [ "$DRY" = 0 ] && [ -f "$WORKDIR/bench_$DEVICE.md" ]; then
  echo
  cat "$WORKDIR/bench_$DEVICE.md"
fi
if grep -q "FAILED" "$SUMMARY"; then exit 1; fi
exit 0
