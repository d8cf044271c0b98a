"""How well do the tempo and key estimators read real clips whose tempo and key are known?

    python -m ssmusic.experiments.judge_accuracy DATA_DIR --out results/judge_accuracy.json

DATA_DIR is a demo dataset (captions.csv with tempo_bpm, key and mode columns: the rendered MIDI's
tempo and the score's key). Every estimator of ssmusic.metrics.tempo and .key runs on every clip;
per-clip readings go to OUT's .clips.jsonl (resumable), shares with Wilson intervals to OUT. The
estimators the judges use by default are the most accurate on the train and valid splits among those
that need no optional install (essentia is AGPL-3.0 and optional: a default that depended on it would
make a figure depend on what is installed); the most accurate of all is reported beside them. Their
accuracy on the test split is the ceiling a generator is compared with.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


from ssmusic.errors import SsmusicError

CHROMAS = ("librosa-cqt", "essentia-hpcp")
MODE_PROFILES = ("krumhansl", "temperley")


def read_clip(row: dict) -> dict:
    """Every estimator's reading of one clip."""
    from ssmusic.io.audio import read_audio
    from ssmusic.metrics import key, tempo

    wav, rate = read_audio(row["path"], 22050, mono=True)
    wav = wav[0].numpy()
    essentia = tempo.has_essentia()
    tempos = {e: tempo.estimate_tempo(wav, rate, e) for e in tempo.ESTIMATORS if essentia or e != "essentia"}
    keys = {}
    for e in key.ESTIMATORS:
        if essentia or not e.startswith("essentia"):
            k = key.estimate_key(wav, rate, e)
            keys[e] = [k["tonic"], k["mode"]]
    chromas = {"librosa-cqt": key.mean_chroma(wav, rate)}
    if essentia:
        chromas["essentia-hpcp"] = key.essentia_chroma(wav, rate)
    tonic, _ = key.parse_key(row["key"])
    modes = {f"{c}/{p}": key.mode_given_tonic(wav, rate, tonic, p, chroma=chroma)
             for c, chroma in chromas.items() for p in MODE_PROFILES}
    return {"path": str(row["path"]), "split": row.get("split"), "tempo_bpm": float(row["tempo_bpm"]),
            "key": row["key"], "instrument": row.get("instrument"), "tempo": tempos, "key_estimate": keys,
            "mode_given_tonic": modes}


def summarize(clips: list[dict]) -> dict:
    """Shares with Wilson intervals per estimator: tempo hit/octave, key exact, mode, mode given tonic."""
    from ssmusic.metrics.key import parse_key
    from ssmusic.metrics.statistics import share
    from ssmusic.metrics.tempo import tempo_match

    out: dict = {"clips": len(clips), "tempo": {}, "key": {}, "mode": {}, "mode_given_tonic": {}}
    for name in clips[0]["tempo"]:
        matches = [tempo_match(c["tempo"][name], c["tempo_bpm"]) for c in clips]
        out["tempo"][name] = {"hit": share([m == "hit" for m in matches]),
                              "octave_error": share([m == "octave" for m in matches])}
    for name in clips[0]["key_estimate"]:
        truths = [parse_key(c["key"]) for c in clips]
        guesses = [tuple(c["key_estimate"][name]) for c in clips]
        out["key"][name] = share([g == t for g, t in zip(guesses, truths)])
        out["mode"][name] = share([g[1] == t[1] for g, t in zip(guesses, truths)])
    for name in clips[0]["mode_given_tonic"]:
        out["mode_given_tonic"][name] = share([c["mode_given_tonic"][name] == parse_key(c["key"])[1] for c in clips])
    return out


def choose(summary: dict, optional: bool = False) -> dict:
    """The estimator with the highest share on the selection splits, per task: among those that need
    no optional install (essentia), or among all with `optional`."""
    def best(table, key=lambda v: v["value"]):
        names = [name for name in table if optional or "essentia" not in name]
        return max(names, key=lambda name: key(table[name]))

    return {"tempo": best(summary["tempo"], lambda v: v["hit"]["value"]), "key": best(summary["key"]),
            "mode_given_tonic": best(summary["mode_given_tonic"])}


def run(data_dir: Path, out: Path, max_files: int = 0) -> dict:
    from tqdm import tqdm

    from ssmusic.data.captions import dataset_rows
    from ssmusic.io.atomic import write_json_atomic

    rows = dataset_rows(data_dir) or []
    missing = [c for c in ("tempo_bpm", "key", "split") if rows and c not in rows[0]]
    if not rows or missing:
        raise SsmusicError(f"{data_dir / 'captions.csv'}: expected columns tempo_bpm, key, split (missing {missing})")
    rows = rows[: max_files or None]
    log = out.with_suffix(".clips.jsonl")
    done = {}
    if log.is_file():
        done = {c["path"]: c for c in map(json.loads, log.read_text().splitlines()) if c}
    with log.open("a") as handle:
        for row in tqdm(rows, desc="estimators on real clips"):
            if str(row["path"]) not in done:
                clip = read_clip(row)
                handle.write(json.dumps(clip) + "\n")
                handle.flush()
                done[clip["path"]] = clip
    clips = [done[str(r["path"])] for r in rows]
    selection = [c for c in clips if c["split"] in ("train", "valid")]
    test = [c for c in clips if c["split"] == "test"]
    result = {"command": " ".join(["python -m ssmusic.experiments.judge_accuracy", *sys.argv[1:]]),
              "data": str(data_dir), "tolerance": "tempo within 8% of the clip's BPM; octave = within 8% of 2x or 0.5x",
              "selection_splits": "train+valid", "selection": summarize(selection) if selection else None,
              "test": summarize(test) if test else None, "all": summarize(clips)}
    result["chosen"] = choose(result["selection"] or result["all"])
    result["chosen_on_test"] = {task: _pick(result["test"] or result["all"], task, name)
                                for task, name in result["chosen"].items()}
    result["most_accurate"] = choose(result["selection"] or result["all"], optional=True)
    write_json_atomic(out, result)
    return result


def _pick(summary: dict, task: str, name: str) -> dict:
    entry = summary[task][name]
    return entry["hit"] if task == "tempo" else entry


def main() -> None:
    parser = argparse.ArgumentParser(description="tempo and key estimators on real clips of known tempo and key")
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max-files", type=int, default=0)
    args = parser.parse_args()
    result = run(args.data_dir, args.out, args.max_files)
    print(json.dumps({"chosen": result["chosen"], "on_test": result["chosen_on_test"],
                      "most_accurate": result["most_accurate"]}, indent=1))


if __name__ == "__main__":
    main()
