"""Collect `ssmusic codec train-decoder` runs (pilots and the long run) into one results file.

    python benchmarks/decoder_runs.py RUN_DIR [RUN_DIR ...] --out results/decoder_runs.json

Per run: its settings (train_config.json), the decoder's size, the validation STFT distance at each
evaluation (metrics.jsonl) beside Griffin-Lim's on the same segments (valid_griffin_lim.json) and
their ratio, the training loss averaged over the last 100 steps, and the wall-clock seconds (over all
sessions of a resumed run). The
validation segments are the demo valid split and the real recordings' valid tracks (never test).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ssmusic.io.atomic import read_json, write_json_atomic


def read_records(run: Path) -> tuple[list[dict], float]:
    """metrics.jsonl's records, one per step (a resumed run logs the steps after its last checkpoint
    again; the later record is kept), and the wall-clock seconds summed over its sessions (each
    session's clock starts at 0)."""
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    by_step = {r["step"]: r for r in lines}
    ends = [a["seconds"] for a, b in zip(lines, lines[1:]) if b["seconds"] < a["seconds"]]
    seconds = sum(ends) + (lines[-1]["seconds"] if lines else 0.0)
    return [by_step[s] for s in sorted(by_step)], round(seconds, 1)


def summarize(run: Path) -> dict:
    records, seconds = read_records(run)
    griffin_lim = read_json(run / "valid_griffin_lim.json")
    vocoder = read_json(run / "checkpoint" / "vocoder.json")
    from ssmusic.codec.vocoder import Vocoder

    parameters = sum(p.numel() for p in Vocoder.load(run / "checkpoint").parameters())
    evaluations = [{"step": r["step"], "valid": r["valid"],
                    "ratio_to_griffin_lim": {k: round(v / griffin_lim[k], 4) for k, v in r["valid"].items()}}
                   for r in records if "valid" in r]
    last = records[-100:]
    return {"run": run.name, "train_config": read_json(run / "train_config.json"), "vocoder": vocoder,
            "parameters": parameters, "steps_done": records[-1]["step"] if records else 0,
            "wall_seconds_all_sessions": seconds,
            "train_loss_last_100": round(sum(r["loss"] for r in last) / max(1, len(last)), 4),
            "valid_griffin_lim": griffin_lim, "evaluations": evaluations}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("results/decoder_runs.json"))
    args = parser.parse_args()
    results = {"command": "python " + " ".join(sys.argv), "runs": [summarize(run) for run in args.runs]}
    write_json_atomic(args.out, results)
    for run in results["runs"]:
        final = run["evaluations"][-1] if run["evaluations"] else {}
        print(run["run"], run["parameters"], final.get("step"), final.get("ratio_to_griffin_lim"))


if __name__ == "__main__":
    main()
