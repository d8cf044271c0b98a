"""What each clip of demo v2 is (drawn from the seed) and its notes (arranged from that draw).

Each clip's choices come from its own random stream, seeded by (seed, index): clip i is the same
whatever --clips says, and a larger set extends a smaller one. Tempo is uniform over 50-180 BPM,
the key uniform over all 24, dynamics soft or loud; the genre is drawn among those played at that
tempo, and the ensemble, patterns and drums within the genre.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from ssmusic.data.demo_v2 import drums, parts
from ssmusic.data.demo_v2.captions import template_for
from ssmusic.data.demo_v2.compose import Note, Song, harmony, melody
from ssmusic.data.demo_v2.styles import (BASS_REGISTERS, ENSEMBLE_SIZES, GENRES, INSTRUMENTS, REGISTERS, SOLO,
                                         genres_for)
from ssmusic.data.demo_v2.theory import PROGRESSIONS, Key

BPM_RANGE = (50, 180)
CHANNELS = {"melody": 0, "accompaniment": 1, "pad": 2, "bass": 3}
VELOCITY = {"soft": 52, "loud": 100}
ROLE_VELOCITY = {"melody": 8, "accompaniment": -14, "pad": -20, "bass": -2, "drums": -4}
VOLUMES = {0: 110, 1: 90, 2: 75, 3: 105, drums.DRUM_CHANNEL: 95}  # MIDI channel volume (CC 7): the mix


@dataclass(frozen=True)
class ClipPlan:
    index: int
    seed: int
    split: str  # train | valid | test | test_phrasing
    genre: str
    tonic: int  # pitch class
    mode: str
    bpm: int
    beats: int  # per bar: 4 or 3
    progression: str
    dynamics: str  # soft | loud
    parts: tuple[tuple[str, int], ...]  # (role, GM program), melody first
    accompaniment: str | None  # pattern
    bass_style: str | None
    drum_style: str | None  # None: no drums
    kit: int | None  # GM drum kit program
    swing: bool
    template: str
    seconds: float
    sample_rate: int

    @property
    def filename(self) -> str:
        return f"clip_{self.index:05d}.wav"

    @property
    def chords_per_bar(self) -> int:
        return 2 if self.beats == 4 and self.bpm < 80 else 1  # slow bars: two chords, so the harmony moves

    def song(self) -> Song:
        bars = math.ceil(self.seconds * self.bpm / 60 / self.beats) + 1
        return Song(Key(self.tonic, self.mode), self.bpm, self.beats, bars, self.progression, self.chords_per_bar,
                    GENRES[self.genre].sevenths)


def split_of(seed: int, index: int) -> str:
    """90 / 5 / 5 by clip (each clip is its own composition); half the test clips are captioned in
    the held-out phrasing family (test_phrasing)."""
    rng = random.Random(f"demo2-split:{seed}:{index}")
    draw = rng.random()
    if draw < 0.05:
        return "test_phrasing" if rng.random() < 0.5 else "test"
    return "valid" if draw < 0.10 else "train"


def _ensemble(genre, rng: random.Random) -> tuple[tuple[tuple[str, int], ...], str | None, str | None]:
    """(parts, accompaniment pattern, bass style) within a genre."""
    _, _, roles = rng.choices(ENSEMBLE_SIZES, [w for _, w, _ in ENSEMBLE_SIZES])[0]
    soloists = [p for p in genre.melody if p in SOLO]
    if roles == ("melody",) and soloists:
        program = rng.choice(soloists)
        return (("melody", program),), SOLO[program], None
    roles = roles if roles != ("melody",) else ("melody", "accompaniment", "bass")
    chosen, pattern, style = [("melody", rng.choice(genre.melody))], None, None
    used = {chosen[0][1]}
    for role in roles[1:]:
        pool = {"accompaniment": sorted(genre.accompaniment), "pad": list(genre.pad), "bass": list(genre.bass)}[role]
        pool = [p for p in pool if p not in used]
        if not pool:
            continue
        program = rng.choice(pool)
        used.add(program)
        chosen.append((role, program))
        if role == "accompaniment":
            pattern = rng.choice(genre.accompaniment[program])
        elif role == "bass":
            style = rng.choice(genre.bass_styles)
    return tuple(chosen), pattern, style


def plan_clip(index: int, seed: int, seconds: float, sample_rate: int) -> ClipPlan:
    """Clip `index`'s every choice, from its own seeded stream."""
    rng = random.Random(f"demo2:{seed}:{index}")
    bpm = rng.randint(*BPM_RANGE)
    tonic, mode = rng.randrange(12), rng.choice(("major", "minor"))
    dynamics = rng.choice(("soft", "loud"))
    genre = GENRES[rng.choice(genres_for(bpm))]
    beats = rng.choices([b for b, _ in genre.meters], [w for _, w in genre.meters])[0]
    progression = rng.choice(sorted(PROGRESSIONS[mode]))
    ensemble, pattern, style = _ensemble(genre, rng)
    drum_style = kit = None
    if len(ensemble) > 1 and rng.random() < genre.drums:
        drum_style, kit = rng.choice(genre.drum_styles), rng.choice(genre.kits)
    swing = rng.random() < genre.swing
    split = split_of(seed, index)
    template = template_for(split, random.Random(f"demo2-template:{seed}:{index}"))
    return ClipPlan(index, seed, split, genre.name, tonic, mode, bpm, beats, progression, dynamics, ensemble, pattern,
                    style, drum_style, kit, swing, template, seconds, sample_rate)


def _swing(beat: float) -> float:
    """Swung eighths: the second eighth of each beat moves from 1/2 to 2/3 of the beat."""
    whole, frac = divmod(beat, 1.0)
    return whole + (frac * 4 / 3 if frac <= 0.5 else 2 / 3 + (frac - 0.5) * 2 / 3)


def _humanize(notes: list[Note], bpm: int, rng: random.Random, swing: bool) -> list[Note]:
    """Swing (if asked) and a few milliseconds of timing spread, as players have."""
    out = []
    spread = 0.006 * bpm / 60  # 6 ms in beats
    for note in notes:
        start, end = note.start, note.start + note.length
        if swing:
            start, end = _swing(start), _swing(end)
        start = max(0.0, start + rng.uniform(-spread, spread))
        out.append(Note(start, max(0.05, end - start), note.pitch, note.velocity, note.channel))
    return out


def arrange(plan: ClipPlan) -> tuple[list[Note], dict[int, int]]:
    """The clip's notes (every part) and its GM program per MIDI channel."""
    rng = random.Random(f"demo2-notes:{plan.seed}:{plan.index}")
    song = plan.song()
    spans = harmony(song)
    base = VELOCITY[plan.dynamics]
    notes, programs = [], {}
    if len(plan.parts) == 1:  # a solo instrument plays its own chords under the tune
        program = plan.parts[0][1]
        low, high = INSTRUMENTS[program].melody
        notes += melody(song, spans, rng, (low + 5, high + 4), 0, base + ROLE_VELOCITY["melody"])
        notes += parts.accompaniment(song, spans, plan.accompaniment, (low - 15, low + 4), rng, 0,
                                     base + ROLE_VELOCITY["accompaniment"])
        programs[0] = program
    ensemble = plan.parts if len(plan.parts) > 1 else ()
    for role, program in ensemble:
        channel, velocity = CHANNELS[role], base + ROLE_VELOCITY[role]
        programs[channel] = program
        if role == "melody":
            notes += melody(song, spans, rng, INSTRUMENTS[program].melody, channel, velocity)
        elif role == "accompaniment":
            register = (40, 64) if plan.accompaniment == "power" else REGISTERS["accompaniment"]
            notes += parts.accompaniment(song, spans, plan.accompaniment, register, rng, channel, velocity)
        elif role == "pad":
            notes += parts.accompaniment(song, spans, "sustain", REGISTERS["pad"], rng, channel, velocity)
        else:
            register = BASS_REGISTERS.get(program, REGISTERS["bass"])
            notes += parts.bass(song, spans, plan.bass_style, register, rng, channel, velocity)
    if plan.drum_style:
        programs[drums.DRUM_CHANNEL] = plan.kit
        notes += drums.drum_part(plan.drum_style, song.beats, song.bars, song.phrase_bars, plan.bpm, rng,
                                 base + ROLE_VELOCITY["drums"])
    return _humanize(notes, plan.bpm, rng, plan.swing), programs
