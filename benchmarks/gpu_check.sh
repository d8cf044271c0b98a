#!/usr/bin/env bash
# The GPU path in one run (< 8 minutes on one modern GPU), offline: nothing is installed or fetched.
#
#   1. env     torch, the GPU, whether mamba-ssm's kernels import
#   2. fused   mamba-ssm's fused scan and step against the pure-PyTorch reference, values and
#              gradients (tests/model/test_mamba2.py; skipped, and reported so, without mamba-ssm)
#   3. tests   the test suite, with CUDA tensors in the tests that take the `device` fixture
#              (SSMUSIC_TEST_DEVICE=cuda; see tests/conftest.py)
#   4. train   a small demo dataset built here (ssmusic data demo + prepare; or --data), then 200
#              steps of the small preset (bf16 autocast on CUDA)
#   5. floor   ssmusic bench --device cuda --decode-floor (the floor, the one-prompt step, the batch
#              table: first, so that they are in even if the full bench is cut short)
#   6. bench   ssmusic bench --device cuda (the above again, the backbones, peers, training)
#   7. decode  benchmarks/gpu_decode.py: generate's ms per step, CUDA graphs against eager, 1 and 64
#              prompts, the small and paper presets, and whether both sample the same codes
#   8. speed   benchmarks/gpu_train.py: training tokens/s, SiMBA against the Transformer at 2,588
#              frames, batch 8, bf16, eager and compiled, SiMBA's scan chunk sizes
#   9. scan    benchmarks/scan_speed.py --device cuda: the chunked scan alone, by chunk size
# and one summary table: step, status, seconds, where its log is.
#
# Usage: benchmarks/gpu_check.sh [--device cuda|cpu] [--quick] [--dry-run] [--workdir DIR] [--python PY]
#                                [--data DIR] [--tests PATH]... [--ignore PATH]... [--workers N]
#                                [--time-limit S] [--no-compile] [--only STEP,...] [--out DIR]
#   --device cpu --quick   the same steps at toy sizes on the CPU (checks the script, not the GPU)
#   --dry-run              print the commands and the summary rows, run nothing
#   --data DIR             train on this prepared dataset (ssmusic prepare's output) instead of
#                          building the demo, which needs FluidSynth and music21
#   --tests PATH           run these tests (repeatable; files or node ids) instead of the suite
#   --ignore PATH          leave this test file out (repeatable; e.g. the browser tests where the
#                          machine has no Chromium)
#   --workers N            pytest-xdist workers for the tests (default 2)
#   --time-limit S         stop at S seconds in all (a lent GPU's lease): the step running then is
#                          cut, later ones are skipped, and the summary is still printed
#   --no-compile           the floor and bench steps time the eager step only (compiling the step
#                          for each batch size takes minutes on a GPU with a cold cache); speed
#                          times eager training only
#   --only STEP,...        run only these steps (e.g. env,tests,decode,speed), in the order above
#   --out DIR              also copy the summary (summary.json), each step's JSON and the logs (one
#                          logs.tar.gz) to DIR: few files, as a lent GPU's $OUT takes
set -u

DEVICE=cuda
QUICK=0
DRY=0
WORKDIR=""
PYTHON="${PYTHON:-python}"
DATA=""
WORKERS=2
TIME_LIMIT=0
CHOSEN_TESTS=()
NO_COMPILE=()
IGNORE=()
ONLY=""
OUT_DIR=""

usage() { sed -n '2,/^set -u$/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE="${2:-}"; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --dry-run) DRY=1; shift ;;
    --workdir) WORKDIR="${2:-}"; shift 2 ;;
    --python) PYTHON="${2:-}"; shift 2 ;;
    --data) DATA="${2:-}"; shift 2 ;;
    --ignore) IGNORE+=("--ignore=${2:-}"); shift 2 ;;
    --tests) CHOSEN_TESTS+=("${2:-}"); shift 2 ;;
    --no-compile) NO_COMPILE=(--no-compile); shift ;;
    --workers) WORKERS="${2:-}"; shift 2 ;;
    --only) ONLY=",${2:-},"; shift 2 ;;
    --out) OUT_DIR="${2:-}"; shift 2 ;;
    --time-limit) TIME_LIMIT="${2:-}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$DEVICE" in
  cuda|cpu) ;;
  *) echo "gpu_check.sh: --device: expected cuda or cpu, got '$DEVICE'" >&2; exit 2 ;;
esac
for pair in "workers:$WORKERS" "time-limit:$TIME_LIMIT"; do
  case "${pair#*:}" in
    ''|*[!0-9]*) echo "gpu_check.sh: --${pair%%:*}: expected a whole number, got '${pair#*:}'" >&2; exit 2 ;;
  esac
done
if [ -n "$DATA" ] && [ ! -f "$DATA/manifest.json" ]; then
  echo "gpu_check.sh: --data: $DATA has no manifest.json (expected ssmusic prepare's output)" >&2; exit 2
fi

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORKDIR="${WORKDIR:-$(mktemp -d -t ssmusic_gpu_check.XXXXXX)}"
mkdir -p "$WORKDIR"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 SSMUSIC_TEST_DEVICE="$DEVICE"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

if [ "$QUICK" = 1 ]; then
  TESTS=(tests/model/test_decode_weights.py tests/model/test_scan.py tests/test_device.py)
  CLIPS=6; SECONDS_PER_CLIP=2; PRESET=tiny; STEPS=4; FLOOR=(--quick); BENCH=(--quick)
  DECODE=(--quick); SPEED=(--quick); SCAN=(--length 256 --chunks 32 --rounds 1)
else
  TESTS=(tests)
  CLIPS=40; SECONDS_PER_CLIP=5; PRESET=small; STEPS=200; FLOOR=(--steps 10); BENCH=(--positions 100,2588 --steps 10)
  DECODE=(); SPEED=(); SCAN=(--batch 8 --chunks 64,128,256)
fi
if [ ${#CHOSEN_TESTS[@]} -gt 0 ]; then TESTS=("${CHOSEN_TESTS[@]}"); fi
XDIST=()
if [ "$WORKERS" -gt 1 ] && "$PYTHON" -c "import xdist" 2>/dev/null; then XDIST=(-n "$WORKERS"); fi

SUMMARY="$WORKDIR/summary.tsv"
: > "$SUMMARY"

# run NAME COMMAND...: runs it with its output in WORKDIR/NAME.log, records status and seconds;
# under --time-limit, cut at what is left of it (or skipped when nothing is).
run() {
  local name="$1"; shift
  local log="$WORKDIR/$name.log"
  if [ -n "$ONLY" ] && [ "${ONLY#*,$name,}" = "$ONLY" ]; then return 0; fi  # not chosen with --only
  if [ "$DRY" = 1 ]; then
    echo "[$name] $*"
    printf '%s\t%s\t%s\t%s\n' "$name" "dry-run" "-" "$log" >> "$SUMMARY"
    return 0
  fi
  local limit=()
  if [ "$TIME_LIMIT" -gt 0 ]; then
    local left=$((TIME_LIMIT - SECONDS))
    if [ "$left" -le 0 ]; then
      printf '%s\t%s\t%s\t%s\n' "$name" "skipped (--time-limit $TIME_LIMIT s reached)" 0 "-" >> "$SUMMARY"
      return 0
    fi
    limit=(timeout --kill-after=10 "$left")
  fi
  echo "== $name: $*"
  local start=$SECONDS status
  "${limit[@]}" "$@" > "$log" 2>&1
  local code=$?
  if [ $code -eq 0 ]; then status=ok; else status="FAILED ($code)"; fi
  if [ ${#limit[@]} -gt 0 ] && { [ $code -eq 124 ] || [ $code -eq 137 ]; }; then
    status="cut at --time-limit $TIME_LIMIT s"
  fi
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
from ssmusic.model.ops import kernels
print('mamba-ssm installed', importlib.util.find_spec('mamba_ssm') is not None, '| kernels import', kernels._mamba_ssm() is not None)
"
run fused "$PYTHON" -m pytest -p no:warnings -rs tests/model/test_mamba2.py -k fused
run tests "$PYTHON" -m pytest -p no:warnings -rs "${XDIST[@]}" "${IGNORE[@]}" "${TESTS[@]}"
if [ -z "$DATA" ] && { [ -z "$ONLY" ] || [ "${ONLY#*,data,}" != "$ONLY" ]; }; then
  DATA="$WORKDIR/data"
  run data "$PYTHON" -m ssmusic data demo "$WORKDIR/demo" --clips "$CLIPS" --seconds "$SECONDS_PER_CLIP" --workers 4
  run prepare "$PYTHON" -m ssmusic prepare "$WORKDIR/demo" --captions "$WORKDIR/demo/captions.csv" \
    --out "$DATA" --clip-seconds "$SECONDS_PER_CLIP"
fi
run train "$PYTHON" -m ssmusic train "$DATA" --out "$WORKDIR/run" --preset "$PRESET" --steps "$STEPS" \
  --batch-size 8 --eval-every "$STEPS" --save-every "$STEPS" --warmup-steps 10 --device "$DEVICE"
run floor "$PYTHON" -m ssmusic bench --device "$DEVICE" --decode-floor "${FLOOR[@]}" "${NO_COMPILE[@]}" --out "$WORKDIR/floor_$DEVICE.json"
run bench "$PYTHON" -m ssmusic bench --device "$DEVICE" "${BENCH[@]}" "${NO_COMPILE[@]}" --out "$WORKDIR/bench_$DEVICE.json"
run decode "$PYTHON" "$ROOT/benchmarks/gpu_decode.py" --device "$DEVICE" "${DECODE[@]}" --out "$WORKDIR/gpu_decode.json"
run speed "$PYTHON" "$ROOT/benchmarks/gpu_train.py" --device "$DEVICE" "${SPEED[@]}" "${NO_COMPILE[@]}" --out "$WORKDIR/gpu_train.json"
run scan "$PYTHON" "$ROOT/benchmarks/scan_speed.py" --device "$DEVICE" --threads 0 "${SCAN[@]}" --out "$WORKDIR/scan_speed_$DEVICE.json"

echo
echo "gpu_check: device $DEVICE$([ "$QUICK" = 1 ] && echo ', quick'); logs in $WORKDIR"
echo
echo "| step | status | seconds | log |"
echo "|---|---|---|---|"
while IFS=$'\t' read -r name status seconds log; do
  echo "| $name | $status | $seconds | $log |"
done < "$SUMMARY"
for table in "$WORKDIR/floor_$DEVICE.md" "$WORKDIR/bench_$DEVICE.md"; do
  if [ "$DRY" = 0 ] && [ -f "$table" ]; then
    echo
    cat "$table"
  fi
done
if [ -n "$OUT_DIR" ] && [ "$DRY" = 0 ]; then
  mkdir -p "$OUT_DIR"
  "$PYTHON" - "$SUMMARY" "$OUT_DIR/summary.json" <<'PY'
import json, sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1]) if line.strip()]
json.dump([{"step": r[0], "status": r[1], "seconds": r[2]} for r in rows], open(sys.argv[2], "w"), indent=1)
PY
  for found in "$WORKDIR"/*.json; do [ -f "$found" ] && cp "$found" "$OUT_DIR/"; done
  (cd "$WORKDIR" && tar -czf "$OUT_DIR/logs.tar.gz" ./*.log 2>/dev/null)
fi
if grep -q "FAILED\|--time-limit" "$SUMMARY"; then exit 1; fi  # failed, cut or not run
exit 0
