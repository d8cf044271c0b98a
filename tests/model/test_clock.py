"""The beat clock (ssmusic.model.clock): the tempo a caption names, the phase features, and a clock
model's exactness (recurrent = parallel, static = eager, no clock = the model without one)."""
import math

import pytest
import torch

from ssmusic.config import LMConfig
from ssmusic.errors import ConfigError
from ssmusic.model.clock import CLOCK_FEATURES, caption_tempo, clock_features, drop_clock, tempo_rows
from ssmusic.model.lm import MusicLM
from ssmusic.model.sampling import SamplingParams

FPS = 43.06640625


@pytest.mark.parametrize("caption,expected", [
    ("a lively fiddle jig with drums, 140 BPM, D major", (140.0, 4.0)),
    ("E major, 79 BPM, 4/4 time: pan flute", (79.0, 4.0)),
    ("a waltz in 3/4 at 90 bpm", (90.0, 3.0)),
    ("a racing (179 BPM) jazz combo piece", (179.0, 4.0)),
    ("house music, 120-128 BPM", (120.0, 4.0)),
    ("slow, 62.5 beats per minute", (62.5, 4.0)),
])
def test_the_tempo_a_caption_writes(caption, expected):
    assert caption_tempo(caption) == expected


@pytest.mark.parametrize("caption", ["a fast fiddle jig", "12 BPM is no tempo", "a 1999 BPM typo", "track 140"])
def test_no_tempo_is_read_where_none_is_written(caption):
    assert caption_tempo(caption) is None


def test_tempo_rows_carry_crop_starts_and_zero_for_no_tempo():
    rows = tempo_rows(["at 100 BPM", "no tempo here"], torch.tensor([7, 3]))
    assert rows.tolist() == [[100.0, 4.0, 7.0], [0.0, 0.0, 3.0]]


def test_the_beat_phase_turns_once_a_beat():
    # 120 BPM at 50 frames a second: a beat every 25 frames
    positions = torch.arange(101)[None]
    features = clock_features(positions, torch.tensor([[120.0, 4.0, 0.0]]), 50.0)[0]
    assert features.shape == (101, CLOCK_FEATURES)
    assert features[:, 0].eq(1).all() and features[:, 1].eq(0).all()  # on; log2(120 / 120)
    beat_cos = features[:, 2 + 2 * 1 + 1]  # the beat's cosine (harmonics 0.5, 1, ...)
    assert torch.allclose(beat_cos[::25], torch.ones(5), atol=1e-5)
    assert beat_cos[12].item() < -0.99  # half a beat in
    bar_cos = features[:, -1]
    assert torch.allclose(bar_cos[[0, 100]], torch.ones(2), atol=1e-5) and bar_cos[50].item() < -0.99
    # a crop that starts 25 frames (one beat) in: its bar phase is a quarter turn on, its beat the same
    shifted = clock_features(positions, torch.tensor([[120.0, 4.0, 25.0]]), 50.0)[0]
    assert torch.allclose(shifted[:, 2 + 2 * 1 + 1], beat_cos, atol=1e-5)
    assert abs(shifted[0, -2].item() - math.sin(math.pi / 2)) < 1e-5


def test_a_row_without_tempo_has_no_features():
    features = clock_features(torch.arange(10)[None].expand(2, -1), torch.tensor([[0.0, 0, 0], [90, 3, 0]]), FPS)
    assert features[0].eq(0).all() and features[1].abs().sum() > 0


def test_drop_clock_switches_rows_off():
    tempo = torch.tensor([[100.0, 4, 0]] * 1000)
    dropped = drop_clock(tempo, 0.2, torch.Generator().manual_seed(0))
    off = dropped[:, 0].eq(0).float().mean().item()
    assert 0.15 < off < 0.25 and dropped[dropped[:, 0] > 0].eq(tempo[:1]).all()


def _model(clock=True, **kw) -> MusicLM:
    torch.manual_seed(0)
    config = LMConfig(backbone="simba", conditioning="cross", d_model=32, n_layers=2, d_state=8, headdim=8,
                      n_heads=4, chunk_size=4, card=17, text_dim=12, dropout=0.0,
                      tempo_clock_fps=FPS if clock else 0.0, **kw)
    model = MusicLM(config).eval()
    if clock:  # a trained clock: the zero start would hide every error
        torch.nn.init.normal_(model.clock.proj.weight, std=0.5)
    return model


def _inputs(length=11):
    torch.manual_seed(1)
    codes = torch.randint(0, 17, (3, 1, length))
    text = torch.randn(3, 5, 12)
    tempo = torch.tensor([[140.0, 4, 0], [0.0, 0, 0], [63.0, 3, 17]])
    return codes, text, tempo


def test_the_clock_changes_only_rows_that_have_one_and_recurrent_decoding_is_exact():
    model = _model()
    codes, text, tempo = _inputs()
    with torch.no_grad():
        with_clock = model(codes, text, None, None, tempo)
        without = model(codes, text)
        recurrent = model.recurrent_logits(codes, text, tempo=tempo)
    torch.testing.assert_close(recurrent, with_clock, atol=1e-4, rtol=1e-4)
    assert torch.equal(with_clock[1], without[1])  # bpm 0: the model without a clock
    assert not torch.allclose(with_clock[0], without[0]) and not torch.allclose(with_clock[2], without[2])
    # the first frame's prediction already hears the clock (position 0 predicts frame 0)
    assert not torch.allclose(with_clock[0, :, 0], without[0, :, 0])


def test_a_fresh_clock_leaves_a_trained_model_unchanged():
    base = _model(clock=False)
    fresh = MusicLM(_model().config).eval()
    missing, unexpected = fresh.load_state_dict(base.state_dict(), strict=False)
    assert missing == ["clock.proj.weight"] and not unexpected
    codes, text, tempo = _inputs()
    with torch.no_grad():
        assert torch.equal(fresh(codes, text, None, None, tempo), base(codes, text))


def test_generation_with_a_clock_is_the_greedy_argmax_of_forward_and_static_equals_eager():
    model = _model()
    _, text, tempo = _inputs()
    greedy = SamplingParams(cfg_scale=1.0, top_k=1)
    codes = model.generate(text, None, steps=9, sampling=greedy, tempo=tempo)
    with torch.no_grad():
        assert torch.equal(model(codes, text, None, None, tempo).argmax(-1), codes)
    guided = SamplingParams(cfg_scale=3.0, top_k=5, seed=4)
    eager = model.generate(text, None, steps=9, sampling=guided, tempo=tempo)
    assert not torch.equal(eager, model.generate(text, None, steps=9, sampling=guided))
    model.cuda_graphs, model.uses_cuda_graphs = True, lambda: True  # the static path, on the CPU
    assert torch.equal(model.generate(text, None, steps=9, sampling=guided, tempo=tempo), eager)
    assert torch.equal(model.generate(text, None, steps=9, sampling=guided), model.generate(
        text, None, steps=9, sampling=guided, tempo=torch.zeros(3, 3)))


def test_a_clock_needs_cross_or_pooled_conditioning():
    with pytest.raises(ConfigError, match="tempo_clock_fps"):
        LMConfig(conditioning="prefix", tempo_clock_fps=FPS)
    with pytest.raises(ConfigError, match="tempo_clock_fps"):
        LMConfig(conditioning="cross", tempo_clock_fps=-1.0)


def test_a_clock_model_saves_and_loads(tmp_path):
    model = _model()
    model.save_pretrained(tmp_path)
    loaded = MusicLM.from_pretrained(tmp_path).eval()
    codes, text, tempo = _inputs()
    with torch.no_grad():
        assert torch.equal(loaded(codes, text, None, None, tempo), model(codes, text, None, None, tempo))
