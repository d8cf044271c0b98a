"""Keys, scales, chords and progressions for the composed demo data (v2).

Pitches are MIDI numbers; pitch classes 0..11 from C. A key is (tonic pitch class, "major" | "minor").
Minor keys use the natural minor scale, except that the dominant (V) chord and the melody over it
take the raised seventh (harmonic minor), as in common-practice and most popular music: that leading
tone is what tells a minor key from its relative major.
"""

from __future__ import annotations

from dataclasses import dataclass

SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
# conventional spelling of each key by tonic pitch class (the same as demo v1's)
KEY_NAMES = {"major": ("C", "D-flat", "D", "E-flat", "E", "F", "F-sharp", "G", "A-flat", "A", "B-flat", "B"),
             "minor": ("C", "C-sharp", "D", "E-flat", "E", "F", "F-sharp", "G", "G-sharp", "A", "B-flat", "B")}
# sharps (> 0) or flats (< 0) of each key's signature, as the MIDI key-signature event stores it
KEY_SIGNATURES = {"major": (0, -5, 2, -3, 4, -1, 6, 1, -4, 3, -2, 5),
                  "minor": (-3, 4, -1, -6, 1, -4, 3, -2, 5, 0, -5, 2)}

# Four-chord progressions as scale degrees (0 = I). All start on the tonic so the key is established.
PROGRESSIONS = {
    "major": {"I-V-vi-IV": (0, 4, 5, 3), "I-IV-V-I": (0, 3, 4, 0), "I-vi-IV-V": (0, 5, 3, 4),
              "I-IV-I-V": (0, 3, 0, 4), "I-ii-V-I": (0, 1, 4, 0), "I-iii-IV-V": (0, 2, 3, 4),
              "I-V-IV-V": (0, 4, 3, 4), "I-IV-vi-V": (0, 3, 5, 4), "I-vi-ii-V": (0, 5, 1, 4)},
    "minor": {"i-iv-V-i": (0, 3, 4, 0), "i-VI-III-VII": (0, 5, 2, 6), "i-VII-VI-V": (0, 6, 5, 4),
              "i-iv-VII-III": (0, 3, 6, 2), "i-VI-iv-V": (0, 5, 3, 4), "i-iv-i-V": (0, 3, 0, 4),
              "i-VI-VII-i": (0, 5, 6, 0), "i-ii-V-i": (0, 1, 4, 0), "i-VI-III-V": (0, 5, 2, 4)},
}
TEMPO_WORDS = ((80, "slow"), (110, "moderate"), (140, "fast"), (10_000, "very fast"))  # upper bound (exclusive), word


def key_name(tonic: int, mode: str) -> str:
    """'A-flat major', 'C-sharp minor'."""
    return f"{KEY_NAMES[mode][tonic % 12]} {mode}"


def tempo_word(bpm: float) -> str:
    return next(word for bound, word in TEMPO_WORDS if bpm < bound)


@dataclass(frozen=True)
class Chord:
    """A diatonic chord of a key: its root's scale degree (0..6) and pitch classes (root first)."""

    degree: int
    pitch_classes: tuple[int, ...]

    @property
    def root(self) -> int:
        return self.pitch_classes[0]


class Key:
    """Scale-degree arithmetic in one key. Degrees count scale steps from the tonic across octaves
    (7 = the tonic an octave up), so melodies move in steps of the scale, not semitones."""

    def __init__(self, tonic: int, mode: str) -> None:
        if mode not in SCALES:
            raise ValueError(f"mode: expected major or minor, got {mode!r}")
        self.tonic, self.mode, self.scale = tonic % 12, mode, SCALES[mode]

    @property
    def name(self) -> str:
        return key_name(self.tonic, self.mode)

    def raised_seventh(self, chord_degree: int) -> bool:
        """Minor keys raise the seventh over the dominant (V); VII stays the natural subtonic chord."""
        return self.mode == "minor" and chord_degree == 4

    def pitch_class(self, degree: int, chord_degree: int | None = None) -> int:
        pc = self.tonic + self.scale[degree % 7]
        if degree % 7 == 6 and chord_degree is not None and self.raised_seventh(chord_degree):
            pc += 1
        return pc % 12

    def pitch(self, degree: int, octave_base: int, chord_degree: int | None = None) -> int:
        """MIDI pitch of a degree counted from the tonic in the octave starting at `octave_base`
        (a MIDI C: 48, 60, ...)."""
        return octave_base + self.tonic + 12 * (degree // 7) + (
            self.pitch_class(degree, chord_degree) - self.tonic) % 12

    def chord(self, degree: int, seventh: bool = False) -> Chord:
        """The triad (or seventh chord) on a scale degree; in minor, V gets the raised seventh."""
        steps = (0, 2, 4, 6) if seventh else (0, 2, 4)
        return Chord(degree, tuple(self.pitch_class(degree + s, degree) for s in steps))

    def scale_pitch_classes(self) -> set[int]:
        """The key's pitch classes, with the raised seventh of minor (harmonic minor) included."""
        pcs = {(self.tonic + s) % 12 for s in self.scale}
        if self.mode == "minor":
            pcs.add((self.tonic + 11) % 12)
        return pcs


def voice(pitch_classes: tuple[int, ...], low: int, high: int, previous: list[int] | None = None) -> list[int]:
    """A close-position voicing of the chord within [low, high]: of all inversions that fit, the one
    whose mean pitch is nearest the previous voicing's (smooth voice leading), else nearest the middle."""
    candidates = []
    for bass in range(low, high + 1):
        if bass % 12 not in pitch_classes:
            continue
        notes, pitch = [bass], bass
        start = pitch_classes.index(bass % 12)
        for pc in pitch_classes[start + 1:] + pitch_classes[:start]:
            pitch += (pc - pitch) % 12 or 12
            notes.append(pitch)
        if notes[-1] <= high:
            candidates.append(notes)
    if not candidates:
        raise ValueError(f"no voicing of {pitch_classes} in [{low}, {high}]")
    centre = sum(previous) / len(previous) if previous else (low + high) / 2
    return min(candidates, key=lambda notes: abs(sum(notes) / len(notes) - centre))
