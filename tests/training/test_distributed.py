"""Where training runs: the process group's backend follows the training device, not the machine."""

import pytest
import torch

from ssmusic.training import distributed
from ssmusic.training.config import TrainConfig


@pytest.mark.parametrize(("device", "cuda_visible", "backend"),
                         [("cpu", True, "gloo"), ("auto", True, "nccl"), ("cuda", True, "nccl"), ("auto", False, "gloo")])
def test_the_backend_follows_the_training_device(monkeypatch, device, cuda_visible, backend):
    # found on a GPU machine: CPU training under torchrun picked NCCL there, which has no CPU tensors
    chosen = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda_visible)
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: False)
    monkeypatch.setattr(torch.distributed, "init_process_group", chosen.append)
    monkeypatch.setattr(torch.distributed, "get_rank", lambda: 1)
    assert distributed.setup(TrainConfig(device=device)) == (1, 2)
    assert chosen == [backend]
    assert distributed.device_for(TrainConfig(device=device), 0).type == ("cuda" if backend == "nccl" else "cpu")


def test_one_process_joins_no_group(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(torch.distributed, "init_process_group", lambda *a: pytest.fail("joined a group"))
    assert distributed.setup(TrainConfig()) == (0, 1)
