"""Fit the attribute judges of demo data v2 (see attributes.py) and measure them:

    python -m ssmusic.metrics.attribute_fit /work/data/demo2 --out ssmusic/assets/attributes \\
        --results results/attribute_judge.json

For each attribute, every feature kind (attributes.FEATURES) and L2 penalty (L2_GRID) is fitted on
the train split's real clips only and scored on the valid split; the most accurate on valid is kept
(ties: the earlier, smaller candidate). The kept judge is then scored once on the real test and
test_phrasing clips (its ceiling in `ssmusic evaluate`) and, the case it must fail, on the same clips
labelled with the next clip's attribute (`prompt_ignored`: a generator that ignores its prompt). Every candidate's valid accuracy, the kept
judge's accuracies with n and a Wilson interval, chance and the majority-class share are written
to the results JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from ssmusic.errors import SsmusicError
from ssmusic.metrics.attributes import ATTRIBUTES, DEFAULT_ATTRIBUTE_DIR, FEATURES, MULTILABEL, attribute_label, combine

L2_GRID = (1e-5, 1e-4, 1e-3, 1e-2)
SCORED_SPLITS = ("valid", "test", "test_phrasing")


def accuracy(judge, x: np.ndarray, labels: list[str]) -> dict:
    """Share of clips whose predicted class (multi-label: set of classes) is their label, with n and its
    Wilson interval."""
    from ssmusic.metrics.statistics import share

    if not len(labels):
        return share([])
    probabilities = judge.probabilities(x)
    if judge.multilabel:
        heard = [{c for c, v in zip(judge.classes, row) if v > 0.5} for row in probabilities]
        lenient = share([set(y.split("|")) <= h for h, y in zip(heard, labels)])  # extra instruments allowed
        return {**share([h == set(y.split("|")) for h, y in zip(heard, labels)]), "all_named_heard": lenient}
    return share([judge.classes[p] == y for p, y in zip(probabilities.argmax(-1), labels)])


def select(name: str, parts: dict[str, np.ndarray], rows: list[dict], kinds=FEATURES, l2_grid=L2_GRID) -> dict:
    """Fit `name` on the train rows for every (features, l2), keep the best on valid.
    parts: {feature part: [rows, dim]} aligned with rows. -> {'judge', 'candidates', 'scores', ...}"""
    from ssmusic.metrics.classifier import fit

    labels = [attribute_label(name, r) for r in rows]
    index = {split: [i for i, (r, y) in enumerate(zip(rows, labels)) if r.get("split") == split and y]
             for split in ("train", *SCORED_SPLITS)}
    if not index["train"] or not index["valid"]:
        raise SsmusicError(f"attribute {name}: no labelled train or valid clip (captions.csv columns "
                           f"{list(ATTRIBUTES[name][0])} and split)")
    train_y = [labels[i] for i in index["train"]]
    best, candidates = None, []
    for kind in kinds:
        x = combine(kind, parts)
        for l2 in l2_grid:
            judge = fit(x[index["train"]], train_y, name, l2=l2, kind=kind, multilabel=name in MULTILABEL)
            valid = accuracy(judge, x[index["valid"]], [labels[i] for i in index["valid"]])
            candidates.append({"features": kind, "l2": l2, "valid_accuracy": valid["value"]})
            if best is None or valid["value"] > best[0]:
                best = (valid["value"], judge, kind, l2)
    _, judge, kind, l2 = best
    x = combine(kind, parts)
    scores = {split: accuracy(judge, x[index[split]], [labels[i] for i in index[split]])
              for split in SCORED_SPLITS if index[split]}
    # the case it must fail: each clip judged against the next clip's label (a generator ignoring its prompt)
    ignored = {split: accuracy(judge, x[index[split]], [labels[i] for i in np.roll(index[split], -1)])
               for split in SCORED_SPLITS if index[split]}
    counts = Counter(train_y)
    return {"judge": judge, "features": kind, "l2": l2, "n_classes": len(judge.classes), "train_clips": len(train_y),
            "chance": None if judge.multilabel else round(1 / len(judge.classes), 4),
            "majority_class": {"class": counts.most_common(1)[0][0],
                               "train_share": round(counts.most_common(1)[0][1] / len(train_y), 4)},
            "scores": scores, "prompt_ignored": ignored, "candidates": candidates}


def main(argv: list[str] | None = None) -> int:
    from ssmusic.data.captions import dataset_rows
    from ssmusic.io import cache
    from ssmusic.io.atomic import write_json_atomic
    from ssmusic.metrics.attributes import FEATURE_PARTS, part_features

    parser = argparse.ArgumentParser(description="fit and measure the attribute judges of demo data v2")
    parser.add_argument("demo_dir", type=Path, help="demo data v2 (captions.csv with drums, melody_instrument, ...)")
    parser.add_argument("--out", type=Path, default=DEFAULT_ATTRIBUTE_DIR, help="where the judges are saved")
    parser.add_argument("--results", type=Path, default=Path("results/attribute_judge.json"))
    parser.add_argument("--attributes", default=",".join(ATTRIBUTES), help="comma list of " + ",".join(ATTRIBUTES))
    parser.add_argument("--cache-dir", type=Path, default=None, help="feature cache (default ~/.cache/ssmusic/embeddings)")
    args = parser.parse_args(argv)
    names = [a.strip() for a in args.attributes.split(",") if a.strip()]
    rows = dataset_rows(args.demo_dir) or []
    bad = [n for n in names if n not in ATTRIBUTES]
    missing = sorted({c for n in names if n in ATTRIBUTES for c in ATTRIBUTES[n][0] if rows and c not in rows[0]})
    if not rows or bad or missing or "split" not in rows[0]:
        raise SystemExit(f"{args.demo_dir / 'captions.csv'}: " + (f"unknown attributes {bad}" if bad else
                         f"expected demo data v2 with a split column and columns {missing or 'drums, ...'}"))
    cache_root = args.cache_dir or cache.root() / "embeddings"
    parts = {p: part_features(p, [r["path"] for r in rows], cache_root) for p in FEATURE_PARTS}
    results = {"command": " ".join(["python -m ssmusic.metrics.attribute_fit", *(argv or sys.argv[1:])]),
               "data": str(args.demo_dir), "fitted_on": "train split, real clips", "chosen_by": "valid accuracy",
               "l2_grid": list(L2_GRID), "attributes": {}}
    for name in names:
        chosen = select(name, parts, rows)
        judge = chosen.pop("judge")
        metrics = {k: v for k, v in chosen.items() if k != "candidates"}
        judge.save(_mkdir(args.out / name), metrics)
        results["attributes"][name] = chosen
        print(json.dumps({name: {"features": chosen["features"], "l2": chosen["l2"],
                                 **{s: v.get("value") for s, v in chosen["scores"].items()}}}))
    write_json_atomic(args.results, results)
    print(f"written: {args.out}, {args.results}")
    return 0


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


if __name__ == "__main__":
    raise SystemExit(main())
