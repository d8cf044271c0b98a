"""Composing a clip: chord progression, melody, accompaniment and bass as notes (drums: drums.py).

The melody is built the way simple tunes are: phrases of two or four bars over a repeating chord
progression, the second phrase of each pair closing on a cadence to the tonic (the first on the
dominant); a rhythm motif per phrase that returns (a b a c), with its pitch shape repeated as a
sequence on the new chord; chord tones on the strong beats and steps of the scale between them; an
arch in each phrase (rise, then fall to the cadence). Times are in beats (quarter notes) from the
start of the clip.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from ssmusic.data.demo_v2.theory import PROGRESSIONS, Chord, Key, voice

# One bar's melody rhythm: note lengths in beats, a negative length is a rest. Each meter's cells
# sum to its bar; "cadence" cells end a phrase on a long note.
CELLS = {
    4: {"body": ((1, 1, 1, 1), (2, 1, 1), (1, 1, 2), (1.5, 0.5, 1, 1), (1, 0.5, 0.5, 1, 1), (0.5, 0.5, 1, 0.5, 0.5, 1),
                 (1, 1, 0.5, 0.5, 1), (0.5, 0.5, 0.5, 0.5, 1, 1), (0.75, 0.25, 0.75, 0.25, 1, 1), (1.5, 0.5, 1.5, 0.5),
                 (0.5, 1, 0.5, 1, 1), (1, 0.5, 1, 0.5, 1), (0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 1), (1, 1, 1, -1),
                 (-0.5, 0.5, 1, 1, 1), (0.25, 0.25, 0.5, 1, 1, 1), (3, 1), (0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5)),
        "cadence": ((2, 2), (1, 1, 2), (3, -1), (4,), (1, 3), (0.5, 0.5, 1, 2), (2, 1, -1))},
    3: {"body": ((1, 1, 1), (2, 1), (1, 2), (1.5, 0.5, 1), (1, 0.5, 0.5, 1), (0.5, 0.5, 1, 1), (0.5, 0.5, 0.5, 0.5, 1),
                 (1, 1, 0.5, 0.5), (0.75, 0.25, 1, 1), (0.5, 0.5, 0.5, 0.5, 0.5, 0.5), (-1, 1, 1)),
        "cadence": ((3,), (2, -1), (1, 2), (0.5, 0.5, 2))},
}
ARCH = {4: (0, 2, 4, 1), 2: (2, 0)}  # the melody's register target by bar of a phrase, in scale steps


@dataclass(frozen=True)
class Note:
    start: float  # beats from the clip start
    length: float  # beats
    pitch: int
    velocity: int
    channel: int


@dataclass(frozen=True)
class Span:
    """A chord over [start, start + length) beats; `cadence` marks a phrase's last chord."""

    start: float
    length: float
    chord: Chord
    bar: int
    cadence: str = ""  # "" | "half" | "authentic"


@dataclass(frozen=True)
class Song:
    key: Key
    bpm: int
    beats: int  # per bar
    bars: int
    progression: str  # a name in theory.PROGRESSIONS[mode]
    chords_per_bar: int = 1
    sevenths: bool = False

    @property
    def phrase_bars(self) -> int:
        return len(PROGRESSIONS[self.key.mode][self.progression]) // self.chords_per_bar


def harmony(song: Song) -> list[Span]:
    """The progression repeated for the whole clip. Phrases come in pairs: the first ends where the
    progression ends (often on V, a half cadence), the second closes V - I (an authentic cadence)."""
    degrees = PROGRESSIONS[song.key.mode][song.progression]
    span = song.beats / song.chords_per_bar
    spans, phrase = [], 0
    while len(spans) * span < song.bars * song.beats:
        chords = list(degrees)
        if phrase % 2 == 1 and chords[-2:] != [4, 0]:
            chords[-2:] = [4, 0]
        cadence = "authentic" if chords[-1] == 0 else "half"
        for i, degree in enumerate(chords):
            start = len(spans) * span
            spans.append(Span(start, span, song.key.chord(degree, song.sevenths), int(start // song.beats),
                              cadence if i == len(chords) - 1 else ""))
        phrase += 1
    return spans


def _chord_at(spans: list[Span], beat: float) -> Span:
    for span in spans:
        if span.start <= beat < span.start + span.length:
            return span
    return spans[-1]


def _cell_weights(cells: tuple, bpm: int, beats: int, density: float) -> list[float]:
    """Cells playable at this tempo (no note under 0.12 s), weighted toward `density` notes/s."""
    weights = []
    for cell in cells:
        shortest = min(abs(d) for d in cell) * 60 / bpm
        per_second = sum(d > 0 for d in cell) / (beats * 60 / bpm)
        weights.append(0.0 if shortest < 0.12 else math.exp(-((per_second - density) / 1.2) ** 2) + 1e-3)
    return weights


def rhythm_plan(song: Song, rng: random.Random) -> list[tuple]:
    """One rhythm cell per bar: a motif that returns within each phrase; the pair's second phrase
    repeats the first with a new third bar (a b a c / a b d c')."""
    cells = CELLS[song.beats]
    density = rng.uniform(1.8, 5.0)
    body = _cell_weights(cells["body"], song.bpm, song.beats, density)
    ending = _cell_weights(cells["cadence"], song.bpm, song.beats, density * 0.6)
    if not any(body):
        body = [1.0] * len(body)

    def draw(pool, weights):
        return rng.choices(pool, weights)[0]

    plan = []
    while len(plan) < song.bars:
        a, b = draw(cells["body"], body), draw(cells["body"], body)
        if song.phrase_bars >= 4:
            plan += [a, b, a, draw(cells["cadence"], ending), a, b, draw(cells["body"], body),
                     draw(cells["cadence"], ending)]
        else:
            plan += [a, draw(cells["cadence"], ending), a, draw(cells["cadence"], ending)]
    return plan[: song.bars]


def _degree_range(key: Key, low: int, high: int) -> tuple[int, int]:
    degrees = [d for d in range(0, 80) if low <= key.pitch(d, 0) <= high]
    return degrees[0], degrees[-1]


def _chord_degrees(span: Span) -> set[int]:
    return {(span.chord.degree + s) % 7 for s in ((0, 2, 4, 6) if len(span.chord.pitch_classes) == 4 else (0, 2, 4))}


def _nearest_in(candidates: set[int], around: int, low: int, high: int, rng: random.Random,
                target: float) -> int:
    """A degree whose class is in `candidates`, near `around` (the previous note) and pulled toward
    `target` (the phrase's arch)."""
    options = [d for d in range(max(low, around - 5), min(high, around + 5) + 1) if d % 7 in candidates]
    if not options:
        options = [d for d in range(low, high + 1) if d % 7 in candidates]
    closeness = {0: 0.3, 1: 1.0, 2: 1.0, 3: 0.6, 4: 0.35, 5: 0.2}
    weights = [closeness[min(5, abs(d - around))] * math.exp(-abs(d - target) / 3) for d in options]
    return rng.choices(options, weights)[0]


def melody(song: Song, spans: list[Span], rng: random.Random, register: tuple[int, int],
           channel: int, velocity: int) -> list[Note]:
    """The tune, one bar's rhythm cell at a time (see the module docstring)."""
    low, high = _degree_range(song.key, *register)
    centre = (low + high) // 2 - 1
    recent, shapes, notes = [centre], {}, []
    for bar, cell in enumerate(rhythm_plan(song, rng)):
        phrase_bar = bar % song.phrase_bars
        target = centre + ARCH.get(song.phrase_bars, ARCH[4])[phrase_bar]
        onsets, t = [], 0.0
        for length in cell:
            if length > 0:
                onsets.append((t, length))
            t += abs(length)
        degrees = _bar_degrees(song, spans, bar, onsets, shapes.get(cell), recent, low, high, rng, target)
        shapes.setdefault(cell, [d - degrees[0] for d in degrees])
        recent = (recent + degrees)[-2:]
        for (offset, length), degree in zip(onsets, degrees):
            start = bar * song.beats + offset
            span = _chord_at(spans, start)
            strong = offset == 0 or (song.beats == 4 and offset == 2)
            notes.append(Note(start, length * 0.92, song.key.pitch(degree, 0, span.chord.degree),
                              velocity + (6 if strong else -3) + rng.randint(-4, 4), channel))
    return notes


def _bar_degrees(song: Song, spans: list[Span], bar: int, onsets: list, shape: list | None, recent: list[int],
                 low: int, high: int, rng: random.Random, target: float) -> list[int]:
    """Scale degrees for one bar's onsets: a returning motif's shape moved to the new chord (a
    sequence), or a fresh line; strong beats on chord tones; the phrase's last note on its cadence;
    never a third repeat of one pitch (a line that sits on a note stops moving). `recent`: the
    degrees of the notes before this bar (the last two at least)."""
    degrees, current = [], recent[-1]
    for i, (offset, length) in enumerate(onsets):
        beat = bar * song.beats + offset
        span = _chord_at(spans, beat)
        chord = _chord_degrees(span)
        strong = offset == 0 or (song.beats == 4 and offset == 2) or length >= 1.5
        last = i == len(onsets) - 1 and span.cadence and beat + length >= span.start + span.length - 1e-9
        if last:
            goal = {0} if span.cadence == "authentic" else {4, 1, 6}
            degree = _nearest_in(goal, degrees[-1] if degrees else current, low, high, rng, target - 1)
        elif shape is not None and i < len(shape):
            degree = (_nearest_in(chord, current, low, high, rng, target) if i == 0 else degrees[0] + shape[i])
            if strong and degree % 7 not in chord:
                degree = _nearest_in(chord, degree, low, high, rng, degree)
        elif strong or not degrees and i == 0:
            degree = _nearest_in(chord, degrees[-1] if degrees else current, low, high, rng, target)
        else:
            previous = degrees[-1] if degrees else current
            direction = 1 if target > previous else -1 if target < previous else rng.choice((-1, 1))
            move = rng.choices((direction, -direction, 0, 2 * direction), (0.55, 0.2, 0.12, 0.13))[0]
            degree = previous + move
        degree = min(high, max(low, degree))
        if not last and (recent + degrees)[-2:] == [degree, degree]:
            others = (chord if strong else {(degree + 1) % 7, (degree - 1) % 7}) - {degree % 7}
            degree = _nearest_in(others, degree, low, high, rng, target)
        degrees.append(degree)
    return degrees
