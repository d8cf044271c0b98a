"""Where and how `ssmusic train` runs: the device per rank (and its autocast), under torchrun the
process group and the DDP wrapper, and with `--compile` the torch.compile'd forward."""

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


def wrap(model: torch.nn.Module, device: torch.device, world: int, compile: bool = False) -> torch.nn.Module:
    """The module the training step calls: DDP over `model` with several processes, else `model`;
    with `compile`, that module through torch.compile (compiled at the first step, forward and
    backward; a new caption length recompiles once, then its dimension is traced as dynamic). The
    model itself stays uncompiled: validation and checkpoints use it as it is."""
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True)
    return torch.compile(model) if compile else model


def compile_seconds() -> float:
    """Seconds this process has spent compiling with torch.compile so far, forward and backward
    graphs (dynamo's own account; 0.0 where this torch does not keep it)."""
    try:
        from torch._dynamo.utils import calculate_time_spent

        return round(calculate_time_spent().get("total_wall_time", 0.0), 2)
    except (ImportError, AttributeError):
        return 0.0


def barrier(world: int) -> None:
    if world > 1:
        torch.distributed.barrier()


def autocast(device: torch.device):
    """bf16 autocast on CUDA; plain fp32 on CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)
