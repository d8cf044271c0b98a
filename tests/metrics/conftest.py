"""The judges' tests share synthetic signals with known answers (judge_signals.py)."""

from types import SimpleNamespace

import pytest

from judge_signals import MAJOR_SCALE, MINOR_SCALE, RATE, click_track, melody, scale, tone


@pytest.fixture
def synth() -> SimpleNamespace:
    return SimpleNamespace(rate=RATE, click_track=click_track, tone=tone, melody=melody, scale=scale,
                           major=MAJOR_SCALE, minor=MINOR_SCALE)


@pytest.fixture
def essentia(monkeypatch) -> SimpleNamespace:
    """essentia made importable (a stand-in whose beat tracker reads `bpm`) or absent: a judge's default
    must not change with it, and essentia's estimators run only when asked for by name."""
    import sys
    import types

    state = SimpleNamespace(bpm=117.0)

    def install() -> None:
        standard = types.ModuleType("essentia.standard")
        standard.RhythmExtractor2013 = lambda method: (lambda audio: (state.bpm, [], 1.0, [], []))
        standard.Resample = lambda inputSampleRate, outputSampleRate: (lambda audio: audio)
        package = types.ModuleType("essentia")
        package.standard = standard
        monkeypatch.setitem(sys.modules, "essentia", package)
        monkeypatch.setitem(sys.modules, "essentia.standard", standard)

    def remove() -> None:
        monkeypatch.setitem(sys.modules, "essentia", None)   # `import essentia` raises ImportError
        monkeypatch.setitem(sys.modules, "essentia.standard", None)

    state.install, state.remove = install, remove
    return state
