"""What makes the caption matter: one table, one training budget per row.

Each row trains the default model's architecture (prefix SiMBA, d 256, 8 layers) with one change,
then generates the captions of a split (seed 0, 10 s) and scores them with `ssmusic evaluate`:
instrument accuracy (with its ceiling on the real clips and chance), FAD and KL, plus the
conditioning gap the training log holds (validation CE with shuffled minus true captions).
Rows are chosen on the valid split; the test split is kept for the shipped model's final numbers.

    python benchmarks/prompt_adherence.py DATA_DIR DEMO_DIR --out runs/adherence \
        --results results/prompt_adherence.json [--rows baseline,pooled,...] [--steps 600]

Resumable: a finished run, generation or evaluation is reused; an interrupted training resumes.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from ssmusic.io.atomic import atomic_path
from ssmusic.training.train import TrainConfig, train

# The default model's recipe, at a shorter budget on 5 s crops (SiMBA has no positions, so crops
# cost nothing at generation) so that every row fits in minutes on 2 cores.
BASE = TrainConfig(preset="small", backbone="simba", conditioning="prefix", steps=600, batch_size=4, lr=1e-3,
                   warmup_steps=60, crop_frames=216, eval_windows=False, eval_every=200, save_every=200, keep_checkpoints=1,
                   model_overrides={"d_model": 256, "n_layers": 8})
ROWS: dict[str, dict] = {
    "baseline": {"note": "prefix only (the shipped model's architecture)"},
    "pooled": {"note": "prefix + pooled sentence vector at every position", "model": {"pooled_text": True}},
    "pooled-only": {"note": "pooled sentence vector only (no prefix)", "conditioning": "pooled"},
    "cross": {"note": "cross-attention instead of prefix", "conditioning": "cross"},
    "dropout-0.3": {"note": "prefix, caption dropout 0.3 instead of 0.1", "caption_dropout": 0.3},
    "pooled-dropout-0.3": {"note": "prefix + pooled, caption dropout 0.3", "model": {"pooled_text": True},
                           "caption_dropout": 0.3},
    "pooled-text-lr-10x": {"note": "prefix + pooled, 10x learning rate on the text projection and pooled vector",
                           "model": {"pooled_text": True}, "text_lr_scale": 10.0},
    "pooled-wide": {"note": "prefix + pooled, d 384 x 10 layers", "model": {"pooled_text": True, "d_model": 384,
                                                                           "n_layers": 10}},
    "baseline-2x-steps": {"note": "prefix only, twice the steps", "steps_mult": 2},
    "pooled-2x-steps": {"note": "prefix + pooled, twice the steps", "model": {"pooled_text": True}, "steps_mult": 2},
}
# Models trained elsewhere, scored with --existing NAME=RUN_DIR
EXISTING_NOTES = {
    "shipped-1200-steps": "the first default model: prefix only, 1,200 steps on whole clips (4x the tokens of a 600-step row)",
    "default-prefix-pooled": "candidate default: prefix + pooled, 2,400 steps on 5 s crops (4x a row's tokens)",
    "default-pooled-only": "candidate default: pooled only, 2,400 steps on 5 s crops (4x a row's tokens)",
}


def row_config(name: str, steps: int) -> TrainConfig:
    row = ROWS[name]
    overrides = {**BASE.model_overrides, **row.get("model", {})}
    return replace(BASE, steps=steps * row.get("steps_mult", 1), model_overrides=overrides,
                   conditioning=row.get("conditioning", BASE.conditioning),
                   caption_dropout=row.get("caption_dropout", BASE.caption_dropout),
                   text_lr_scale=row.get("text_lr_scale", BASE.text_lr_scale))


def captions(demo_dir: Path, split: str) -> list[str]:
    with (demo_dir / "captions.csv").open(newline="", encoding="utf-8") as handle:
        return [r["caption"] for r in csv.DictReader(handle) if r["split"] == split]


def generate_and_score(model_dir: Path, out: Path, demo_dir: Path, split: str, cfg: float | None,
                       temperature: float | None = None) -> dict:
    """Generate the split's captions (or `prompts`) once with seed 0, then evaluate against the split."""
    from ssmusic.cli import main
    from ssmusic.metrics.evaluate import evaluate

    prompts = captions(demo_dir, split)
    if len(list(out.glob("*.json"))) < len(prompts):
        started = time.time()
        argv = ["generate", *prompts, "-o", str(out), "--seed", "0", "--checkpoint", str(model_dir),
                "--batch", "12", "--seconds", "10"]
        if cfg is not None:
            argv += ["--cfg", str(cfg)]
        if temperature is not None:
            argv += ["--temperature", str(temperature)]
        if main(argv) != 0:
            raise SystemExit(f"generation failed for {model_dir}")
        (out / "generate_seconds.txt").write_text(f"{time.time() - started:.1f}\n")
    return evaluate(out, demo_dir, ["fad", "kl", "adherence"], split=split, progress=False)


def conditioning_gap(run_dir: Path, data_dir: Path) -> dict:
    """The last logged validation losses, computed now for a model trained before they were logged."""
    from ssmusic.data.datasets import CodesDataset
    from ssmusic.model.lm import MusicLM
    from ssmusic.training.validation import evaluate

    evals = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in evals if "val_loss" in r][-1]
    if "val_loss_shuffled" not in last:
        import torch

        model = MusicLM.from_pretrained(run_dir / "final")
        valid = CodesDataset(data_dir, "valid", n_codebooks=model.config.n_codebooks)
        last = {**last, **evaluate(model, valid, BASE, torch.device("cpu"), None)}
    return last


def summary(name: str, run_dir: Path, scores: dict, cfg: float | None, temperature: float | None,
            data_dir: Path) -> dict:
    last = conditioning_gap(run_dir, data_dir)
    adherence = scores["adherence"]
    note = ROWS[name]["note"] if name in ROWS else EXISTING_NOTES.get(name, f"model {run_dir / 'final'}")
    return {"row": name, "note": note, "steps": last["step"], "cfg": cfg,
            "temperature": temperature,
            "train_wall_s": last["wall_s"], "instrument_accuracy": adherence.get("value"),
            "ceiling": adherence.get("ceiling"), "chance": adherence.get("chance"),
            "most_predicted": adherence.get("most_predicted"), "val_loss": last["val_loss"],
            "val_loss_shuffled": last["val_loss_shuffled"], "val_loss_null": last["val_loss_null"],
            "cond_gap": last["cond_gap"], "fad": scores["fad"]["value"],
            "kl": scores["kl"]["value"] if "value" in scores["kl"] else None}


def record(path: Path, row: dict, split: str) -> None:
    """Add or replace `row` in the results file; a lock lets several processes share one file."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(path.read_text()) if path.is_file() else {"commands": [], "split": split, "rows": []}
        command = " ".join(["python", *sys.argv])
        data["commands"] = sorted(set(data.get("commands", [])) | {command})
        key = ("row", "cfg", "temperature")
        data["rows"] = [r for r in data["rows"] if [r.get(k) for k in key] != [row[k] for k in key]] + [row]
        data["base"] = {k: v for k, v in vars(BASE).items()}
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(data, indent=2) + "\n")


def markdown(path: Path) -> str:
    """The results file as docs/model.md's table: one line per row and sampling setting."""
    data = json.loads(path.read_text())
    lines = ["| row | change | steps | CFG | instrument accuracy | most predicted | cond. gap | val CE | FAD | KL |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    order = [*EXISTING_NOTES, *ROWS]
    rows = sorted(data["rows"], key=lambda r: (order.index(r["row"]) if r["row"] in order else len(order),
                                               r["cfg"] or 0, r.get("temperature") or 0))
    for r in rows:
        top = r["most_predicted"] or {"class": "-", "share": 0}
        cfg = "model's" if r["cfg"] is None else f"{r['cfg']:g}"
        if r.get("temperature") is not None:
            cfg += f", T {r['temperature']:g}"
        lines.append(f"| {r['row']} | {r['note']} | {r['steps']} | {cfg} | {r['instrument_accuracy']:.0%} | "
                     f"{top['class']} ({top['share']:.0%}) | {r['cond_gap']:.3f} | {r['val_loss']:.3f} | "
                     f"{r['fad']:.1f} | {r['kl']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("demo_dir", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--rows", default=",".join(ROWS))
    parser.add_argument("--steps", type=int, default=BASE.steps)
    parser.add_argument("--split", default="valid")
    parser.add_argument("--cfg", default="", help="comma list of CFG scales to sweep (default: the model's)")
    parser.add_argument("--temperature", type=float, default=None, help="sampling temperature (default: the model's)")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--existing", action="append", default=[], metavar="NAME=RUN_DIR",
                        help="also score an already trained run (RUN_DIR/final) as row NAME")
    parser.add_argument("--table", action="store_true", help="only print the results file as a Markdown table")
    args = parser.parse_args()
    if args.table:
        print(markdown(args.results))
        return
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    scales = [float(c) for c in args.cfg.split(",") if c] or [None]
    existing = dict(item.split("=", 1) for item in args.existing)
    for name in [r.strip() for r in args.rows.split(",") if r.strip()] + list(existing):
        if name not in ROWS and name not in existing:
            raise SystemExit(f"--rows: unknown row {name!r}; known: {', '.join(ROWS)}")
        run_dir = Path(existing[name]) if name in existing else args.out / name
        if not (run_dir / "final").is_dir():
            resume = (run_dir / "checkpoints").is_dir()
            print(f"== {name}" + (" (resuming)" if resume else ""), flush=True)
            train(args.data_dir, run_dir, row_config(name, args.steps), resume=resume)
        for cfg in scales:
            t = args.temperature
            gen_dir = run_dir / (f"gen_{args.split}" + (f"_cfg{cfg:g}" if cfg is not None else "")
                                 + (f"_t{t:g}" if t is not None else ""))
            scores = generate_and_score(run_dir / "final", gen_dir, args.demo_dir, args.split, cfg, t)
            row = summary(name, run_dir, scores, cfg, t, args.data_dir)
            record(args.results, row, args.split)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
