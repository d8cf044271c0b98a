"""Accompaniment, pad and bass parts over a clip's chords (compose.harmony).

Each pattern is written over one chord's span (2, 3 or 4 beats) as (beat offset, length, which
note) events: which is "chord" (every note of the voicing, together), an index into the voicing
(arpeggios; past its top the voicing repeats an octave up) or "low" (the root an octave below).
Busy patterns thin out at fast tempos, as players do.
"""

from __future__ import annotations

import random

from ssmusic.data.demo_v2.compose import Note, Span, Song
from ssmusic.data.demo_v2.theory import voice

COMP = {4: (((0, 1.5),), ((0.5, 1), (2.5, 1)), ((1.5, 1), (3, 0.5)), ((0, 0.5), (1.5, 1.5)), ((1, 0.5), (2.5, 1))),
        3: (((0, 1), (1.5, 1)), ((1, 0.5), (2, 0.5)), ((0, 2),)),
        2: (((0, 1),), ((0.5, 1),), ((1.5, 0.5),), ((0, 0.5), (1, 0.5)))}


def _steps(length: float, step: float) -> list[float]:
    out, t = [], 0.0
    while t < length - 1e-9:
        out.append(t)
        t += step
    return out


def pattern_events(pattern: str, length: float, bpm: int, rng: random.Random) -> list[tuple[float, float, object]]:
    """One chord span's events for an accompaniment pattern (see the module docstring)."""
    fast = bpm > 110
    if pattern == "sustain":
        return [(0.0, length * 0.98, "chord")]
    if pattern == "block":
        step = 2.0 if fast and length >= 4 else (3.0 if fast and length == 3 else 1.0)
        return [(t, step * 0.9, "chord") for t in _steps(length, step)]
    if pattern in ("arpeggio", "alberti"):
        step = 1.0 if bpm > (150 if pattern == "alberti" else 110) else 0.5
        order = (0, 2, 1, 2) if pattern == "alberti" else (0, 1, 2, 3, 2, 1)
        return [(t, step * 1.4, order[i % len(order)]) for i, t in enumerate(_steps(length, step))]
    if pattern == "oompah":
        return [(t, 0.8, "low" if i % 2 == 0 and not (length == 3 and i) else "chord")
                for i, t in enumerate(_steps(length, 1.0))]
    if pattern == "strum":
        grid = {4: (0, 1, 1.5, 2.5, 3, 3.5), 3: (0, 1, 1.5, 2), 2: (0, 1, 1.5)}[int(length)]
        onsets = grid if bpm <= 130 else tuple(_steps(length, 1.0))
        return [(float(t), 0.9, "strum") for t in onsets]
    if pattern == "comp":
        return [(t, d, "chord") for t, d in rng.choice(COMP[int(length)])]
    if pattern == "offbeat":
        return [(t + 0.5, 0.35, "chord") for t in _steps(length, 1.0)]
    if pattern == "power":
        step = 1.0 if bpm > 140 else 0.5
        return [(t, step * 0.8, "power") for t in _steps(length, step)]
    raise ValueError(f"unknown accompaniment pattern {pattern!r}")


def _pitches(which: object, voicing: list[int], span: Span) -> list[int]:
    if which in ("chord", "strum"):
        return voicing
    if which == "low":
        return [min(voicing) - 12 + (span.chord.root - min(voicing)) % 12]
    if which == "power":
        root = min(voicing) - 12 + (span.chord.root - min(voicing)) % 12
        return [root, root + 7, root + 12]
    index = int(which)
    return [voicing[index % len(voicing)] + 12 * (index // len(voicing))]


def accompaniment(song: Song, spans: list[Span], pattern: str, register: tuple[int, int], rng: random.Random,
                  channel: int, velocity: int) -> list[Note]:
    """Chords in `pattern`, voiced in `register` with smooth voice leading from chord to chord."""
    notes, previous = [], None
    seconds_per_beat = 60 / song.bpm
    for span in spans:
        voicing = voice(span.chord.pitch_classes, *register, previous)
        previous = voicing
        for offset, length, which in pattern_events(pattern, span.length, song.bpm, rng):
            accent = 5 if offset == 0 else 0
            for i, pitch in enumerate(_pitches(which, voicing, span)):
                # a strum sounds its strings one after another, ~15 ms apart
                delay = i * 0.015 / seconds_per_beat if which == "strum" else 0.0
                notes.append(Note(span.start + offset + delay, max(0.1, length - delay), pitch,
                                  velocity + accent + rng.randint(-4, 4), channel))
    return notes


def _place(pitch_class: int, register: tuple[int, int], near: int | None) -> int:
    """The pitch of this class inside `register`, nearest `near` (the previous bass note)."""
    options = [p for p in range(register[0], register[1] + 1) if p % 12 == pitch_class]
    centre = near if near is not None else register[0] + 7
    return min(options, key=lambda p: abs(p - centre))


def _walk(span: Span, following: Span | None, register: tuple[int, int], root: int, rng: random.Random) -> list[int]:
    """A walking line: the root, chord tones on the way, and a step into the next chord's root."""
    steps = int(span.length)
    line = [root]
    tones = [pc for pc in span.chord.pitch_classes]
    for _ in range(steps - 2):
        line.append(_place(rng.choice(tones[1:]), register, line[-1]))
    if steps > 1:
        target = _place(following.chord.root, register, line[-1]) if following else root
        line.append(target + rng.choice((-1, 1, -2, 2)) if register[0] < target < register[1] else target - 1)
    return line


def bass(song: Song, spans: list[Span], style: str, register: tuple[int, int], rng: random.Random,
         channel: int, velocity: int) -> list[Note]:
    """A bass line in `style`: root, root_fifth, walking, eighths, octaves or syncopated."""
    notes, previous = [], None
    for i, span in enumerate(spans):
        root = _place(span.chord.root, register, previous)
        fifth = root + 7 if root + 7 <= register[1] else root - 5
        octave = root + 12 if root + 12 <= register[1] + 7 else root
        length = span.length
        if style == "root":
            events = [(0, length * 0.95, root)] if length <= 2 or song.bpm > 100 else \
                [(0, length / 2 * 0.95, root), (length / 2, length / 2 * 0.95, root if length == 3 else fifth)]
        elif style == "root_fifth":
            events = [(t, 0.9, root if j % 2 == 0 else fifth) for j, t in enumerate(_steps(length, 2.0 if length == 4
                                                                                          else length))]
        elif style == "walking":
            following = spans[i + 1] if i + 1 < len(spans) else None
            events = [(float(j), 0.9, p) for j, p in enumerate(_walk(span, following, register, root, rng))]
        elif style in ("eighths", "octaves"):
            step = 1.0 if song.bpm > 150 else 0.5
            events = [(t, step * 0.85, octave if style == "octaves" and j % 2 else root)
                      for j, t in enumerate(_steps(length, step))]
        elif style == "syncopated":
            grid = {4: ((0, 1.4, root), (1.5, 0.9, root), (2.5, 0.4, fifth), (3, 0.9, octave)),
                    3: ((0, 1.4, root), (1.5, 1.4, fifth)), 2: ((0, 1.4, root), (1.5, 0.4, fifth))}
            events = list(grid[int(length)])
        else:
            raise ValueError(f"unknown bass style {style!r}")
        for offset, duration, pitch in events:
            notes.append(Note(span.start + offset, duration, pitch,
                              velocity + (6 if offset == 0 else 0) + rng.randint(-4, 4), channel))
        previous = root
    return notes
