"""Does the tempo played follow the tempo asked for? Hits against the same clips with the prompts shuffled.

    python benchmarks/tempo_follow.py GEN_DIR --out results/X.json

GEN_DIR is an `ssmusic evaluate --seeds` folder: each seed_*/evaluation_clips.json already holds, per
generated and per real clip, the tempo the evaluation's judge heard (ssmusic.metrics.tempo, librosa
by default) and the BPM its caption names; this reads them rather than listening again. Reported
per seed and for the split's real clips (the ceiling): the share within 8% and the share within 8%
up to an octave (the beat tracker often hears half or double time), each beside its chance level,
the same clips judged against the prompts of other clips (the mean over 1,000 shuffles). A model
that plays one tempo whatever it is asked scores its chance level; the real clips show the ceiling.
(Pearson's r of log BPM is not used: the tracker's octave errors dominate it, r = 0.23 on real clips
that hit 73%.)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ssmusic.io.atomic import write_json_atomic
from ssmusic.metrics.tempo import tempo_match


def _rates(asked: np.ndarray, heard: np.ndarray) -> tuple[float, float]:
    kinds = [tempo_match(h, a) for a, h in zip(asked, heard)]
    return kinds.count("hit") / len(kinds), (kinds.count("hit") + kinds.count("octave")) / len(kinds)


def follow(asked: list[float], heard: list[float], shuffles: int = 1000, seed: int = 0) -> dict:
    """Hits within 8% and up to an octave, n, and both at chance (asked BPMs shuffled over the clips)."""
    asked, heard = np.asarray(asked), np.asarray(heard)
    hit, octave = _rates(asked, heard)
    rng = np.random.default_rng(seed)
    chance = np.array([_rates(rng.permutation(asked), heard) for _ in range(shuffles)])
    return {"n": len(asked), "hit_8pct": round(hit, 4), "hit_or_octave": round(octave, 4),
            "chance_hit_8pct": round(float(chance[:, 0].mean()), 4),
            "chance_hit_or_octave": round(float(chance[:, 1].mean()), 4)}


def _pairs(clips: list[dict]) -> tuple[list[float], list[float]]:
    """(asked, heard) BPMs of the clips whose caption names a tempo."""
    music = [c["music"] for c in clips if c.get("music", {}).get("prompted_bpm")]
    return [m["prompted_bpm"] for m in music], [m["tempo_bpm"] for m in music]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("generated", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    seeds = sorted(args.generated.glob("seed_*/evaluation_clips.json"))
    if not seeds:
        sys.exit(f"{args.generated}: no seed_*/evaluation_clips.json (run `ssmusic evaluate ... --seeds` first)")
    report: dict = {"command": " ".join(["python benchmarks/tempo_follow.py", *sys.argv[1:]]), "seeds": {}}
    readings = {path.parent.name: json.loads(path.read_text()) for path in seeds}
    report["real"] = follow(*_pairs(next(iter(readings.values()))["reference"]))
    for name, clips in readings.items():
        report["seeds"][name] = follow(*_pairs(clips["generated"]))
    report["over_seeds"] = {key: {"mean": round(float(np.mean([s[key] for s in report["seeds"].values()])), 4),
                                  "min": min(s[key] for s in report["seeds"].values()),
                                  "max": max(s[key] for s in report["seeds"].values())}
                            for key in ("hit_8pct", "hit_or_octave", "chance_hit_8pct", "chance_hit_or_octave")}
    write_json_atomic(args.out, report)
    print(json.dumps({k: v for k, v in report.items() if k != "command"}, indent=1))


if __name__ == "__main__":
    main()
