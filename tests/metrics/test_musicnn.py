"""The PyTorch musicnn port against outputs recorded from the original TensorFlow model on three
deterministic clips (tests/fixtures/musicnn_reference.npz: its float16 log-mel input, per-patch tag
probabilities and penultimate embeddings, also with a patch every second)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ssmusic.errors import SsmusicError
from ssmusic.metrics import musicnn

FIXTURE = Path(__file__).parents[1] / "fixtures" / "musicnn_reference.npz"
SR, SECONDS = 16000, 10.0


def _note(f0, dur, amp, n_harm=8, tau=0.5):
    t = np.arange(int(dur * SR)) / SR
    out = np.zeros_like(t)
    for k in range(1, n_harm + 1):
        fk = k * f0 * np.sqrt(1 + 1e-4 * k * k)
        if fk < SR / 2:
            out += (amp / k) * np.exp(-t * k / (tau * 2)) * np.sin(2 * np.pi * fk * t)
    return out * np.minimum(1.0, t / 0.005)


def _hz(m):
    return 440.0 * 2 ** ((m - 69) / 12)


def _piano():
    rng = np.random.default_rng(1)
    y = np.zeros(int(SECONDS * SR))
    for i, m in enumerate([60, 64, 67, 72, 71, 67, 64, 62, 60, 65, 69, 72, 70, 67, 64, 60, 59, 62, 67, 65]):
        s = int(i * 0.5 * SR)
        n = _note(_hz(m), 1.0, 0.06 * (0.8 + 0.4 * rng.random()))
        e = min(len(y), s + len(n))
        y[s:e] += n[: e - s]
    return y.astype(np.float32)


def _drums():
    """120 BPM: kick on beats 1 and 3, noise snare on 2 and 4, noise hi-hat on eighths."""
    rng = np.random.default_rng(2)
    y = np.zeros(int(SECONDS * SR))
    beat = int(0.5 * SR)

    def put(start, x):
        e = min(len(y), start + len(x))
        y[start:e] += x[: e - start]

    t = np.arange(int(0.3 * SR)) / SR
    kick = 0.12 * np.sin(2 * np.pi * (50 * t + 100 * 0.05 * (1 - np.exp(-t / 0.05)))) * np.exp(-t / 0.08)
    for b in range(int(SECONDS / 0.5)):
        put(b * beat, kick if b % 2 == 0 else 0.25 * rng.standard_normal(len(t)) * np.exp(-t / 0.06))
        for h in range(2):
            th = t[: int(0.05 * SR)]
            put(b * beat + h * beat // 2, np.diff(rng.standard_normal(len(th) + 1)) * 0.08 * np.exp(-th / 0.015))
    return y.astype(np.float32)


def _chord():
    t = np.arange(int(SECONDS * SR)) / SR
    y = np.zeros_like(t)
    for m in (48, 60, 64, 67, 72):
        for k in range(1, 6):
            y += (0.02 / k) * np.sin(2 * np.pi * k * _hz(m) * t + 0.3 * k)
    y *= (1 + 0.2 * np.sin(2 * np.pi * 0.5 * t)) * np.minimum(1.0, t / 0.2)
    return y.astype(np.float32)


CLIPS = {"piano": _piano, "drums": _drums, "chord": _chord}


@pytest.fixture(scope="module")
def fixture() -> dict:
    raw = np.load(FIXTURE, allow_pickle=False)
    return {**{k: raw[k] for k in raw.files if k != "meta"}, "meta": json.loads(str(raw["meta"]))}


@pytest.fixture(scope="module")
def tagger():
    return musicnn.load_musicnn("MTT_musicnn")


def test_clips_are_the_recorded_ones(fixture):
    import hashlib

    for name, make in CLIPS.items():
        digest = hashlib.sha256(np.ascontiguousarray(make(), dtype=np.float32).tobytes()).hexdigest()
        assert digest == fixture["meta"]["sha256"][name]


@pytest.mark.parametrize("name", list(CLIPS))
def test_port_matches_the_original_within_1e_4(fixture, tagger, name):
    result = tagger.analyze(CLIPS[name](), SR)
    reference = fixture[f"MTT_musicnn__{name}__taggram"]
    np.testing.assert_allclose(result["taggram"].numpy(), reference, atol=1e-4, rtol=0)
    np.testing.assert_allclose(result["tag_probs"].numpy(), reference.mean(0), atol=1e-4, rtol=0)
    np.testing.assert_allclose(result["penultimate"].numpy(), fixture[f"MTT_musicnn__{name}__penultimate"], atol=1e-3)
    mel = musicnn.log_mel(CLIPS[name]())  # float16 input: at most a few values one float16 step apart
    assert mel.shape == fixture[f"mel__{name}"].shape and (mel != fixture[f"mel__{name}"]).sum() <= 3


def test_patch_every_second_and_the_case_that_must_fail(fixture, tagger):
    drums = _drums()
    hop = tagger.analyze(drums, SR, hop_s=1.0)["taggram"].numpy()
    np.testing.assert_allclose(hop, fixture["MTT_musicnn__drums__taggram_hop1s"], atol=1e-4, rtol=0)
    # another clip's outputs are far from the drums' recording: the comparison can fail
    piano = tagger.analyze(_piano(), SR)["taggram"].numpy()
    assert np.abs(piano - fixture["MTT_musicnn__drums__taggram"]).max() > 0.1


def test_it_hears_what_the_clips_are(tagger):
    assert tagger.top_tags(_piano(), SR, k=1)[0][0] == "piano"
    probs = tagger.tag_probs(_drums(), SR)
    assert probs[tagger.tags.index("drums")] > probs[tagger.tags.index("piano")]
    assert torch.isfinite(tagger.tag_probs(5 * _piano()[: 3 * SR], SR)).all()  # loud input stays finite


def test_unknown_model_is_a_clear_error():
    with pytest.raises(SsmusicError, match="unknown model"):
        musicnn.load_musicnn("VGGish")
