"""Fine-tune the shipped default model on music it has not heard; measure before and after.

    python benchmarks/finetune_unseen.py --work /work/data/finetune_unseen --out results/finetune_unseen.json

Every step is an `ssmusic` command (printed, and recorded in the results JSON), skipped when its
output exists, so an interrupted run resumes:
  1. data demo: 240 clips of 10 s rendered with instruments the model has not heard (--instruments;
     the default, trumpet, accordion, steel drums and banjo, is outside the previous default's ten, with
     which results/finetune_unseen.json was measured; the demo-v2 default has heard trumpet and
     accordion, so for it pass e.g. --instruments "steel drums,banjo,sitar,kalimba"); splits by piece.
  2. prepare: the first --train-clips clips of the train split (tens of clips) + all valid and test clips.
  3. a 4-instrument classifier (logistic regression on mel-stats) fitted on the 240-clip set's train
     split: the shipped one knows only the ten instruments, so it cannot judge these.
  4. generate from the test split's captions with the default model (before), then fine-tune it fully
     and with LoRA (time and peak RSS of each training process) and generate from each (after).
  5. evaluate every generated set against the test split: FAD (mel-stats), KL and instrument accuracy
     with the new classifier; validation loss before (the fine-tune's step-0 row) and after.
`--stage prep` builds the data only; `--stage full` / `--stage lora` then run one variant each (the
default model's generation goes with lora), so the two can run in parallel processes; a final run
without --stage (everything then cached) writes the JSON.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

INSTRUMENTS = "trumpet,accordion,steel drums,banjo"
PY = [sys.executable, "-m", "ssmusic"]


def sh(command: list[str], log: Path) -> dict:
    """Run a command (its output to `log`); -> wall seconds and the process's peak RSS."""
    print("$", shlex.join(command), flush=True)
    started = time.time()
    with log.open("a") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT,
                                   env={**os.environ, "OMP_NUM_THREADS": "1"})
        _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed ({os.waitstatus_to_exitcode(status)}): {shlex.join(command)}; see {log}")
    return {"command": shlex.join(command), "wall_s": round(time.time() - started, 1),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def subset_captions(demo: Path, out: Path, train_clips: int) -> Path:
    rows = list(csv.DictReader((demo / "captions.csv").open(newline="", encoding="utf-8")))
    train = [r for r in rows if r["split"] == "train"][:train_clips]
    keep = train + [r for r in rows if r["split"] != "train"]
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(keep)
    return out


def evaluate(generated: Path, demo: Path, classifier: Path, log: Path) -> dict:
    out = generated / "evaluation.json"
    if not out.is_file():
        sh(PY + ["evaluate", str(generated), "--reference", str(demo), "--split", "test", "--metrics",
                 "fad,kl,adherence", "--classifier", str(classifier), "--out", str(out)], log)
    result = json.loads(out.read_text())
    adherence = result["adherence"]
    return {"fad": round(result["fad"]["value"], 3), "kl": round(result["kl"]["value"], 4),
            "instrument_accuracy": adherence.get("value"), "accuracy_ceiling": adherence.get("ceiling"),
            "chance": adherence.get("chance"), "most_predicted": adherence.get("most_predicted"),
            "n_generated": result["n_generated"], "n_reference": result["n_reference"],
            "command": f"ssmusic evaluate {generated} --reference {demo} --split test --metrics fad,kl,adherence "
                       f"--classifier {classifier}"}


def generate(model: str, out: Path, demo: Path, args, log: Path) -> dict:
    if not (out / "done").is_file():
        record = sh(PY + ["generate", "--checkpoint", model, "--prompts-from", str(demo / "captions.csv"), "--split",
                          "test", "--samples", str(args.samples), "--seconds", str(args.seconds), "--seed", "0",
                          "--threads", "1", "-o", str(out)], log)
        (out / "done").write_text(json.dumps(record))
    return json.loads((out / "done").read_text())


def metrics_rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def fine_tune(name: str, flags: list[str], tokens: Path, work: Path, args, log: Path) -> dict:
    run = work / name
    done = run / "timing.json"
    if not done.is_file():
        command = PY + ["train", str(tokens), "--init-from", "default", "--out", str(run), "--steps", str(args.steps),
                        "--batch-size", "4", "--crop-frames", "216", "--eval-every", str(args.steps // 4),
                        "--save-every", str(args.steps // 4), "--threads", "1", "--seed", "0", *flags]
        if (run / "checkpoints").is_dir():
            command.append("--resume")  # an interrupted run: its time and memory restart from here
        done.parent.mkdir(parents=True, exist_ok=True)
        done.write_text(json.dumps(sh(command, log)))
    timing = json.loads(done.read_text())
    rows = metrics_rows(run)
    evals = [r for r in rows if "val_loss" in r]
    steps = [r for r in rows if "loss" in r]
    from ssmusic.io.tensors import load_tensors

    adapter = run / "final" / "adapter" / "adapter_model.safetensors"
    weights = load_tensors(adapter if adapter.is_file() else run / "final" / "model.safetensors")
    trained = sum(t.numel() for t in weights.values())
    return {"flags": flags, "train": timing, "val_loss_before": evals[0]["val_loss"],
            "val_loss_after": evals[-1]["val_loss"], "val_curve": [(r["step"], r["val_loss"]) for r in evals],
            "cond_gap_after": evals[-1]["cond_gap"], "train_s_logged": steps[-1]["wall_s"],
            "trained_parameters": f"{trained / 1e6:.2f}M",
            "generate": generate(str(run / "final"), work / f"gen_{name}", args.demo, args, log),
            "generated": evaluate(work / f"gen_{name}", args.demo, work / "classifier", log)}


def table(results: dict) -> str:
    lines = ["| model | trained parameters | val loss (9 valid clips) | FAD ↓ | KL ↓ | instrument accuracy | train time | peak RSS |",
             "|---|---|---|---|---|---|---|---|"]
    before = results["before"]
    lines.append(f"| default model (before) | – | {results['full']['val_loss_before']:.3f} | {before['fad']:.2f} | "
                 f"{before['kl']:.3f} | {before['instrument_accuracy']:.0%} | – | – |")
    for name, label in (("full", "full fine-tune"), ("lora", f"LoRA rank {results['setup']['lora_rank']}")):
        run, gen = results[name], results[name]["generated"]
        lines.append(f"| {label} | {run['trained_parameters']} | {run['val_loss_after']:.3f} | {gen['fad']:.2f} | "
                     f"{gen['kl']:.3f} | {gen['instrument_accuracy']:.0%} | {run['train']['wall_s'] / 60:.1f} min | "
                     f"{run['train']['peak_rss_mb']:.0f} MB |")
    ceiling = before["accuracy_ceiling"]
    lines.append(f"\nInstrument accuracy: ceiling (the classifier on the real test clips) {ceiling:.0%}, chance "
                 f"{before['chance']:.0%}.")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/work/data/finetune_unseen"))
    parser.add_argument("--demo", type=Path, default=Path("/work/data/unseen_demo"))
    parser.add_argument("--out", type=Path, default=Path("results/finetune_unseen.json"))
    parser.add_argument("--instruments", default=INSTRUMENTS, help="comma list of General MIDI instruments")
    parser.add_argument("--train-clips", type=int, default=48)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--lora-rank", type=int, default=16)
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--stage", choices=["all", "prep", "full", "lora"], default="all")
    args = parser.parse_args()
    work, demo = args.work, args.demo
    work.mkdir(parents=True, exist_ok=True)
    log = work / f"log_{args.stage}.txt"
    if not (demo / "dataset.json").is_file():
        sh(PY + ["data", "demo", str(demo), "--version", "1", "--clips", "240", "--instruments", args.instruments,
                  "--workers", "1"], log)
    tokens = work / "tokens"
    if not (tokens / "manifest.json").is_file():
        captions = subset_captions(demo, work / "captions_finetune.csv", args.train_clips)
        sh(PY + ["prepare", str(demo), "--captions", str(captions), "--out", str(tokens), "--clip-seconds", "10"], log)
    if not (work / "classifier" / "classifier.json").is_file():
        sh([sys.executable, "-m", "ssmusic.metrics.classifier", str(demo), "--out", str(work / "classifier")], log)
    if args.stage in ("all", "lora"):
        generate("ssmusic/assets/default_model", work / "gen_before", demo, args, log)
    variants = {"full": [], "lora": ["--lora-rank", str(args.lora_rank)]}
    for name, flags in variants.items():
        if args.stage in ("all", name):
            fine_tune(name, flags, tokens, work, args, log)
    if args.stage != "all":
        return
    results = {
        "setup": {"instruments": args.instruments, "demo": str(demo), "train_clips": args.train_clips,
                  "manifest_splits": json.loads((tokens / "manifest.json").read_text())["splits"],
                  "steps": args.steps, "lora_rank": args.lora_rank, "batch_size": 4, "crop_frames": 216, "samples_per_prompt": args.samples,
                  "seconds": args.seconds, "threads": 1, "machine": f"{os.cpu_count()} CPU cores, shared with another job",
                  "classifier": json.loads((work / "classifier" / "classifier.json").read_text())},
        "before": evaluate(work / "gen_before", demo, work / "classifier", log),
        "full": fine_tune("full", variants["full"], tokens, work, args, log),
        "lora": fine_tune("lora", variants["lora"], tokens, work, args, log),
        "command": "python benchmarks/finetune_unseen.py " + shlex.join(sys.argv[1:]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(table(results))
    print(json.dumps({k: results[k] for k in ("before",)}, indent=1))
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
