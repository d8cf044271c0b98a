"""Synthetic signals with known answers for the judges' tests (tempo, key, motion): click tracks,
tones that decay or are held, melodies and scales."""

import numpy as np

RATE = 22050


def click_track(bpm: float, seconds: float = 10.0, rate: int = RATE) -> np.ndarray:
    """A click (a 20 ms decaying 1.5 kHz burst) on every beat, with an accent on each bar's first."""
    out = np.zeros(int(seconds * rate), np.float32)
    t = np.arange(int(0.02 * rate)) / rate
    click = (np.sin(2 * np.pi * 1500 * t) * np.exp(-t / 0.004)).astype(np.float32)
    for i, start in enumerate(np.arange(0, seconds, 60.0 / bpm)):
        s = int(start * rate)
        n = min(len(click), len(out) - s)
        out[s:s + n] += click[:n] * (1.0 if i % 4 == 0 else 0.6)
    return 0.5 * out


def tone(midi: float, seconds: float, rate: int = RATE, decay: float | None = 1.0) -> np.ndarray:
    """A harmonic tone (4 partials), decaying like a plucked string, or held when decay is None."""
    t = np.arange(int(seconds * rate)) / rate
    f = 440.0 * 2 ** ((midi - 69) / 12)
    wave = sum(np.sin(2 * np.pi * f * k * t) / k for k in range(1, 5))
    envelope = np.ones_like(t) if decay is None else np.exp(-t / decay)
    attack = np.minimum(1.0, t / 0.005)
    return (0.2 * wave * envelope * attack).astype(np.float32)


def melody(notes: list[float], note_seconds: float = 0.3, rate: int = RATE) -> np.ndarray:
    return np.concatenate([tone(n, note_seconds, rate, decay=0.3) for n in notes])


MAJOR_SCALE = [0, 2, 4, 5, 7, 9, 11, 12]
MINOR_SCALE = [0, 2, 3, 5, 7, 8, 10, 12]  # natural minor


def scale(tonic_midi: int, steps: list[int], repeats: int = 2) -> np.ndarray:
    """The scale up and down, `repeats` times, ending on the tonic held (tonic-weighted, as music is)."""
    up = [tonic_midi + s for s in steps]
    line = (up + up[-2:0:-1]) * repeats + [tonic_midi]
    return np.concatenate([melody(line), tone(tonic_midi, 1.0, decay=0.5)])
