"""`ssmusic compare`: the papers' experiment. Train each backbone at a matched parameter count on
the same data order and seed, then plot validation loss against steps and wall time and tabulate
when each backbone first reaches the Transformer's final validation loss.

Resumable per backbone: a finished run (RUN/final) is reused, an interrupted one is resumed.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from ssmusic.config import write_json_atomic
from ssmusic.errors import SsmusicError
from ssmusic.train import TrainConfig, train


def read_metrics(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def summarize(curves: dict[str, list[dict]], reference: str = "transformer") -> dict:
    """Validation losses by step for each backbone, and the first step each reaches the reference's
    final validation loss (None if it never does)."""
    table: dict[int, dict[str, float]] = {}
    for backbone, records in curves.items():
        for record in records:
            if "val_loss" in record:
                table.setdefault(record["step"], {})[backbone] = record["val_loss"]
    summary = {"val_loss_by_step": {str(step): table[step] for step in sorted(table)}, "tokens_per_s": {},
               "reference": reference, "reference_final_val_loss": None, "first_step_reaching_reference": {}}
    for backbone, records in curves.items():
        speeds = [r["tokens_per_s"] for r in records[1:]] or [r["tokens_per_s"] for r in records]
        summary["tokens_per_s"][backbone] = round(sorted(speeds)[len(speeds) // 2], 1) if speeds else None
    if reference in curves:
        finals = [r["val_loss"] for r in curves[reference] if "val_loss" in r]
        if finals:
            target = finals[-1]
            summary["reference_final_val_loss"] = target
            for backbone, records in curves.items():
                hits = [r for r in records if "val_loss" in r and r["val_loss"] <= target]
                summary["first_step_reaching_reference"][backbone] = (
                    {"step": hits[0]["step"], "wall_s": hits[0]["wall_s"]} if hits else None)
    return summary


def markdown(summary: dict, backbones: list[str]) -> str:
    lines = ["| step | " + " | ".join(backbones) + " |", "|---" * (len(backbones) + 1) + "|"]
    for step, losses in summary["val_loss_by_step"].items():
        lines.append(f"| {step} | " + " | ".join(f"{losses[b]:.4f}" if b in losses else "" for b in backbones) + " |")
    lines.append("| train tokens/s (median) | " + " | ".join(str(summary["tokens_per_s"].get(b)) for b in backbones) + " |")
    if summary["reference_final_val_loss"] is not None:
        reached = []
        for b in backbones:
            hit = summary["first_step_reaching_reference"].get(b)
            reached.append(f"step {hit['step']} ({hit['wall_s']:.0f} s)" if hit else "not reached")
        lines.append(f"| first reaches {summary['reference']}'s final {summary['reference_final_val_loss']:.4f} | "
                     + " | ".join(reached) + " |")
    return "\n".join(lines)


def plot(curves: dict[str, list[dict]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (by_step, by_time) = plt.subplots(1, 2, figsize=(11, 4))
    for backbone, records in curves.items():
        evals = [r for r in records if "val_loss" in r]
        by_step.plot([r["step"] for r in evals], [r["val_loss"] for r in evals], marker="o", label=backbone)
        by_time.plot([r["wall_s"] for r in evals], [r["val_loss"] for r in evals], marker="o", label=backbone)
    by_step.set(xlabel="optimizer step", ylabel="validation loss (CE per token)", title="vs steps")
    by_time.set(xlabel="training wall time (s)", title="vs wall time")
    for axis in (by_step, by_time):
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    figure.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    figure.savefig(tmp, dpi=110)
    plt.close(figure)
    tmp.replace(path)


def compare(data_dir: str | Path, out_dir: str | Path, base: TrainConfig, backbones: list[str],
            progress: bool = True) -> dict:
    out_dir = Path(out_dir)
    unknown = [b for b in backbones if b not in ("simba", "mamba", "transformer")]
    if unknown or not backbones:
        raise SsmusicError(f"--backbones: expected a comma list of simba, mamba, transformer; got {backbones}")
    curves = {}
    for backbone in backbones:
        run_dir = out_dir / backbone
        if not (run_dir / "final").is_dir():
            resume = (run_dir / "train_config.json").is_file()
            if progress:
                print(f"== {backbone}" + (" (resuming)" if resume else ""))
            train(data_dir, run_dir, replace(base, backbone=backbone), resume=resume, progress=progress)
        curves[backbone] = read_metrics(run_dir)
    summary = summarize(curves)
    summary.update(preset=base.preset, steps=base.steps, conditioning=base.conditioning, seed=base.seed)
    plot(curves, out_dir / "compare.png",
         f"{base.preset} preset, {base.conditioning} conditioning, matched parameters, seed {base.seed}")
    write_json_atomic(out_dir / "compare.json", summary)
    table = markdown(summary, backbones)
    (out_dir / "compare.md").write_text(table + "\n")
    return {"summary": summary, "table": table}


def run(args) -> int:
    from ssmusic.train import config_from_args

    args.resume, args.backbone = False, "simba"  # each backbone is set per run
    base = config_from_args(args)
    result = compare(args.data_dir, args.out, base, [b.strip() for b in args.backbones.split(",") if b.strip()])
    print(result["table"])
    print(f"plot: {Path(args.out) / 'compare.png'}")
    return 0
