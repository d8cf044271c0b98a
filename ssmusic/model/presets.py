"""Named model sizes, parameter counting and depth matching.

These need the model (a count builds it on the meta device), so they live here rather than in
`config.py`, which stays plain data that the model itself imports.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import torch

from ssmusic.config import LMConfig
from ssmusic.errors import ConfigError
from ssmusic.model.lm import MusicLM

PRESETS: dict[str, dict[str, Any]] = {
    # tests: seconds on CPU
    "tiny": dict(d_model=64, n_layers=6, d_state=16, headdim=16, n_heads=4, chunk_size=16),
    # ~34M: trainable on CPU, the size of the convergence experiment
    "small": dict(d_model=512, n_layers=12, d_state=64, headdim=64, n_heads=8),
    # the released SSM-TTM decoder: d 1024, 24 layers, d_state 512, expand 2, headdim 64 (~281M)
    "paper": dict(d_model=1024, n_layers=24, d_state=512, headdim=64, n_heads=16, dropout=0.3,
                  text_dim=768, positions="sinusoidal"),
}


def preset(name: str, **overrides: Any) -> LMConfig:
    """A preset's config, e.g. preset("small", backbone="transformer", conditioning="cross").

    SiMBA (MLP mixer) uses the preset depth; other backbones, and SiMBA with the lighter EinFFT
    mixer, get the depth whose parameter count is closest to SiMBA's at the same width and
    conditioning (so comparisons are fair). An explicit n_layers override disables that matching."""
    if name not in PRESETS:
        raise ConfigError(f"preset: expected one of {list(PRESETS)}, got {name!r}")
    values = dict(PRESETS[name])
    backbone = overrides.get("backbone", "simba")
    if name != "paper" and "positions" not in overrides:
        # recurrent backbones need no positions (and then extrapolate in length); attention does
        values["positions"] = "sinusoidal" if backbone == "transformer" else "none"
    values.update(overrides)
    config = LMConfig(**values)
    if (backbone == "simba" and config.channel_mixer == "mlp") or "n_layers" in overrides:
        return config
    target = count_parameters(dataclasses.replace(config, backbone="simba", channel_mixer="mlp",
                                                  n_layers=PRESETS[name]["n_layers"]))
    return dataclasses.replace(config, n_layers=matching_depth(config, target))


def depth_for(target: int, count: Callable[[int], int]) -> int:
    """The depth whose parameter count `count(depth)` is closest to `target`, for any model whose
    count grows linearly with depth: solved from two shallow counts instead of searching."""
    one = count(1)
    per_layer = count(2) - one
    return max(1, round((target - one) / per_layer) + 1)


def matching_depth(config: LMConfig, target: int) -> int:
    """The depth at which `config` has the parameter count closest to `target`."""
    return depth_for(target, lambda layers: count_parameters(dataclasses.replace(config, n_layers=layers)))


def count_parameters(config: LMConfig) -> int:
    """Parameter count without allocating weights (built on the meta device)."""
    with torch.device("meta"):
        return MusicLM(config).num_parameters()
