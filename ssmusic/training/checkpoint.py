"""Training checkpoints: directories written atomically, safetensors for tensors, JSON for the rest.

    RUN_DIR/checkpoints/step_000500/
        lm_config.json  model.safetensors  pipeline.json      <- a complete model directory
        train_config.json  trainer_state.json  optimizer.safetensors
A checkpoint is built in a hidden temp directory and renamed into place, so a crash never leaves a
half-written one; older checkpoints beyond `keep` are deleted only after the new one exists.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch

from ssmusic.io.atomic import atomic_dir
from ssmusic.io.atomic import read_json, write_json_atomic
from ssmusic.errors import SsmusicError
from ssmusic.io.tensors import load_tensors, save_tensors

MODEL_FILES = ("lm_config.json", "model.safetensors", "pipeline.json", "train_config.json")


def optimizer_to_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer state_dict into tensors (safetensors) and plain data (JSON)."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{key}"] = value
            else:
                scalars[f"{index}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_from_tensors(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                           plain: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, value in list(tensors.items()) + list(plain["scalars"].items()):
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": plain["param_groups"]})


def save_checkpoint(run_dir: Path, step: int, model, optimizer, trainer_state: dict[str, Any],
                    rng: dict[str, torch.Tensor], pipeline: dict, train_config: dict, keep: int = 3) -> Path:
    root = run_dir / "checkpoints"
    final = root / f"step_{step:07d}"
    with atomic_dir(final) as tmp:
        model.save_pretrained(tmp)
        write_json_atomic(tmp / "pipeline.json", pipeline)
        write_json_atomic(tmp / "train_config.json", train_config)
        tensors, plain = optimizer_to_tensors(optimizer)
        save_tensors({**{f"optimizer.{k}": v for k, v in tensors.items()},
                      **{f"rng.{k}": v for k, v in rng.items()}}, tmp / "optimizer.safetensors")
        write_json_atomic(tmp / "trainer_state.json", {**trainer_state, "optimizer": plain})
    for old in sorted(root.glob("step_*"))[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def capture_rng(device: torch.device, generators: dict[str, torch.Generator]) -> dict[str, torch.Tensor]:
    """Every RNG a training step draws from: torch's CPU state, the named generators, and the CUDA
    state of the training device (dropout on GPU draws from it, so without it resume is exact only
    on CPU)."""
    rng = {"torch": torch.get_rng_state(), **{name: g.get_state() for name, g in generators.items()}}
    if device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(device)
    return rng


def restore_rng(rng: dict[str, torch.Tensor], device: torch.device, generators: dict[str, torch.Generator]) -> None:
    """Inverse of capture_rng. A checkpoint saved on CPU (or before CUDA states were saved) has no
    CUDA state: the device keeps its seeded one."""
    torch.set_rng_state(rng["torch"])
    for name, generator in generators.items():
        generator.set_state(rng[name])
    if device.type == "cuda" and "cuda" in rng:
        torch.cuda.set_rng_state(rng["cuda"], device)


def latest_checkpoint(run_dir: Path) -> Path | None:
    complete = [p for p in sorted((run_dir / "checkpoints").glob("step_*"))
                if (p / "trainer_state.json").is_file()]
    return complete[-1] if complete else None


def load_checkpoint(path: Path, model, optimizer) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Load weights + optimizer in place; -> (trainer_state, rng tensors)."""
    if hasattr(model, "load_from_checkpoint"):  # a LoRA fine-tune (finetune.LoraWeights) reads its adapters
        model.load_from_checkpoint(path)
    else:
        try:
            model.load_state_dict(load_tensors(path / "model.safetensors"))
        except RuntimeError as err:
            raise SsmusicError(f"{path}: weights do not fit this model ({str(err).splitlines()[0]})") from None
    tensors = load_tensors(path / "optimizer.safetensors")
    state = read_json(path / "trainer_state.json")
    optimizer_from_tensors(optimizer, {k[len("optimizer."):]: v for k, v in tensors.items() if k.startswith("optimizer.")},
                           state.pop("optimizer"))
    return state, {k[len("rng."):]: v for k, v in tensors.items() if k.startswith("rng.")}


def export_model(checkpoint: Path, destination: Path) -> None:
    """Copy a checkpoint's model files (no optimizer) to `destination`, replacing it atomically."""
    with atomic_dir(destination) as tmp:
        for name in MODEL_FILES:
            shutil.copy2(checkpoint / name, tmp / name)
        if (checkpoint / "adapter").is_dir():  # a LoRA fine-tune's adapters, beside the merged model
            shutil.copytree(checkpoint / "adapter", tmp / "adapter")
