"""Choose between candidate models by the sampling experiment's rule, across models and settings.

    python benchmarks/compare_candidates.py --out results/X.json NAME=SWEEP.json [NAME=SWEEP.json ...]

Each SWEEP.json is one model's `python -m ssmusic.experiments.sampling` output on the same split,
seeds and captions. Every (model, setting) pair is ranked on every criterion of that experiment
(ssmusic.experiments.sampling.CRITERIA: 1 = best, ties share the mean rank) and the lowest mean
rank is chosen, as the experiment chooses a setting for one model. Prints the table of means.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ssmusic.experiments.sampling import CRITERIA, rank
from ssmusic.io.atomic import write_json_atomic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweeps", nargs="+", metavar="NAME=SWEEP.json")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    tables, settings, sources = {}, {}, {}
    for item in args.sweeps:
        name, _, path = item.partition("=")
        sweep = json.loads(Path(path).read_text())
        sources[name] = {"file": path, "command": sweep["command"], "split": sweep["split"], "seeds": sweep["seeds"]}
        for setting, entry in sweep["settings"].items():
            tables[f"{name}/{setting}"] = entry["over_seeds"]
            settings[f"{name}/{setting}"] = {"model": name, **entry["setting"]}
    if len({(s["split"], tuple(s["seeds"])) for s in sources.values()}) != 1:
        sys.exit("compare_candidates: the sweeps were judged on different splits or seeds")
    choice = rank(tables)
    print(f"{'model/setting':45s} {'':10s}  " + " | ".join(CRITERIA))
    for key in sorted(tables, key=choice["mean_rank"].get):
        cells = [f"{tables[key][path]['mean']:.3f}" if path in tables[key] else "-" for path, _ in CRITERIA.values()]
        print(f"{key:45s} rank {choice['mean_rank'][key]:5.2f}  " + " ".join(cells))
    write_json_atomic(args.out, {"command": " ".join(["python benchmarks/compare_candidates.py", *sys.argv[1:]]),
                                 "sweeps": sources, **choice, "chosen_setting": settings[choice["chosen"]],
                                 "candidates": {k: {"setting": settings[k], "over_seeds": tables[k]} for k in tables}})
    print(json.dumps({"chosen": choice["chosen"]}))


if __name__ == "__main__":
    main()
