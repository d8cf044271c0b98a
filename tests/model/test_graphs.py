"""The static-buffer decode path (ssmusic.model.graphs) against eager decoding.

On the CPU a DecodeGraph is called rather than replayed: everything but the capture itself is
checked here, for every backbone x conditioning (the position and KV lengths advanced in place as
tensors, attention over the whole cache masked by position, sampling on buffers, a reused state). On
CUDA (benchmarks/gpu_check.sh) the last test captures and replays, and must give the eager codes."""

import itertools

import pytest
import torch

from ssmusic.model import graphs
from ssmusic.model.patterns import build_delay, revert_delay
from ssmusic.model.sampling import SamplingParams
from ssmusic.model.state import KVCache
from tests.model.test_lm import batch, tiny

BACKBONES = ("simba", "mamba", "transformer")
CONDITIONINGS = ("prefix", "cross", "pooled")
SETTINGS = [SamplingParams(cfg_scale=2.7, top_k=5, temperature=1.3, seed=1),
            SamplingParams(cfg_scale=1.0, top_k=0, top_p=0.8, temperature=0.7, seed=2),
            SamplingParams(cfg_scale=3.0, top_k=1, seed=3)]
# attention over the whole cache (masked) sums in another order than over the filled part: measured
# 1e-7 on these logits; recurrent backbones run the same operations as eager decoding, bit for bit
TOLERANCE = {"simba": 0.0, "mamba": 0.0, "transformer": 1e-5}


def _static(model):
    """Decode `model` through the static-buffer path (what CUDA captures) also off CUDA."""
    model.uses_cuda_graphs = lambda: True
    return model


@torch.no_grad()
def _static_logits(model, codes, text, mask):
    """recurrent_logits, with the state made static: teacher-forced steps that change no Python value."""
    delayed = build_delay(codes, model.delay_id)
    cond, cond_mask = model.condition(text, mask, None, codes.shape[0])
    pooled = model.pooled(text, mask, None, codes.shape[0])
    h, state = model.prefill(cond, cond_mask, delayed.shape[-1], pooled=pooled)
    state.static()
    position, caches = state.position, [b.mixer for b in state.blocks if isinstance(b.mixer, KVCache)]
    lengths = [(cache.length, int(cache.length)) for cache in caches]
    start = position.clone()
    logits = []
    for t in range(delayed.shape[-1]):
        logits.append(model._logits(h))
        if t < delayed.shape[-1] - 1:
            h = model.step(delayed[:, :, t], state, pooled)
    steps = delayed.shape[-1] - 1
    # advanced in place: the same tensors, moved on by the steps; no host-side length kept
    assert state.position is position and torch.equal(position, start + steps)
    for cache, (length, before) in zip(caches, lengths):
        assert cache.length is length and int(length) == before + steps and cache.window is None
    return revert_delay(torch.stack(logits, dim=2))


@pytest.mark.parametrize("backbone,conditioning", list(itertools.product(BACKBONES, CONDITIONINGS)))
def test_static_steps_equal_eager_decoding(backbone, conditioning):
    model = tiny(backbone, conditioning, n_codebooks=2)
    codes, text, mask = batch(2, length=7)
    reference = model.recurrent_logits(codes, text, mask)
    difference = (_static_logits(model, codes, text, mask) - reference).abs().max().item()
    assert difference <= TOLERANCE[backbone]


@pytest.mark.parametrize("backbone,conditioning", list(itertools.product(BACKBONES, CONDITIONINGS)))
def test_static_generation_samples_the_eager_codes(backbone, conditioning):
    """Every frame through the DecodeGraph (step + CFG + draw on buffers) against the eager loop, for
    three sampling settings, with and without an audio prompt; each setting's DecodeGraph is made
    once and reused by the prompted run (its state refilled by the prefill)."""
    model = tiny(backbone, conditioning, n_codebooks=2)
    codes, text, mask = batch(2, length=6)
    eager = [(model.generate(text, mask, steps=7, sampling=s),
              model.generate(text, mask, steps=4, sampling=s, prompt_codes=codes[..., :3])) for s in SETTINGS]
    _static(model)
    for s, (plain, prompted) in zip(SETTINGS, eager):
        assert torch.equal(model.generate(text, mask, steps=7, sampling=s), plain)
        assert torch.equal(model.generate(text, mask, steps=4, sampling=s, prompt_codes=codes[..., :3]), prompted)
    assert len(model._decode_graphs["graphs"]) == len(SETTINGS)


def test_a_reused_graph_takes_new_settings_captions_and_lengths():
    """One DecodeGraph per shape: later generations with other captions, temperature, guidance and
    length (a Transformer's KV cache within the same capacity) replay it and still match eager."""
    model = tiny("transformer", "cross", n_codebooks=1)
    _, text, mask = batch(1)
    first, second = SamplingParams(cfg_scale=2.0, top_k=4, seed=0), SamplingParams(cfg_scale=4.5, top_k=4,
                                                                                   temperature=0.6, seed=9)
    runs = [(text, mask, 6, first), (torch.randn_like(text), mask, 9, second), (text, mask, 3, second)]
    eager = [model.generate(*run[:2], steps=run[2], sampling=run[3]) for run in runs]
    _static(model)
    for run, expected in zip(runs, eager):
        assert torch.equal(model.generate(*run[:2], steps=run[2], sampling=run[3]), expected)
    assert [len(found) for found in model._decode_graphs["graphs"].values()] == [1]


def test_interleaved_generations_of_one_shape_get_their_own_buffers():
    """Two generations in flight at once (serve's workers share a model) never share a DecodeGraph."""
    model = _static(tiny("simba", "prefix"))
    _, text, mask = batch(1)
    sampling = [SamplingParams(cfg_scale=2.0, seed=1), SamplingParams(cfg_scale=2.0, seed=2)]
    del model.uses_cuda_graphs
    expected = [model.generate(text, mask, steps=5, sampling=s) for s in sampling]
    _static(model)
    streams = [model.generate_frames(text, mask, steps=5, sampling=s) for s in sampling]
    frames = [[], []]
    for _ in range(5):
        for i, stream in enumerate(streams):
            frames[i].append(next(stream))
    for found, want in zip(frames, expected):
        assert torch.equal(torch.stack(found, -1), want)
    assert [len(found) for found in model._decode_graphs["graphs"].values()] == [2]


def test_new_decode_weights_or_moved_weights_drop_the_captured_steps():
    model = _static(tiny("simba", "prefix"))
    _, text, mask = batch(1)
    model.generate(text, mask, steps=2, sampling=SamplingParams(seed=0))
    assert len(model._decode_graphs["graphs"]) == 1
    model.set_decode_dtype("bfloat16")
    assert "_decode_graphs" not in model.__dict__
    model.generate(text, mask, steps=2, sampling=SamplingParams(seed=0))
    with torch.no_grad():
        model.heads[0].weight.data = model.heads[0].weight.data.clone()  # as .to() leaves them
    model.generate(text, mask, steps=2, sampling=SamplingParams(seed=0))
    assert len(model._decode_graphs["graphs"]) == 1


def test_kv_capacity_rounds_up_to_powers_of_two():
    assert [graphs.capacity_for(n) for n in (1, 256, 257, 2650)] == [256, 256, 512, 4096]


def test_cuda_graph_generation_equals_eager_on_the_test_device(device):
    """Captured on CUDA (benchmarks/gpu_check.sh): the graph's codes are eager decoding's, sampled
    with a seed for the recurrent backbones (the same operations, the same random stream); greedy for
    the Transformer, whose static attention sums the masked cache in another order (a sampled token
    could flip on a 1e-7 difference). A second generation of the shape only replays. On the CPU: the
    tests above."""
    if device == "cpu":
        pytest.skip("no capture on the CPU: the static path is checked by the tests above")
    for backbone, conditioning in itertools.product(BACKBONES, ("prefix", "cross")):
        model = tiny(backbone, conditioning, n_codebooks=2).to(device)
        _, text, mask = (t.to(device) for t in batch(2))
        sampling = SamplingParams(cfg_scale=3.0, top_k=1 if backbone == "transformer" else 5, seed=4)
        model.cuda_graphs = False
        eager = model.generate(text, mask, steps=12, sampling=sampling)
        model.cuda_graphs = True
        assert model.uses_cuda_graphs()
        assert torch.equal(model.generate(text, mask, steps=12, sampling=sampling), eager), (backbone, conditioning)
        assert torch.equal(model.generate(text, mask, steps=12, sampling=sampling), eager)
        (captured,) = model._decode_graphs["graphs"].values()
        assert len(captured) == 1 and captured[0].graph is not None
