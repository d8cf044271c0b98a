"""bf16 / int8 decode weights against the float32 reference path (tiny configs), with the
tolerances they are held to. The shipped default model's numbers are in docs/performance.md
(`ssmusic bench --decode-floor`): bf16 max |diff| 0.05 and int8 0.11 on logits up to 12."""

import pytest
import torch

from ssmusic.model import presets
from ssmusic.model.decode_weights import quantize_int8
from ssmusic.errors import SsmusicError
from ssmusic.model.layers import DecodeLinear
from ssmusic.model.lm import MusicLM

# The largest logit difference allowed, as a fraction of the largest |logit| (tiny random models,
# 3 codebooks through 6 layers); and the mean KL divergence of the sampling distributions.
TOLERANCE = {"bfloat16": (0.015, 1e-5), "int8": (0.03, 1e-5)}  # measured: 0.006 / 0.013, KL < 2e-6


def _model(backbone="simba", conditioning="prefix", **overrides):
    torch.manual_seed(0)
    return MusicLM(presets.preset("tiny", backbone=backbone, conditioning=conditioning, n_codebooks=3,
                                  dropout=0.0, **overrides)).eval()


def test_int8_rows_are_within_half_a_step_of_the_weight():
    weight = torch.randn(40, 24)
    q, scales = quantize_int8(weight)
    assert q.dtype == torch.int8 and q.abs().max() <= 127
    assert ((q.float() * scales[:, None] - weight).abs() <= scales[:, None] / 2 + 1e-7).all()


@pytest.mark.parametrize("dtype", ["bfloat16", "int8"])
@pytest.mark.parametrize("backbone,conditioning", [("simba", "prefix"), ("mamba", "cross"), ("transformer", "prefix")])
def test_decode_logits_match_the_float32_reference(dtype, backbone, conditioning, device):
    if dtype == "int8" and device != "cpu":
        pytest.skip("int8 decode weights are CPU only")
    model = _model(backbone, conditioning).to(device)
    codes = torch.randint(0, model.config.card, (2, 3, 12), device=device)
    text = torch.randn(2, 5, model.config.text_dim, device=device)
    reference = model.recurrent_logits(codes, text)
    fast = model.set_decode_dtype(dtype).recurrent_logits(codes, text)
    max_rel, max_kl = TOLERANCE[dtype]
    assert (fast - reference).abs().max() <= max_rel * reference.abs().max()
    kl = (reference.softmax(-1) * (reference.log_softmax(-1) - fast.log_softmax(-1))).sum(-1)
    assert kl.mean() <= max_kl
    assert not torch.equal(fast, reference)  # the decode weights were really used


def test_float32_decode_is_the_reference_and_training_ignores_decode_weights():
    model = _model()
    codes = torch.randint(0, model.config.card, (2, 3, 8))
    text = torch.randn(2, 5, model.config.text_dim)
    reference = model.recurrent_logits(codes, text)
    loss = model.loss(codes, text)
    model.set_decode_dtype("int8")
    assert torch.equal(model.loss(codes, text), loss)  # autograd on: the float32 weights
    assert torch.equal(model.set_decode_dtype("float32").recurrent_logits(codes, text), reference)
    assert not any("decode_" in key for key in model.state_dict())


def test_generation_with_int8_weights_runs_and_keeps_the_shape():
    model = _model().set_decode_dtype("int8")
    from ssmusic.model.sampling import SamplingParams

    codes = model.generate(torch.randn(2, 5, model.config.text_dim), None, steps=6, sampling=SamplingParams(seed=0))
    assert codes.shape == (2, 3, 6)


def test_unknown_or_unsupported_decode_dtype_is_refused():
    layer = DecodeLinear(8, 8)
    with pytest.raises(SsmusicError, match="--decode-dtype"):
        layer.set_decode_dtype("float16")
    with pytest.raises(SsmusicError, match="CPU only"):
        DecodeLinear(8, 8, device="meta").set_decode_dtype("int8")


@pytest.mark.parametrize("backbone,conditioning", [("simba", "prefix"), ("mamba", "cross")])
def test_a_bfloat16_state_keeps_the_logits(backbone, conditioning, device):
    model = _model(backbone, conditioning).to(device)
    codes = torch.randint(0, model.config.card, (2, 3, 24), device=device)
    text = torch.randn(2, 5, model.config.text_dim, device=device)
    reference = model.recurrent_logits(codes, text)
    model.set_state_dtype("bfloat16")
    _, state = model.prefill(*model.condition(text, None, torch.zeros(2, dtype=torch.bool, device=device), 2), 4)
    assert {b.mixer.ssm.dtype for b in state.blocks} == {torch.bfloat16}
    fast = model.recurrent_logits(codes, text)
    max_rel, max_kl = TOLERANCE["bfloat16"]
    assert (fast - reference).abs().max() <= max_rel * reference.abs().max()
    kl = (reference.softmax(-1) * (reference.log_softmax(-1) - fast.log_softmax(-1))).sum(-1)
    assert kl.mean() <= max_kl
    assert not torch.equal(fast, reference)
    assert torch.equal(model.set_state_dtype("float32").recurrent_logits(codes, text), reference)


def test_an_unknown_state_dtype_is_refused():
    with pytest.raises(SsmusicError, match="--state-dtype: expected one of float32, bfloat16, got 'int8'"):
        _model().set_state_dtype("int8")


@pytest.mark.parametrize("transposed", [True, False], ids=["w-at-xt", "f-linear"])
@pytest.mark.parametrize("rows", [1, 2, 8, 9])
def test_float32_few_rows_take_the_product_chosen_for_the_cpu(monkeypatch, transposed, rows):
    """2-8 float32 rows go through W @ x.T where the CPU's MKL streams that faster (F32_TRANSPOSED: not
    an Intel CPU), else F.linear; either way the same numbers, and training is always F.linear."""
    from ssmusic.model import decode_weights, layers

    monkeypatch.setattr(decode_weights, "F32_TRANSPOSED", transposed)
    calls = []
    real = layers.F.linear
    monkeypatch.setattr(layers.F, "linear", lambda *a, **k: calls.append(1) or real(*a, **k))
    layer = DecodeLinear(48, 80)
    x = torch.randn(rows, 48)
    with torch.no_grad():
        out = layer(x)
    assert bool(calls) == (not transposed or not 2 <= rows <= decode_weights.FEW_ROWS_F32)
    torch.testing.assert_close(out, real(x, layer.weight, layer.bias), rtol=1e-5, atol=1e-5)
    calls.clear()
    layer(x).sum().backward()
    assert calls and layer.weight.grad is not None
