"""Tensors on disk: safetensors only (never pickle), written atomically."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import torch

from ssmusic.io.atomic import atomic_path
from ssmusic.errors import SsmusicError


def save_tensors(tensors: dict[str, torch.Tensor], path: str | os.PathLike,
                 metadata: dict[str, str] | None = None) -> None:
    """Write a safetensors file via temp file + rename: a crash leaves the old file intact."""
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp), metadata=metadata)


def load_tensors(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise SsmusicError(f"{path}: file not found")
    try:
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError) as err:
        raise SsmusicError(f"{path}: not a readable safetensors file ({err})") from None


def check_shapes(expected: Mapping[str, torch.Tensor], weights: Mapping[str, torch.Tensor], source: str,
                 implied_by: str) -> None:
    """Every tensor in `weights` that `expected` names has its expected shape, else a one-line error
    naming the first that does not (and what implies the expected shape)."""
    for name, tensor in expected.items():
        if name in weights and weights[name].shape != tensor.shape:
            raise SsmusicError(f"{source}: {name} has shape {list(weights[name].shape)}, {implied_by} implies "
                               f"{list(tensor.shape)}")
