"""Resuming a run exactly: its config, its metrics log and its checkpoint's state."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Iterable

import torch

from ssmusic.io.atomic import atomic_path, read_json
from ssmusic.training.checkpoint import load_checkpoint, restore_rng
from ssmusic.config import from_dict
from ssmusic.errors import SsmusicError
from ssmusic.training.config import TrainConfig

# Flags that may change on --resume: they do not change what the run computes. Any other flag
# that differs from the run's is refused rather than silently ignored.
RESUME_MAY_CHANGE = ("steps", "eval_every", "eval_batches", "save_every", "keep_checkpoints", "device",
                     "tensorboard", "compile")


def cli_flag(name: str) -> str:
    """The command-line flag of a TrainConfig field (model_overrides: --model)."""
    return "--model" if name == "model_overrides" else "--" + name.replace("_", "-")


def resume_config(run_dir: Path, config: TrainConfig, given: Iterable[str], announce: bool = True) -> TrainConfig:
    """The run's saved config with the fields in `given` (those the user set) applied where allowed.
    `steps` 0 keeps the run's."""
    saved = run_dir / "train_config.json"
    if not saved.is_file():
        raise SsmusicError(f"{run_dir}: nothing to resume (train_config.json is missing)")
    previous = from_dict(TrainConfig, read_json(saved), str(saved))
    changes = {}
    for name in sorted(given):
        new, old = getattr(config, name), getattr(previous, name)
        if new == old or (name == "steps" and not new):
            continue
        if name not in RESUME_MAY_CHANGE:
            raise SsmusicError(f"--resume: {cli_flag(name)} {new!r} conflicts with the run's {old!r} ({saved}); "
                               f"drop {cli_flag(name)} to continue the run, or train into a new --out")
        changes[name] = new
        if announce:
            print(f"resume: {cli_flag(name)} changed from {old!r} to {new!r}")
    return dataclasses.replace(previous, **changes)


def truncate_metrics(path: Path, step: int) -> None:
    """Keep the rows up to `step` (the checkpoint a resumed run restarts from): rows written after it
    would appear twice, and a half-written last line is dropped."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("step", 0) <= step:
            keep.append(line + "\n")
    with atomic_path(path) as tmp:
        tmp.write_text("".join(keep))




def restore(checkpoint: Path, data_dir: Path, pipeline: dict, model: torch.nn.Module,
            optimizer: torch.optim.Optimizer, device: torch.device, generators: dict) -> dict:
    """Load `checkpoint` into the model, optimizer and `generators` (after checking the dataset is
    the run's: same codec, card and text encoder); -> its trainer state (step, elapsed, data order)."""
    saved_pipeline = read_json(checkpoint / "pipeline.json")
    for key in ("codec", "card", "text_encoder"):
        if saved_pipeline.get(key) != pipeline[key]:
            raise SsmusicError(f"{data_dir}: dataset {key} {pipeline[key]!r} does not match the run's "
                               f"{saved_pipeline.get(key)!r} ({checkpoint})")
    state, rng = load_checkpoint(checkpoint, model, optimizer)
    restore_rng(rng, device, generators)
    return state
