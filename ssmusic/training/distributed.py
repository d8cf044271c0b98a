"""Where `ssmusic train` runs: the device per rank (and its autocast), and under torchrun the
process group and the DDP wrapper."""

from __future__ import annotations

import os

import torch

from ssmusic.training.config import TrainConfig


def uses_cuda(config: TrainConfig) -> bool:
    return config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available())


def setup(config: TrainConfig) -> tuple[int, int]:
    """(rank, world size); joins the process group when torchrun started several processes: NCCL
    for CUDA training, gloo for CPU training (also on a machine with a GPU: NCCL has no CPU tensors)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if uses_cuda(config) else "gloo")
    return (torch.distributed.get_rank(), world) if world > 1 else (0, 1)


def device_for(config: TrainConfig, rank: int) -> torch.device:
    if uses_cuda(config):
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)) % max(1, torch.cuda.device_count()))
    return torch.device("cpu")


def wrap(model: torch.nn.Module, device: torch.device, world: int) -> torch.nn.Module:
    """The module the training step calls: DDP over `model` with several processes, else `model`."""
    if world == 1:
        return model
    return torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True)


def barrier(world: int) -> None:
    if world > 1:
        torch.distributed.barrier()


def autocast(device: torch.device):
    """bf16 autocast on CUDA; plain fp32 on CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)
