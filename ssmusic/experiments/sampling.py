"""Choose a model's sampling defaults (temperature, CFG, top-k) on the valid split, by every judge.

    python -m ssmusic.experiments.sampling DATA_DIR --work runs/sampling --out results/sampling_valid.json \
        --temperature 0.7,0.85,1.0 --cfg 3,5 --top-k 250 --seeds 0,1,2 [--model DIR]
    (or --settings "0.85,3,250;0.7,3,250;..." for chosen points instead of the full grid)

Each setting generates the split's captions once per seed (`evaluate --seeds`, resumable) and is
judged; a figure is its mean over seeds. **The rule**: rank the settings on each criterion below
(1 = best, ties share the mean rank) and pick the lowest mean rank. Motion enters twice (frozen run
and onset rate, each as its distance |log(generated / real)| from the real clips' median), beside
instrument adherence (the mel-stats classifier and the music network's tags; on demo v2 the attribute
judges' melody instrument and drums), the music network's distance to the reference, tempo hits, mode
given the tonic and tag KL. A criterion no setting was judged on (v1's classifier on v2) is left out.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from pathlib import Path

# criterion -> (path in the over-seeds table, direction: +1 higher is better, -1 lower, 0 = |log| lower)
CRITERIA = {
    "instrument adherence (classifier)": ("adherence.value", +1),   # demo v1's ten instruments
    "melody instrument (attribute judge)": ("attributes.melody_instrument.value", +1),  # demo v2
    "drums present or absent (attribute judge)": ("attributes.drums.value", +1),       # demo v2
    "tag adherence (music network)": ("tag_adherence.value", +1),
    "music-network distance": ("music_fd.value", -1),
    "frozen run vs real": ("motion.frozen_run_s.ratio", 0),
    "onset rate vs real": ("motion.onset_rate.ratio", 0),
    "tempo within 8%": ("tempo.hit.value", +1),
    "mode given tonic": ("key.mode_given_tonic.value", +1),
    "tag KL": ("tag_kl.value", -1),
}


def _score(value: float, direction: int) -> float:
    """A number where lower is better."""
    if direction == 0:
        return abs(math.log(value)) if value and value > 0 else math.inf
    return -direction * value


# how the pick moves when the onset rate (which the Griffin-Lim codec's phase inflates) is replaced by
# the codec-independent longest onset gap: reported beside the pick, never used to make it
SENSITIVITY = {**{k: v for k, v in CRITERIA.items() if k != "onset rate vs real"},
               "longest onset gap vs real": ("motion.longest_onset_gap_s.ratio", 0)}


def rank(settings: dict[str, dict], criteria: dict | None = None) -> dict:
    """settings: name -> over-seeds table. -> per criterion the ranks, the mean rank, and the pick."""
    ranks: dict[str, dict[str, float]] = {name: {} for name in settings}
    for criterion, (path, direction) in (criteria or CRITERIA).items():
        scores = {name: _score(table[path]["mean"], direction) for name, table in settings.items()
                  if path in table and "mean" in table[path]}
        ordered = sorted(scores.values())
        for name, score in scores.items():
            tied = [i + 1 for i, s in enumerate(ordered) if s == score]
            ranks[name][criterion] = sum(tied) / len(tied)
    mean_rank = {name: round(sum(r.values()) / len(r), 3) for name, r in ranks.items() if r}
    return {"ranks": ranks, "mean_rank": mean_rank, "chosen": min(mean_rank, key=mean_rank.get),
            "rule": "lowest mean rank over the criteria (1 = best per criterion; ties share the mean rank)"}


def _name(setting: dict) -> str:
    return "_".join(f"{k}{v:g}" for k, v in setting.items())


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def main() -> None:
    from ssmusic.io.atomic import write_json_atomic
    from ssmusic.metrics.evaluate import METRICS, evaluate
    from ssmusic.metrics.seeds import evaluate_seeds, parse_seeds

    parser = argparse.ArgumentParser(description="sampling defaults chosen on the valid split by every judge")
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--work", type=Path, required=True, help="generated clips, one folder per setting and seed")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--split", default="valid")
    parser.add_argument("--model", default=None)
    parser.add_argument("--temperature", default="0.7,0.85,1.0")
    parser.add_argument("--cfg", default="3,5")
    parser.add_argument("--top-k", default="250")
    parser.add_argument("--settings", default=None, metavar="T,CFG,K;...",
                        help="explicit settings instead of the full grid, e.g. 0.85,3,250;0.7,3,250")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--max-prompts", type=int, default=0, help="only the split's first N captions (0 = all)")
    args = parser.parse_args()
    triples = ([_floats(item) for item in args.settings.split(";") if item.strip()] if args.settings else
               itertools.product(_floats(args.temperature), _floats(args.cfg), _floats(args.top_k)))
    grid = [{"temperature": t, "cfg": c, "top_k": int(k)} for t, c, k in triples]
    settings, full = {}, {}
    for setting in grid:
        options = {"model": args.model, "seconds": args.seconds, "threads": 1, "batch_size": args.batch_size,
                   "max_prompts": args.max_prompts, **setting}
        kwargs = {"metrics": [m for m in METRICS if m != "clap"], "progress": False}
        result = evaluate_seeds(args.work / _name(setting), args.data_dir, args.split, parse_seeds(args.seeds),
                                options, evaluate, kwargs)
        settings[_name(setting)] = result["over_seeds"]
        full[_name(setting)] = {"setting": setting, "over_seeds": result["over_seeds"]}
        print(f"{_name(setting)} done", flush=True)
    choice = rank(settings)
    alternative = rank(settings, SENSITIVITY)
    choice["sensitivity"] = {"criteria": "onset rate replaced by the longest onset gap",
                             "chosen": alternative["chosen"], "mean_rank": alternative["mean_rank"]}
    write_json_atomic(args.out, {"command": " ".join(["python -m ssmusic.experiments.sampling", *sys.argv[1:]]),
                                 "split": args.split, "seeds": parse_seeds(args.seeds), "criteria": {
                                     k: {"path": p, "better": {1: "higher", -1: "lower", 0: "closer to real"}[d]}
                                     for k, (p, d) in CRITERIA.items()}, **choice, "settings": full})
    print(json.dumps({"chosen": choice["chosen"], "mean_rank": choice["mean_rank"]}, indent=1))


if __name__ == "__main__":
    main()
