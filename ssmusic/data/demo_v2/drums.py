"""Drum-kit parts on MIDI channel 10 (0-based channel 9), patterns that follow the meter.

A style is one bar's hits (beat offset, General MIDI drum note, level); hi-hats subdivide by tempo
(sixteenths when slow, eighths, quarters when very fast); each phrase opens with a crash and closes
with a fill on its last beat, so the drums mark the phrase structure the melody has.
"""

from __future__ import annotations

import random

from ssmusic.data.demo_v2.compose import Note

DRUM_CHANNEL = 9
KICK, SIDE_STICK, SNARE, CLAP, CLOSED_HAT, PEDAL_HAT, OPEN_HAT, CRASH, RIDE = 36, 37, 38, 39, 42, 44, 46, 49, 51
TOMS = (50, 48, 47, 45, 43, 41)
LEVELS = {"A": 1.0, "n": 0.82, "g": 0.45}  # accent, normal, ghost

# one bar's hits besides the hi-hats: (offset in beats, drum note, level)
STYLES = {
    "rock": {4: ((0, KICK, "A"), (2, KICK, "n"), (2.5, KICK, "n"), (1, SNARE, "A"), (3, SNARE, "A"))},
    "pop": {4: ((0, KICK, "A"), (1.5, KICK, "n"), (2.5, KICK, "n"), (1, SNARE, "A"), (3, SNARE, "A"))},
    "ballad": {4: ((0, KICK, "A"), (2.5, KICK, "n"), (1, SIDE_STICK, "n"), (3, SIDE_STICK, "n"))},
    "four_on_floor": {4: ((0, KICK, "A"), (1, KICK, "A"), (2, KICK, "A"), (3, KICK, "A"), (1, CLAP, "A"),
                          (3, CLAP, "A"), (0.5, OPEN_HAT, "n"), (1.5, OPEN_HAT, "n"), (2.5, OPEN_HAT, "n"),
                          (3.5, OPEN_HAT, "n"))},
    "jazz": {4: ((0, RIDE, "n"), (1, RIDE, "A"), (1.5, RIDE, "g"), (2, RIDE, "n"), (3, RIDE, "A"), (3.5, RIDE, "g"),
                 (1, PEDAL_HAT, "n"), (3, PEDAL_HAT, "n"), (0, KICK, "g")),
             3: ((0, RIDE, "A"), (1, RIDE, "n"), (1.5, RIDE, "g"), (2, RIDE, "n"), (1, PEDAL_HAT, "n"), (0, KICK, "g"))},
    "folk": {4: ((0, KICK, "A"), (2, KICK, "n"), (1, SNARE, "n"), (3, SNARE, "n"))},
    "waltz": {3: ((0, KICK, "A"), (1, SNARE, "g"), (2, SNARE, "g"))},
}
HATS = {"rock": CLOSED_HAT, "pop": CLOSED_HAT, "ballad": CLOSED_HAT, "four_on_floor": CLOSED_HAT, "folk": CLOSED_HAT,
        "waltz": CLOSED_HAT}


def style_for(style: str, beats: int) -> str:
    """A 4/4 style, or the waltz (jazz: its own three-beat ride pattern) in 3/4."""
    if beats == 3:
        return "jazz" if style == "jazz" else "waltz"
    return style


def hat_step(bpm: int) -> float:
    return 0.25 if bpm < 80 else 0.5 if bpm <= 150 else 1.0


def drum_part(style: str, beats: int, bars: int, phrase_bars: int, bpm: int, rng: random.Random,
              velocity: int) -> list[Note]:
    """Every bar's pattern, crashes on phrase starts and a fill on each phrase's last beat."""
    style = style_for(style, beats)
    pattern = STYLES[style][beats]
    hat = HATS.get(style)
    step = hat_step(bpm) if style != "four_on_floor" else (0.25 if bpm <= 130 else 0.5)
    notes = []
    for bar in range(bars):
        start = bar * beats
        last_of_phrase = bar % phrase_bars == phrase_bars - 1
        fill_from = beats - 1 if last_of_phrase and style != "jazz" else beats
        hits = [(o, d, lv) for o, d, lv in pattern if o < fill_from or d == KICK and o == 0]
        if hat is not None:
            t = 0.0
            while t < fill_from - 1e-9:
                hits.append((t, hat, "n" if t == int(t) else "g"))
                t += step
        if bar % phrase_bars == 0:
            hits.append((0, CRASH if style != "jazz" else RIDE, "A"))
        if fill_from < beats:
            hits += _fill(fill_from, beats, bpm, rng)
        for offset, drum, level in hits:
            vel = int(velocity * LEVELS[level]) + rng.randint(-5, 5)
            notes.append(Note(start + offset, 0.25, drum, max(1, min(127, vel)), DRUM_CHANNEL))
    return notes


def _fill(start: float, end: float, bpm: int, rng: random.Random) -> list[tuple[float, int, str]]:
    """The last beat of a phrase: snare and toms descending, in sixteenths (eighths when fast)."""
    step = 0.25 if bpm <= 120 else 0.5
    toms = rng.choice((TOMS[:4], TOMS[1:5], (SNARE, SNARE, TOMS[2], TOMS[4]), (SNARE,) * 4))
    hits, t, i = [], start, 0
    while t < end - 1e-9:
        hits.append((t, toms[min(i, len(toms) - 1)], "A" if i == 0 else "n"))
        t += step
        i += 1
    return hits
