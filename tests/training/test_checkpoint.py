import torch

from ssmusic.training import checkpoint
from ssmusic.training.checkpoint import capture_rng, load_checkpoint, restore_rng, save_checkpoint
from ssmusic.io.tensors import save_tensors


def test_cuda_rng_state_is_saved_and_restored(tmp_path, monkeypatch):
    """The CUDA path on a CPU machine: torch.cuda's RNG calls are replaced by a fake device state."""
    cuda_state = {"now": torch.arange(16, dtype=torch.uint8)}
    monkeypatch.setattr(checkpoint.torch.cuda, "get_rng_state", lambda device: cuda_state["now"].clone())
    monkeypatch.setattr(checkpoint.torch.cuda, "set_rng_state",
                        lambda state, device: cuda_state.update(now=state.clone()))
    device = torch.device("cuda", 0)
    model = torch.nn.Linear(2, 2)
    model.save_pretrained = lambda directory: save_tensors(model.state_dict(), directory / "model.safetensors")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    crop = torch.Generator().manual_seed(1)
    rng = capture_rng(device, {"crop": crop})
    path = save_checkpoint(tmp_path, 1, model, optimizer, {"step": 1}, rng, {}, {})
    saved = cuda_state["now"]
    cuda_state["now"] = torch.zeros(16, dtype=torch.uint8)  # the device RNG moves on
    torch.rand(3, generator=crop)
    _, loaded = load_checkpoint(path, model, optimizer)
    restore_rng(loaded, device, {"crop": crop})
    assert torch.equal(cuda_state["now"], saved)
    assert torch.equal(crop.get_state(), rng["crop"])


def test_cpu_checkpoints_hold_no_cuda_state():
    assert "cuda" not in capture_rng(torch.device("cpu"), {})
    restore_rng(capture_rng(torch.device("cpu"), {}), torch.device("cuda", 0), {})  # older/CPU checkpoint: no-op
