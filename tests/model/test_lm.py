import itertools

import pytest
import torch

from ssmusic.config import LMConfig
from ssmusic.errors import SsmusicError
from ssmusic.model.lm import MusicLM
from ssmusic.model.sampling import SamplingParams

CARD, TEXT_DIM = 17, 12
COMBOS = [(b, c, m) for b, c in itertools.product(("simba", "mamba", "transformer"), ("prefix", "cross"))
          for m in (("mlp", "einfft") if b == "simba" else ("mlp",))]


def tiny(backbone="simba", conditioning="prefix", channel_mixer="mlp", n_codebooks=1, **kw):
    config = LMConfig(backbone=backbone, conditioning=conditioning, channel_mixer=channel_mixer, d_model=32,
                      n_layers=2, d_state=8, headdim=8, n_heads=4, chunk_size=4, card=CARD,
                      n_codebooks=n_codebooks, text_dim=TEXT_DIM, dropout=0.0,
                      positions=kw.pop("positions", "sinusoidal"), **kw)
    model = MusicLM(config).eval()
    with torch.no_grad():  # non-trivial EinFFT weights so its path matters
        for name, p in model.named_parameters():
            if ".w1" in name or ".w2" in name:
                p.mul_(20)
    return model


def batch(n_codebooks=1, length=9, batch_size=3, text_len=5):
    codes = torch.randint(0, CARD, (batch_size, n_codebooks, length))
    text = torch.randn(batch_size, text_len, TEXT_DIM)
    mask = torch.ones(batch_size, text_len, dtype=torch.bool)
    mask[0, 3:] = False  # right-padded caption
    return codes, text, mask


@pytest.mark.parametrize("backbone,conditioning", list(itertools.product(("simba", "mamba", "transformer"),
                                                                         ("prefix", "cross"))))
def test_causality(backbone, conditioning):
    model = tiny(backbone, conditioning, n_codebooks=2)
    codes, text, mask = batch(n_codebooks=2)
    with torch.no_grad():
        base = model(codes, text, mask)
        for t in (0, 4, 8):
            changed = codes.clone()
            changed[:, :, t] = (changed[:, :, t] + 1) % CARD
            out = model(changed, text, mask)
            # codebook k of frame t is input at delayed position t+k, so only later logits may move
            torch.testing.assert_close(out[:, :, :t], base[:, :, :t], atol=0, rtol=0)
            assert not torch.allclose(out[:, :, t + 1:], base[:, :, t + 1:]) or t == 8


@pytest.mark.parametrize("backbone,conditioning,mixer", COMBOS)
@pytest.mark.parametrize("n_codebooks", [1, 3])
def test_recurrent_decoding_equals_forward(backbone, conditioning, mixer, n_codebooks, device):
    model = tiny(backbone, conditioning, mixer, n_codebooks=n_codebooks).to(device)
    codes, text, mask = (t.to(device) for t in batch(n_codebooks))
    null = torch.tensor([False, True, False], device=device)
    with torch.no_grad():
        parallel = model(codes, text, mask, null)
        recurrent = model.recurrent_logits(codes, text, mask, null)
    # CUDA: mamba-ssm's fused scan (when installed) sums in another order than the step kernel
    tolerance = 1e-4 if device == "cpu" else 1e-3
    torch.testing.assert_close(recurrent, parallel, atol=tolerance, rtol=tolerance)


@pytest.mark.parametrize("backbone,conditioning,mixer", COMBOS)
@pytest.mark.parametrize("n_codebooks", [2, 4])  # K > 2: the delay tail of fine codebooks is fed back
def test_greedy_generation_reproduces_forward_argmax(backbone, conditioning, mixer, n_codebooks):
    model = tiny(backbone, conditioning, mixer, n_codebooks=n_codebooks)
    _, text, mask = batch(n_codebooks)
    codes = model.generate(text, mask, steps=8, sampling=SamplingParams(cfg_scale=1.0, top_k=1))
    assert codes.shape == (3, n_codebooks, 8)
    with torch.no_grad():
        assert torch.equal(model(codes, text, mask).argmax(-1), codes)


RELEASED_OPTIONS = dict(final_norm=False, start_token=True, use_text_mask=False, null_condition="empty_text")


@pytest.mark.parametrize("n_codebooks", [1, 2])
def test_released_model_options_decode_exactly(n_codebooks):
    model = tiny("simba", "prefix", n_codebooks=n_codebooks, **RELEASED_OPTIONS)
    assert isinstance(model.final_norm, torch.nn.Identity)
    codes, text, mask = batch(n_codebooks)
    with torch.no_grad():
        parallel = model(codes, text, mask)
        recurrent = model.recurrent_logits(codes, text, mask)
        unmasked = model(codes, text, None)
    torch.testing.assert_close(recurrent, parallel, atol=1e-4, rtol=1e-4)
    # the text mask is ignored: padding embeddings are part of the prefix
    assert torch.equal(parallel, unmasked)


def test_start_token_is_a_frame_of_the_start_id_before_the_codes():
    with_start = tiny("simba", "prefix", **RELEASED_OPTIONS)
    without = tiny("simba", "prefix", **{**RELEASED_OPTIONS, "start_token": False})
    without.load_state_dict(with_start.state_dict())
    codes, text, mask = batch()
    start = torch.full((3, 1, 1), with_start.start_id)
    with torch.no_grad():
        # without it, the last text position predicts the start frame: drop that prediction
        torch.testing.assert_close(with_start(codes, text, mask),
                                   without(torch.cat([start, codes], dim=-1), text, mask)[:, :, 1:])


def test_empty_text_null_condition_needs_null_text():
    model = tiny("simba", "prefix", **RELEASED_OPTIONS)
    _, text, mask = batch()
    null_text = torch.randn_like(text)
    with pytest.raises(SsmusicError, match="null_text"):
        model.generate(text, mask, steps=3, sampling=SamplingParams(cfg_scale=3.0))
    with pytest.raises(SsmusicError, match="shape"):
        model.generate(text, mask, steps=3, sampling=SamplingParams(cfg_scale=3.0), null_text=null_text[:, :2], null_text_mask=mask[:, :2])
    out = model.generate(text, mask, steps=5, sampling=SamplingParams(cfg_scale=3.0, top_k=1), null_text=null_text, null_text_mask=mask)
    # greedy guided decoding written independently: full forwards, CFG on logits
    seq = torch.zeros(3, 1, 0, dtype=torch.long)
    for _ in range(5):
        candidate = torch.cat([seq, torch.zeros(3, 1, 1, dtype=torch.long)], dim=-1)
        with torch.no_grad():
            cond, null = model(candidate, text, mask)[:, :, -1], model(candidate, null_text, mask)[:, :, -1]
        seq = torch.cat([seq, (null + 3.0 * (cond - null)).argmax(-1)[..., None]], dim=-1)
    assert torch.equal(out, seq)


def test_padding_and_null_rows_are_exact():
    model = tiny("simba", "prefix")
    codes, text, mask = batch()
    with torch.no_grad():
        full = model(codes, text, mask)
        alone = model(codes[:1], text[:1, :3], mask[:1, :3])  # the same caption without padding
        null_row = model(codes[1:2], None, None)
        as_dropout = model(codes, text, mask, null_cond=torch.tensor([False, True, False]))
    torch.testing.assert_close(full[0], alone[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(as_dropout[1], null_row[0], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(full[1], as_dropout[1])


def test_cfg_scale_one_equals_conditional_only_sampling():
    model = tiny("simba", "cross")
    _, text, mask = batch()
    out = model.generate(text, mask, steps=6, sampling=SamplingParams(cfg_scale=1.0, top_k=5, temperature=1.3, seed=3))
    # conditional-only sampling written independently: forward over the growing sequence
    from ssmusic.model.sampling import sample_next

    gen = torch.Generator().manual_seed(3)
    seq = torch.zeros(3, 1, 0, dtype=torch.long)
    for _ in range(6):
        candidate = torch.cat([seq, torch.zeros(3, 1, 1, dtype=torch.long)], dim=-1)
        with torch.no_grad():
            logits = model(candidate, text, mask)[:, :, -1]
        seq = torch.cat([seq, sample_next(logits, 5, 0.0, 1.3, gen)[..., None]], dim=-1)
    assert torch.equal(out, seq)


def test_guidance_changes_samples_and_seeds_reproduce():
    model = tiny("mamba", "prefix")
    _, text, mask = batch()
    a = model.generate(text, mask, steps=12, sampling=SamplingParams(cfg_scale=3.0, seed=1))
    b = model.generate(text, mask, steps=12, sampling=SamplingParams(cfg_scale=3.0, seed=1))
    c = model.generate(text, mask, steps=12, sampling=SamplingParams(cfg_scale=1.0, seed=1))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("n_codebooks", [2, 4])
def test_prompt_continuation_keeps_the_prompt_as_context(n_codebooks):
    model = tiny("simba", "prefix", n_codebooks=n_codebooks)
    codes, text, mask = batch(n_codebooks, length=6)
    cont = model.generate(text, mask, steps=4, sampling=SamplingParams(cfg_scale=1.0, top_k=1), prompt_codes=codes)
    assert cont.shape == (3, n_codebooks, 4)
    with torch.no_grad():
        full = model(torch.cat([codes, cont], dim=-1), text, mask).argmax(-1)
    assert torch.equal(full[..., 6:], cont)


def test_unconditional_generation_and_loss_ignores_pad():
    model = tiny("transformer", "prefix")
    assert model.generate(None, None, steps=3, batch=2).shape == (2, 1, 3)
    codes, text, mask = batch()
    padded = codes.clone()
    padded[:, :, 6:] = CARD
    loss = model.loss(padded, text, mask)
    logits = model(padded, text, mask)[:, :, :6]
    expected = torch.nn.functional.cross_entropy(logits.flatten(0, 2), codes[:, :, :6].flatten(), label_smoothing=0.1)
    torch.testing.assert_close(loss, expected)


def test_save_and_load_round_trip(tmp_path):
    model = tiny("simba", "cross", "einfft")
    model.save_pretrained(tmp_path)
    loaded = MusicLM.from_pretrained(tmp_path)
    codes, text, mask = batch()
    with torch.no_grad():
        torch.testing.assert_close(loaded(codes, text, mask), model(codes, text, mask))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lm_config.json", "model.safetensors"]


def test_load_refuses_mismatched_weights(tmp_path):
    tiny("simba").save_pretrained(tmp_path)
    (tmp_path / "lm_config.json").write_text((tmp_path / "lm_config.json").read_text().replace('"d_model": 32', '"d_model": 64'))
    with pytest.raises(SsmusicError, match="model.safetensors"):
        MusicLM.from_pretrained(tmp_path)


def test_wrong_codebook_count_is_refused():
    with pytest.raises(SsmusicError, match="codebooks"):
        tiny(n_codebooks=2)(torch.zeros(1, 1, 4, dtype=torch.long))


POOLED = [("simba", "prefix", True), ("simba", "cross", True), ("simba", "pooled", False),
          ("transformer", "pooled", True), ("mamba", "prefix", True)]


@pytest.mark.parametrize("backbone,conditioning,pooled_text", POOLED)
def test_pooled_caption_decodes_exactly(backbone, conditioning, pooled_text):
    model = tiny(backbone, conditioning, pooled_text=pooled_text, n_codebooks=2)
    assert model.config.uses_pooled_text
    codes, text, mask = batch(2)
    null = torch.tensor([False, True, False])
    with torch.no_grad():
        parallel = model(codes, text, mask, null)
        recurrent = model.recurrent_logits(codes, text, mask, null)
    torch.testing.assert_close(recurrent, parallel, atol=1e-4, rtol=1e-4)
    generated = model.generate(text, mask, steps=6, sampling=SamplingParams(cfg_scale=1.0, top_k=1))
    with torch.no_grad():
        assert torch.equal(model(generated, text, mask).argmax(-1), generated)


def test_pooled_caption_reaches_every_position_and_null_rows_ignore_it():
    model = tiny("simba", "pooled")
    codes, text, mask = batch(1, length=12)
    other = text.clone()
    other[:, :2] += 3.0
    null = torch.tensor([True, True, True])
    with torch.no_grad():
        a, b = model(codes, text, mask), model(codes, other, mask)
        # pooled conditioning has no prefix: only the sentence vector carries the caption, to the last frame
        assert (a[:, :, -1] - b[:, :, -1]).abs().max() > 1e-3
        torch.testing.assert_close(model(codes, text, mask, null), model(codes, other, mask, null), atol=0, rtol=0)
        # padding does not enter the mean: extra padded tokens leave the logits unchanged
        padded_text = torch.cat([text, torch.randn(3, 4, TEXT_DIM)], dim=1)
        padded_mask = torch.cat([mask, torch.zeros(3, 4, dtype=torch.bool)], dim=1)
        torch.testing.assert_close(model(codes, padded_text, padded_mask), a, atol=1e-5, rtol=1e-5)


def test_an_unknown_mixer_kind_raises_instead_of_becoming_einfft():
    from ssmusic.model.blocks import channel_mixer, sequence_mixer
    from ssmusic.errors import ConfigError

    config = LMConfig(d_model=32, headdim=8)
    config.channel_mixer = "fnet"  # past validation, as a hand-edited config object could be
    with pytest.raises(ConfigError, match="fnet"):
        channel_mixer(config)
    config.channel_mixer, config.backbone = "mlp", "rwkv"
    with pytest.raises(ConfigError, match="rwkv"):
        sequence_mixer(config)


@pytest.mark.parametrize("backbone,conditioning,n_codebooks", [
    ("simba", "prefix", 1), ("simba", "cross", 3), ("mamba", "prefix", 2), ("transformer", "prefix", 2),
    ("transformer", "cross", 1), ("simba", "pooled", 1)])
def test_parallel_prompt_prefill_matches_step_by_step(backbone, conditioning, n_codebooks):
    """Continuation runs the audio prompt through the model in one parallel pass; the reference
    teacher-forces it one step at a time. Same seed, same sampled continuation."""
    model = tiny(backbone, conditioning, n_codebooks=n_codebooks)
    codes, text, mask = batch(n_codebooks, length=7)
    runs = [model.generate(text, mask, steps=6, sampling=SamplingParams(cfg_scale=3.0, top_k=8, temperature=1.2, seed=5),
                           prompt_codes=codes, parallel_prefill=parallel)
            for parallel in (True, False)]
    assert runs[0].shape == (3, n_codebooks, 6)
    assert torch.equal(runs[0], runs[1])


def test_generate_frames_yields_each_frame_once_complete():
    model = tiny("simba", "prefix", n_codebooks=3)
    _, text, mask = batch(3)
    whole = model.generate(text, mask, steps=5, sampling=SamplingParams(cfg_scale=2.0, seed=2))
    frames = list(model.generate_frames(text, mask, steps=5, sampling=SamplingParams(cfg_scale=2.0, seed=2)))
    assert len(frames) == 5 and torch.equal(torch.stack(frames, -1), whole)
