"""The instruments, genres and ensembles of the composed demo data (v2).

An ensemble is drawn within a genre, so the instruments belong together (a fiddle with an acoustic
guitar and an upright bass, a synth lead with a pad and a drum machine), the way real bands are
formed. Each instrument has the words a caption may call it by ("fiddle" for the violin, "keys" for
the piano); the first is its canonical name (the `instruments` column), which is demo v1's name
where v1 has the instrument.

Left out on purpose: steel drums, banjo, sitar, kalimba, music box, celesta, xylophone and
harmonica stay unheard by a model trained on this data, so `ssmusic data demo --version 1
--instruments ...` can still render music it has never heard (the fine-tuning demonstration).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Instrument:
    program: int  # General MIDI program, 0-based
    words: tuple[str, ...]  # what a caption may call it; the first is the canonical name
    melody: tuple[int, int]  # MIDI range when it carries the melody

    @property
    def name(self) -> str:
        return self.words[0]


def _table(*rows: tuple) -> dict[int, Instrument]:
    return {program: Instrument(program, words, melody) for program, words, melody in rows}


INSTRUMENTS = _table(
    (0, ("piano", "keys", "acoustic piano", "grand piano"), (60, 84)),
    (4, ("electric piano", "e-piano", "Rhodes-style electric piano"), (60, 84)),
    (6, ("harpsichord",), (60, 84)),
    (11, ("vibraphone", "vibes"), (60, 84)),
    (12, ("marimba",), (60, 84)),
    (16, ("drawbar organ", "organ", "Hammond-style organ"), (60, 84)),
    (19, ("church organ", "pipe organ"), (60, 84)),
    (21, ("accordion", "squeezebox"), (60, 81)),
    (24, ("nylon guitar", "nylon-string guitar", "classical guitar", "Spanish guitar"), (52, 76)),
    (25, ("acoustic guitar", "steel-string guitar"), (52, 76)),
    (26, ("jazz guitar", "hollow-body electric guitar"), (52, 76)),
    (27, ("electric guitar", "clean electric guitar"), (55, 79)),
    (29, ("overdriven guitar", "overdriven electric guitar", "crunchy electric guitar"), (55, 79)),
    (30, ("distorted guitar", "distortion guitar", "heavy electric guitar"), (52, 76)),
    (32, ("upright bass", "double bass", "acoustic bass"), (40, 60)),
    (33, ("electric bass", "bass guitar", "electric bass guitar"), (40, 60)),
    (38, ("synth bass", "synthesizer bass"), (40, 60)),
    (40, ("violin", "fiddle"), (62, 88)),
    (42, ("cello", "violoncello"), (48, 72)),
    (46, ("harp",), (60, 84)),
    (48, ("strings", "string section", "string ensemble"), (60, 84)),
    (52, ("choir", "choir voices", "vocal ensemble"), (60, 79)),
    (56, ("trumpet",), (58, 82)),
    (58, ("tuba",), (36, 55)),
    (60, ("french horn", "French horn", "horn"), (53, 74)),
    (65, ("alto saxophone", "alto sax", "sax"), (58, 80)),
    (66, ("tenor saxophone", "tenor sax"), (52, 74)),
    (68, ("oboe",), (60, 84)),
    (70, ("bassoon",), (46, 67)),
    (71, ("clarinet",), (55, 82)),
    (73, ("flute",), (64, 91)),
    (75, ("pan flute",), (62, 86)),
    (80, ("square synth lead", "square-wave synth lead", "chiptune lead"), (60, 84)),
    (81, ("sawtooth synth lead", "synth lead", "saw lead"), (60, 84)),
    (89, ("synth pad", "warm synth pad", "pad"), (60, 84)),
    (90, ("polysynth", "synth chords"), (60, 84)),
)

# Registers the accompaniment, pad and bass parts are voiced in (MIDI, inclusive)
REGISTERS = {"accompaniment": (50, 74), "pad": (55, 79), "bass": (28, 50)}
# bass instruments that do not reach down to a bass guitar's E1
BASS_REGISTERS = {42: (36, 55), 58: (31, 50), 70: (34, 53)}

# General MIDI drum kits (programs on channel 10) and what a caption may call each
DRUM_KITS = {0: ("drums", "a drum kit", "a full drum kit"), 8: ("drums", "a drum kit", "room drums"),
             16: ("drums", "big rock drums", "a powerful drum kit"), 24: ("electronic drums", "a drum machine"),
             25: ("808 drums", "a drum machine", "electronic drums"), 32: ("jazz drums", "a jazz drum kit", "drums"),
             40: ("brushed drums", "drums played with brushes", "brushes")}
KIT_NAMES = {0: "standard", 8: "room", 16: "power", 24: "electronic", 25: "808", 32: "jazz", 40: "brush"}


@dataclass(frozen=True)
class Genre:
    name: str
    words: tuple[str, ...]  # how a caption names the style
    bpm: tuple[int, int]  # the tempos it is played at
    meters: tuple[tuple[int, float], ...]  # (beats per bar, weight)
    melody: tuple[int, ...]  # GM programs that may carry the melody
    accompaniment: dict[int, tuple[str, ...]]  # program -> accompaniment patterns it plays
    pad: tuple[int, ...]
    bass: tuple[int, ...]
    bass_styles: tuple[str, ...]
    drums: float  # share of clips with a drum kit
    drum_styles: tuple[str, ...]  # 4/4 styles; 3/4 always plays a waltz (jazz: a jazz waltz)
    kits: tuple[int, ...]
    sevenths: bool = False  # seventh chords in the accompaniment
    swing: float = 0.0  # share of clips with swung eighths


GENRES = {g.name: g for g in (
    Genre("classical", ("classical", "chamber", "classical-style"), (50, 160), ((4, 0.6), (3, 0.4)),
          (40, 73, 71, 68, 42, 60, 0, 6),
          {0: ("alberti", "arpeggio", "block"), 6: ("arpeggio", "block"), 46: ("arpeggio",), 48: ("sustain",),
           24: ("arpeggio",)},
          (48, 19, 52), (42, 70), ("root", "root_fifth"), 0.0, (), ()),
    Genre("jazz", ("jazz", "jazzy", "jazz combo"), (60, 180), ((4, 0.8), (3, 0.2)),
          (65, 66, 56, 11, 71, 0, 26),
          {0: ("comp",), 4: ("comp", "sustain"), 26: ("comp",), 11: ("comp",)},
          (48,), (32,), ("walking",), 0.8, ("jazz",), (32, 40), sevenths=True, swing=0.7),
    Genre("folk", ("folk", "folky", "acoustic folk"), (70, 170), ((4, 0.6), (3, 0.4)),
          (40, 73, 21, 75, 71, 25),
          {25: ("strum", "arpeggio"), 24: ("strum", "arpeggio"), 21: ("oompah",), 0: ("oompah", "block"),
           46: ("arpeggio",)},
          (48, 21), (32, 58, 42), ("root_fifth", "root"), 0.35, ("folk",), (40, 8)),
    Genre("pop", ("pop", "pop song", "pop-style"), (60, 140), ((4, 0.9), (3, 0.1)),
          (0, 65, 56, 73, 40, 27, 12, 4),
          {0: ("block", "arpeggio", "offbeat"), 4: ("block", "offbeat"), 25: ("strum",), 27: ("arpeggio", "strum"),
           48: ("sustain",)},
          (48, 89, 52), (33,), ("eighths", "syncopated", "root_fifth"), 0.75, ("pop", "ballad"), (0, 8)),
    Genre("rock", ("rock", "rock band", "classic rock"), (90, 180), ((4, 1.0),),
          (29, 30, 16, 0, 65),
          {30: ("power",), 29: ("power",), 16: ("block", "sustain"), 0: ("block",)},
          (16, 48), (33,), ("eighths", "root_fifth"), 0.95, ("rock",), (0, 16, 8)),
    Genre("electronic", ("electronic", "synth-pop", "electronic dance"), (70, 150), ((4, 1.0),),
          (80, 81, 4, 11),
          {89: ("sustain",), 90: ("offbeat", "block"), 4: ("offbeat", "arpeggio"), 81: ("arpeggio",)},
          (89, 52), (38,), ("octaves", "syncopated", "eighths"), 0.95, ("four_on_floor", "pop"), (24, 25)),
)}
ROLES = ("melody", "accompaniment", "pad", "bass")
# how many instruments play, and which roles they take (a solo instrument plays every part itself)
ENSEMBLE_SIZES = ((1, 0.1, ("melody",)), (2, 0.25, ("melody", "accompaniment")), (2, 0.1, ("melody", "bass")),
                  (3, 0.3, ("melody", "accompaniment", "bass")), (4, 0.25, ("melody", "accompaniment", "pad", "bass")))
# instruments that can play a whole piece alone (melody over their own chords and bass)
SOLO = {0: "alberti", 4: "block", 6: "arpeggio", 24: "arpeggio", 25: "arpeggio", 26: "comp", 46: "arpeggio",
        16: "block", 19: "block", 21: "oompah", 11: "arpeggio", 12: "arpeggio"}


def genres_for(bpm: int, beats: int | None = None) -> list[str]:
    """The genres played at this tempo (and meter)."""
    return [g.name for g in GENRES.values() if g.bpm[0] <= bpm <= g.bpm[1]
            and (beats is None or any(b == beats for b, _ in g.meters))]
