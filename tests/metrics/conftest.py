"""The judges' tests share synthetic signals with known answers (judge_signals.py)."""

from types import SimpleNamespace

import pytest

from judge_signals import MAJOR_SCALE, MINOR_SCALE, RATE, click_track, melody, scale, tone


@pytest.fixture
def synth() -> SimpleNamespace:
    return SimpleNamespace(rate=RATE, click_track=click_track, tone=tone, melody=melody, scale=scale,
                           major=MAJOR_SCALE, minor=MINOR_SCALE)
