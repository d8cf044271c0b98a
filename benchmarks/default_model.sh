#!/bin/bash
# The shipped default model, end to end on CPU: demo data v2, its tokens, the training run, the
# export, the sampling defaults chosen on the valid split, the test and held-out-phrasing judgements
# over three seeds, and the gallery. Every step resumes where it stopped (rerun the script after an
# interruption; the training run resumes from its last checkpoint).
#
#   bash benchmarks/default_model.sh [WORK]        # WORK defaults to runs/default_model
#
# On two shared cores: data ~10 min, tokens ~5 min, training ~1.5-2 h (1.3-2.9 s a step), sampling
# choice ~40 min, judgements ~30 min. Results land in WORK/; copy the figures' files to results/.
set -euo pipefail
WORK=${1:-runs/default_model}
STEPS=${STEPS:-3000}
PY=${PYTHON:-python}
export OMP_NUM_THREADS=1
mkdir -p "$WORK"

# 1. data and tokens (deterministic; v2 is the demo command's default)
[ -f "$WORK/demo2/captions.csv" ] || ssmusic data demo "$WORK/demo2"
[ -d "$WORK/demo2_tokens" ] || ssmusic prepare "$WORK/demo2" --out "$WORK/demo2_tokens" --clip-seconds 10

# 2. training: SiMBA d 256 x 8 with cross-attention, one codebook, whole 10 s clips, batch 4
RESUME=""
[ -f "$WORK/run/train_config.json" ] && RESUME="--resume"
ssmusic train "$WORK/demo2_tokens" --backbone simba --conditioning cross --codebooks 1 --preset small \
    --model d_model=256 --model n_layers=8 --steps "$STEPS" --batch-size 4 --lr 1e-3 --warmup-steps 100 \
    --eval-every 250 --eval-batches 16 --save-every 100 --threads 1 --out "$WORK/run" $RESUME

# 3. the sampling defaults, chosen on the valid split by every judge over three seeds
[ -f "$WORK/raw/model.safetensors" ] || ssmusic export "$WORK/run" --out "$WORK/raw" --dtype float16
[ -f "$WORK/sampling_valid.json" ] || $PY -m ssmusic.experiments.sampling "$WORK/demo2" --work "$WORK/sampling" \
    --out "$WORK/sampling_valid.json" --model "$WORK/raw" --seeds 0,1,2 --max-prompts 32 --batch-size 8 \
    --settings "0.7,3,250;0.85,3,250;1.0,3,250;1.0,3,50;1.0,5,250"
read -r T C K < <($PY -c "
import json, sys; d = json.load(open(sys.argv[1])); s = d['settings'][d['chosen']]['setting']
print(s['temperature'], s['cfg'], s['top_k'])" "$WORK/sampling_valid.json")

# 4. the model directory (fp16 weights, the chosen sampling, the card the web demo shows)
[ -f "$WORK/model/model.safetensors" ] || ssmusic export "$WORK/run" --out "$WORK/model" --dtype float16 \
    --temperature "$T" --cfg "$C" --top-k "$K"
[ -f "$WORK/model/model_card.json" ] || cp ssmusic/assets/default_model/model_card.json "$WORK/model/"

# 5. judged on the test split and the held-out phrasings, three seeds each
for SPLIT in test test_phrasing; do
  [ -f "$WORK/eval_$SPLIT/evaluation.json" ] || ssmusic evaluate "$WORK/eval_$SPLIT" --reference "$WORK/demo2" \
      --split "$SPLIT" --seeds 0,1,2 --seconds 10 --threads 1 --batch-size 8 --model "$WORK/model" \
      --out "$WORK/eval_$SPLIT/evaluation.json"
done

# 6. the gallery (the card's examples) and the generation time on one thread
$PY benchmarks/gallery.py --model "$WORK/model" --out "$WORK/gallery"
$PY benchmarks/generate_time.py --runs 3 --out "$WORK/generate_time.json" -- --threads 1 --checkpoint "$WORK/model"
