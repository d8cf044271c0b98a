import pytest
import torch

from ssmusic.model.mamba2 import Mamba2
from ssmusic.model.ops import kernels


def _pair():
    from transformers import Mamba2Config
    from transformers.models.mamba2.modeling_mamba2 import Mamba2Mixer

    cfg = Mamba2Config(hidden_size=32, state_size=16, expand=2, head_dim=8, n_groups=2, num_heads=8,
                       conv_kernel=4, chunk_size=8, num_hidden_layers=1)
    reference = Mamba2Mixer(cfg, 0).eval()
    with torch.no_grad():  # make every parameter non-trivial so the comparison means something
        for p in reference.parameters():
            p.add_(0.1 * torch.randn_like(p))
    ours = Mamba2(32, d_state=16, expand=2, headdim=8, d_conv=4, ngroups=2, chunk_size=8).eval()
    ours.load_state_dict(reference.state_dict())  # same names and shapes: strict load
    return reference, ours


def test_parameter_names_follow_mamba_ssm():
    names = set(dict(Mamba2(32, 16, 2, 8).named_parameters()))
    assert names == {"in_proj.weight", "conv1d.weight", "conv1d.bias", "dt_bias", "A_log", "D",
                     "norm.weight", "out_proj.weight"}


@pytest.mark.usefixtures("transformers_mamba2_in_pytorch")
def test_matches_transformers_mamba2_mixer_parallel_and_recurrent():
    reference, ours = _pair()
    x = torch.randn(2, 21, 32)
    with torch.no_grad():
        expected = reference(x)
        torch.testing.assert_close(ours(x), expected, atol=1e-5, rtol=1e-5)
        state = ours.allocate(2, x.device, x.dtype)
        prefill = ours(x[:, :5], state=state)
        steps = torch.stack([ours.step(x[:, t], state) for t in range(5, 21)], dim=1)
    torch.testing.assert_close(prefill, expected[:, :5], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(steps, expected[:, 5:], atol=1e-4, rtol=1e-4)


def test_left_padding_is_an_exact_no_op():
    _, ours = _pair()
    x = torch.randn(1, 12, 32)
    padded = torch.cat([torch.randn(1, 4, 32), x], dim=1)
    mask = torch.tensor([[False] * 4 + [True] * 12])
    with torch.no_grad():
        torch.testing.assert_close(ours(padded, mask)[:, 4:], ours(x), atol=1e-5, rtol=1e-5)


needs_fused_kernels = pytest.mark.skipif(not (torch.cuda.is_available() and kernels._mamba_ssm() is not None),
                                         reason="mamba_ssm kernels need CUDA and the ssmusic[cuda] extra")


@needs_fused_kernels
def test_fused_kernels_match_pure_pytorch():  # pragma: no cover - runs only on GPU machines
    _, ours = _pair()
    x = torch.randn(2, 33, 32)
    with torch.no_grad():
        cpu = ours(x)
        gpu = ours.cuda()(x.cuda()).cpu()
    torch.testing.assert_close(gpu, cpu, atol=1e-3, rtol=1e-3)


@needs_fused_kernels
def test_fused_kernels_match_pure_pytorch_gradients():  # pragma: no cover - runs only on GPU machines
    _, ours = _pair()
    x = torch.randn(2, 33, 32)
    grads = []
    for device in ("cpu", "cuda"):  # the pure-PyTorch chunked scan, then mamba-ssm's fused one
        model = ours.to(device)
        model.zero_grad()
        inputs = x.to(device).clone().requires_grad_()  # a leaf on each device (x itself stays grad-free)
        model(inputs).pow(2).sum().backward()
        grads.append([inputs.grad.cpu()] + [p.grad.cpu() for p in model.parameters()])
    for pure, fused in zip(*grads):
        torch.testing.assert_close(fused, pure, atol=2e-3, rtol=2e-3)


@needs_fused_kernels
def test_fused_step_matches_pure_pytorch_step():  # pragma: no cover - runs only on GPU machines
    _, ours = _pair()
    x = torch.randn(2, 12, 32)
    outputs = []
    with torch.no_grad():
        for device in ("cpu", "cuda"):
            model = ours.to(device)
            state = model.allocate(2, torch.device(device), torch.float32)
            outputs.append(torch.stack([model.step(x[:, t].to(device), state) for t in range(12)], 1).cpu())
    torch.testing.assert_close(outputs[1], outputs[0], atol=1e-3, rtol=1e-3)
