"""Controls read from the prompt (ssmusic.model.controls): the tempo and key a caption names, the beat
clock's phases, the key vector, and a model's exactness with them (recurrent = parallel, static =
eager, none asked = the model without them)."""
import math

import pytest
import torch

from ssmusic.config import LMConfig
from ssmusic.errors import ConfigError
from ssmusic.model.controls import (CLOCK_FEATURES, caption_key, caption_tempo, clock_features, control_rows,
                                    drop_controls, no_controls)
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


@pytest.mark.parametrize("caption,expected", [
    ("a lively fiddle jig with drums, 140 BPM, D major", (2, 0)),
    ("Folky; 142 BPM, rapid; F minor; pan flute", (5, 1)),
    ("in E-flat major", (3, 0)), ("E flat major", (3, 0)), ("Eb major", (3, 0)), ("E♭ major", (3, 0)),
    ("C-sharp minor", (1, 1)), ("C# minor", (1, 1)), ("C♯ minor", (1, 1)), ("B minor", (11, 1)),
    ("A minor, 90 BPM", (9, 1)), ("a minor-key lament", (-1, 1)), ("A minor-key lament", (-1, 1)),
    ("a bright major key tune", (-1, 0)), ("C major key", (0, 0)),
])
def test_the_key_a_caption_writes(caption, expected):
    assert caption_key(caption) == expected


@pytest.mark.parametrize("caption", ["a fast fiddle jig", "a major label release", "minor changes", "play it in G"])
def test_no_key_is_read_where_none_is_written(caption):
    assert caption_key(caption) is None


def test_control_rows_carry_crop_starts_and_mark_what_is_not_asked():
    rows = control_rows(["at 100 BPM in G minor", "no tempo here"], torch.tensor([7, 3]))
    assert rows.tolist() == [[100.0, 4.0, 7.0, 7.0, 1.0], [0.0, 0.0, 3.0, -1.0, -1.0]]
    assert no_controls(2).tolist() == [[0.0, 0.0, 0.0, -1.0, -1.0]] * 2


def test_the_beat_phase_turns_once_a_beat():
    # 120 BPM at 50 frames a second: a beat every 25 frames
    positions = torch.arange(101)[None]
    features = clock_features(positions, torch.tensor([[120.0, 4.0, 0.0, -1, -1]]), 50.0)[0]
    assert features.shape == (101, CLOCK_FEATURES)
    assert features[:, 0].eq(1).all() and features[:, 1].eq(0).all()  # on; log2(120 / 120)
    beat_cos = features[:, 2 + 2 * 1 + 1]  # the beat's cosine (harmonics 0.5, 1, ...)
    assert torch.allclose(beat_cos[::25], torch.ones(5), atol=1e-5)
    assert beat_cos[12].item() < -0.99  # half a beat in
    bar_cos = features[:, -1]
    assert torch.allclose(bar_cos[[0, 100]], torch.ones(2), atol=1e-5) and bar_cos[50].item() < -0.99
    # a crop that starts 25 frames (one beat) in: its bar phase is a quarter turn on, its beat the same
    shifted = clock_features(positions, torch.tensor([[120.0, 4.0, 25.0, -1, -1]]), 50.0)[0]
    assert torch.allclose(shifted[:, 2 + 2 * 1 + 1], beat_cos, atol=1e-5)
    assert abs(shifted[0, -2].item() - math.sin(math.pi / 2)) < 1e-5


def test_a_row_without_tempo_has_no_features():
    features = clock_features(torch.arange(10)[None].expand(2, -1), torch.tensor([[0.0, 0, 0, 2, 0], [90, 3, 0, -1, -1]]), FPS)
    assert features[0].eq(0).all() and features[1].abs().sum() > 0


def test_drop_controls_switches_the_clock_and_the_key_off_apart():
    controls = torch.tensor([[100.0, 4, 9, 2, 1]] * 2000)
    dropped = drop_controls(controls, 0.2, torch.Generator().manual_seed(0))
    no_clock, no_key = dropped[:, 0].eq(0), dropped[:, 3].eq(-1)
    assert 0.17 < no_clock.float().mean() < 0.23 and 0.17 < no_key.float().mean() < 0.23
    assert 0.02 < (no_clock & no_key).float().mean() < 0.06  # drawn apart: about 0.2 x 0.2
    assert dropped[:, 2].eq(9).all() and dropped[no_key, 4].eq(-1).all() and dropped[no_clock, 1].eq(0).all()
    assert dropped[~no_clock & ~no_key].eq(controls[:1]).all()


def _model(clock=True, key=True, **kw) -> MusicLM:
    torch.manual_seed(0)
    config = LMConfig(backbone="simba", conditioning="cross", d_model=32, n_layers=2, d_state=8, headdim=8,
                      n_heads=4, chunk_size=4, card=17, text_dim=12, dropout=0.0,
                      tempo_clock_fps=FPS if clock else 0.0, key_embedding=key, **kw)
    model = MusicLM(config).eval()
    for name, param in model.named_parameters():  # trained controls: the zero start would hide every error
        if name.startswith(("clock.", "key_embed.")):
            torch.nn.init.normal_(param, std=0.5)
    return model


def _inputs(length=11):
    torch.manual_seed(1)
    codes = torch.randint(0, 17, (3, 1, length))
    text = torch.randn(3, 5, 12)
    controls = torch.tensor([[140.0, 4, 0, -1, -1], [0.0, 0, 0, -1, -1], [63.0, 3, 17, 4, 1]])
    return codes, text, controls


@pytest.mark.parametrize("clock,key", [(True, True), (True, False), (False, True)])
def test_controls_change_only_rows_that_ask_and_recurrent_decoding_is_exact(clock, key):
    model = _model(clock, key)
    codes, text, controls = _inputs()
    with torch.no_grad():
        heard = model(codes, text, None, None, controls)
        without = model(codes, text)
        recurrent = model.recurrent_logits(codes, text, controls=controls)
    torch.testing.assert_close(recurrent, heard, atol=1e-4, rtol=1e-4)
    assert torch.equal(heard[1], without[1])  # asks for nothing: the model without controls
    assert not torch.allclose(heard[2], without[2])  # asks for a tempo and a key
    assert torch.allclose(heard[0], without[0]) != clock  # asks for a tempo only
    # the first frame's prediction already hears them (position 0 predicts frame 0)
    assert not torch.allclose(heard[2, :, 0], without[2, :, 0])


def test_fresh_controls_leave_a_trained_model_unchanged():
    base = _model(clock=False, key=False)
    fresh = MusicLM(_model().config).eval()
    missing, unexpected = fresh.load_state_dict(base.state_dict(), strict=False)
    assert sorted(missing) == ["clock.proj.weight", "key_embed.mode.weight", "key_embed.tonic.weight"]
    assert not unexpected
    codes, text, controls = _inputs()
    with torch.no_grad():
        assert torch.equal(fresh(codes, text, None, None, controls), base(codes, text))


def test_generation_with_controls_is_the_greedy_argmax_of_forward_and_static_equals_eager():
    model = _model()
    _, text, controls = _inputs()
    greedy = SamplingParams(cfg_scale=1.0, top_k=1)
    codes = model.generate(text, None, steps=9, sampling=greedy, controls=controls)
    with torch.no_grad():
        assert torch.equal(model(codes, text, None, None, controls).argmax(-1), codes)
    guided = SamplingParams(cfg_scale=3.0, top_k=5, seed=4)
    eager = model.generate(text, None, steps=9, sampling=guided, controls=controls)
    assert not torch.equal(eager, model.generate(text, None, steps=9, sampling=guided))
    model.cuda_graphs, model.uses_cuda_graphs = True, lambda: True  # the static path, on the CPU
    assert torch.equal(model.generate(text, None, steps=9, sampling=guided, controls=controls), eager)
    assert torch.equal(model.generate(text, None, steps=9, sampling=guided), model.generate(
        text, None, steps=9, sampling=guided, controls=no_controls(3)))


def test_controls_need_cross_or_pooled_conditioning():
    with pytest.raises(ConfigError, match="tempo_clock_fps"):
        LMConfig(conditioning="prefix", tempo_clock_fps=FPS)
    with pytest.raises(ConfigError, match="tempo_clock_fps"):
        LMConfig(conditioning="cross", tempo_clock_fps=-1.0)
    with pytest.raises(ConfigError, match="key_embedding"):
        LMConfig(conditioning="prefix", key_embedding=True)


def test_a_clock_model_saves_and_loads(tmp_path):
    model = _model()
    model.save_pretrained(tmp_path)
    loaded = MusicLM.from_pretrained(tmp_path).eval()
    codes, text, controls = _inputs()
    with torch.no_grad():
        assert torch.equal(loaded(codes, text, None, None, controls), model(codes, text, None, None, controls))
