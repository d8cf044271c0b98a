"""Short pilot training runs side by side: their validation rows, and each final model's
cross-entropy per codebook on the same valid windows (a K-codebook run's logged validation loss
averages its K codebooks, so it cannot be compared with a one-codebook run's; the first codebook's
can). A run's motion.json (benchmarks/pilot_motion.py) is included when present.

    python benchmarks/pilot_report.py /work/data/demo2_tokens /work/runs/pilot_pooled_K1 \
        /work/runs/pilot_cross_K1 /work/runs/pilot_cross_K4 --out results/pilots_demo2.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch


def validation_rows(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").open()]
    return [{k: r[k] for k in ("step", "val_loss", "val_loss_shuffled", "val_loss_null", "cond_gap", "wall_s")}
            for r in rows if "val_loss" in r]


@torch.no_grad()
def codebook_losses(model_dir: Path, data_dir: Path, clips: int, frames: int) -> list[float]:
    """Mean cross-entropy (no label smoothing) of each codebook over `clips` valid clips' first `frames`."""
    from ssmusic.data.datasets import CodesDataset, collate
    from ssmusic.model.lm import MusicLM

    model = MusicLM.from_pretrained(model_dir).eval()
    K = model.config.n_codebooks
    dataset = CodesDataset(data_dir, "valid", n_codebooks=K)
    index = np.linspace(0, len(dataset) - 1, clips).round().astype(int).tolist()
    total, count = torch.zeros(K), torch.zeros(K)
    for start in range(0, len(index), 4):
        batch = collate([dataset[i] for i in index[start:start + 4]])
        codes = batch["codes"][..., :frames]
        logits = model(codes, batch["text"], batch["text_mask"])
        for k in range(K):
            total[k] += torch.nn.functional.cross_entropy(logits[:, k].reshape(-1, logits.shape[-1]),
                                                          codes[:, k].reshape(-1), ignore_index=model.pad_id,
                                                          reduction="sum")
            count[k] += (codes[:, k] != model.pad_id).sum()
    return [round(float(x), 4) for x in total / count]


def latest_model(run: Path) -> Path:
    if (run / "final").is_dir():
        return run / "final"
    return sorted((run / "checkpoints").iterdir())[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--frames", type=int, default=216)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = {"command": " ".join(["python", *sys.argv]), "valid_clips": args.clips, "frames": args.frames, "runs": {}}
    for run in args.runs:
        model = latest_model(run)
        entry = {"train_config": json.loads((run / "train_config.json").read_text()), "model": str(model),
                 "validation": validation_rows(run),
                 "codebook_cross_entropy": codebook_losses(model, args.data_dir, args.clips, args.frames)}
        if (run / "motion.json").is_file():
            motion = json.loads((run / "motion.json").read_text())
            entry["motion"] = {"real": motion["real"]["median"],
                               **{k: v["median"] for k, v in motion["generated"].items()}}
        result["runs"][run.name] = entry
        print(run.name, entry["validation"][-1] if entry["validation"] else None, entry["codebook_cross_entropy"],
              flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
