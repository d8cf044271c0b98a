"""The optimizer's parameter groups and the learning-rate schedule of `ssmusic train`."""

from __future__ import annotations

import math

import torch

from ssmusic.training.config import TrainConfig


def lr_at(step: int, config: TrainConfig) -> float:
    warmup = min(config.warmup_steps, max(1, config.steps // 10))
    if step < warmup:
        return config.learning_rate() * (step + 1) / warmup
    progress = (step - warmup) / max(1, config.steps - warmup)
    return config.learning_rate() * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Decay matrices only; never norms, biases, embeddings or the learned null/BOS vectors."""
    decay, no_decay = [], []
    for module_name, module in model.named_modules():
        # biases by name: a module may store them as matrices (EinFFT's complex b1/b2 are [2, n, h])
        biases = ("bias", *getattr(module, "no_weight_decay", ()))
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad:  # frozen by a fine-tune (--freeze, LoRA's base weights)
                continue
            is_embedding = module_name.startswith("embed.")
            is_bias = name in biases or name.endswith("_bias")
            (decay if param.dim() >= 2 and not is_embedding and not is_bias else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [group for group in groups if group["params"]]


# The modules that turn a caption into the model's condition (their learning rate can be scaled)
TEXT_MODULES = ("text_proj", "text_norm", "pooled_proj", "pooled_norm", "null", "null_pooled")


def scale_text_lr(groups: list[dict], model: torch.nn.Module, scale: float) -> list[dict]:
    """Split each group so the text-conditioning parameters get `scale` x the learning rate
    (group["lr_scale"], applied by the schedule). Scale 1 leaves the groups as they are."""
    if scale == 1.0:
        return groups
    text = {id(p) for n, p in model.named_parameters() if n.split(".")[0] in TEXT_MODULES}
    out = []
    for group in groups:
        for is_text in (False, True):
            params = [p for p in group["params"] if (id(p) in text) == is_text]
            if params:
                out.append({**group, "params": params, "lr_scale": scale if is_text else 1.0})
    return out
