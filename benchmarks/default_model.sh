#!/bin/bash
# The shipped default model, end to end on CPU: demo data v2, its tokens, the first training run,
# its continuation with the prompt's controls (beat clock + key vector) beside a twin without them,
# the sampling defaults chosen on the valid split across both, the test and held-out-phrasing
# judgements over three seeds (and on test without the controls), and the gallery. Every step resumes
# where it stopped (rerun the script after an interruption; a training run resumes from its last
# checkpoint).
#
#   bash benchmarks/default_model.sh [WORK]        # WORK defaults to runs/default_model
#
# On two shared cores: data ~10 min, tokens ~5 min, each training run ~1.1-2 h (1.3-2.9 s a step;
# the two continuations run side by side, one core each), sampling choice ~30 min, judgements ~40 min.
# Results land in WORK/; copy the figures' files to results/.
set -euo pipefail
WORK=${1:-runs/default_model}
STEPS=${STEPS:-3000}
MORE=${MORE:-3000}
PY=${PYTHON:-python}
export OMP_NUM_THREADS=1
mkdir -p "$WORK"
SETTINGS="1.0,3,50;0.85,3,50;1.15,3,50"

# 1. data and tokens (deterministic; v2 is the demo command's default)
[ -f "$WORK/demo2/captions.csv" ] || ssmusic data demo "$WORK/demo2"
[ -d "$WORK/demo2_tokens" ] || ssmusic prepare "$WORK/demo2" --out "$WORK/demo2_tokens" --clip-seconds 10

resume() { [ -f "$1/train_config.json" ] && echo "--resume" || true; }

# 2. the first run: SiMBA d 256 x 8 with cross-attention, one codebook, whole 10 s clips, batch 4
ssmusic train "$WORK/demo2_tokens" --backbone simba --conditioning cross --codebooks 1 --preset small \
    --model d_model=256 --model n_layers=8 --steps "$STEPS" --batch-size 4 --lr 1e-3 --warmup-steps 100 \
    --eval-every 250 --eval-batches 16 --save-every 100 --threads 1 --out "$WORK/run" $(resume "$WORK/run")

# 3. its continuation under a new cosine (peak 5e-4, another batch order), with the controls added
#    (they start at zero) and, beside it on the other core, its twin without them
continue_run() {
  ssmusic train "$WORK/demo2_tokens" --init-from "$WORK/run/final" --steps "$MORE" --batch-size 4 --lr 5e-4 \
      --warmup-steps 100 --seed 1 --eval-every 250 --eval-batches 16 --save-every 100 --threads 1 "$@"
}
continue_run --tempo-clock --key-embedding --out "$WORK/run_controls" $(resume "$WORK/run_controls") &
continue_run --out "$WORK/run_more" $(resume "$WORK/run_more") &
wait

# 4. the sampling defaults of each, on the valid split by every judge over three seeds, and the
#    choice across both (and the first run) by the same rule
sweep() {  # NAME RUN SETTINGS
  [ -f "$WORK/$1_raw/model.safetensors" ] || ssmusic export "$2" --out "$WORK/$1_raw" --dtype float16
  [ -f "$WORK/sampling_$1.json" ] || $PY -m ssmusic.experiments.sampling "$WORK/demo2" --work "$WORK/sampling_$1" \
      --out "$WORK/sampling_$1.json" --model "$WORK/$1_raw" --seeds 0,1,2 --max-prompts 32 --batch-size 8 \
      --settings "$3"
}
sweep first "$WORK/run" "0.7,3,250;0.85,3,250;1.0,3,250;1.0,3,50;1.0,5,250" &
sweep more "$WORK/run_more" "$SETTINGS" &
wait
sweep controls "$WORK/run_controls" "$SETTINGS"
$PY benchmarks/compare_candidates.py --out "$WORK/candidates_valid.json" first="$WORK/sampling_first.json" \
    more="$WORK/sampling_more.json" controls="$WORK/sampling_controls.json"
read -r M T C K < <($PY -c "
import json, sys; s = json.load(open(sys.argv[1]))['chosen_setting']
print(s['model'], s['temperature'], s['cfg'], s['top_k'])" "$WORK/candidates_valid.json")
declare -A RUN=([first]="$WORK/run" [more]="$WORK/run_more" [controls]="$WORK/run_controls")

# 5. the model directory (fp16 weights, the chosen sampling, the card the web demo shows)
[ -f "$WORK/model/model.safetensors" ] || ssmusic export "${RUN[$M]}" --out "$WORK/model" --dtype float16 \
    --temperature "$T" --cfg "$C" --top-k "$K"
[ -f "$WORK/model/model_card.json" ] || cp ssmusic/assets/default_model/model_card.json "$WORK/model/"

# 6. judged on the test split and the held-out phrasings, three seeds each; and on test without the
#    controls (what they are worth); the tempo asked against the tempo heard
judge() {  # FOLDER SPLIT [FLAGS]
  [ -f "$WORK/$1/evaluation.json" ] || ssmusic evaluate "$WORK/$1" --reference "$WORK/demo2" --split "$2" \
      --seeds 0,1,2 --seconds 10 --threads 1 --batch-size 8 --model "$WORK/model" --out "$WORK/$1/evaluation.json" "${@:3}"
}
judge eval_test test &
judge eval_test_phrasing test_phrasing &
wait
judge eval_test_no_controls test --no-controls
for FOLDER in eval_test eval_test_no_controls; do
  $PY benchmarks/tempo_follow.py "$WORK/$FOLDER" --out "$WORK/tempo_follow_$FOLDER.json"
done

# 7. the gallery (the card's examples) and the generation time on one thread
$PY benchmarks/gallery.py --model "$WORK/model" --out "$WORK/gallery"
$PY benchmarks/generate_time.py --runs 3 --out "$WORK/generate_time.json" -- --threads 1 --checkpoint "$WORK/model"
