"""Demo data v2's pieces without rendering: theory, composition, drums, MIDI events, captions."""

import random
import re

import pytest

from ssmusic.data.demo_v2.captions import (HELD_OUT_FAMILY, TEMPLATE_IDS, TEMPLATES, TEMPO_SYNONYMS, mood_words,
                                           spell_key)
from ssmusic.data.demo_v2.compose import Song, harmony, melody
from ssmusic.data.demo_v2.drums import CRASH, DRUM_CHANNEL, KICK, SNARE, drum_part
from ssmusic.data.demo_v2.midi import events
from ssmusic.data.demo_v2.plan import plan_clip
from ssmusic.data.demo_v2.styles import DRUM_KITS, INSTRUMENTS
from ssmusic.data.demo_v2.theory import KEY_NAMES, KEY_SIGNATURES, PROGRESSIONS, Key, voice
from ssmusic.data.instruments import ALL_INSTRUMENTS


def test_key_names_and_signatures_agree_with_music21():
    from music21 import key, pitch

    for mode in ("major", "minor"):
        for pc in range(12):
            name = KEY_NAMES[mode][pc].replace("-flat", "-").replace("-sharp", "#")
            assert pitch.Pitch(name).pitchClass == pc
            assert key.Key(name if mode == "major" else name.lower(), mode).sharps == KEY_SIGNATURES[mode][pc]


def test_chords_of_a_key():
    a_minor, c_major = Key(9, "minor"), Key(0, "major")
    assert a_minor.chord(4).pitch_classes == (4, 8, 11)  # V: E G-sharp B, the raised seventh
    assert a_minor.chord(6).pitch_classes == (7, 11, 2)  # VII: G B D, the natural subtonic
    assert a_minor.chord(0).pitch_classes == (9, 0, 4) and c_major.chord(0, seventh=True).pitch_classes == (0, 4, 7, 11)
    assert a_minor.scale_pitch_classes() == {9, 11, 0, 2, 4, 5, 7, 8}
    assert c_major.pitch(9, 48) == 64 and a_minor.pitch(6, 48, chord_degree=4) == 68  # G-sharp over V


def test_voicing_moves_smoothly_and_stays_in_register():
    previous = voice((0, 4, 7), 50, 74)
    for chord in ((5, 9, 0), (7, 11, 2), (0, 4, 7), (9, 0, 4)):
        notes = voice(chord, 50, 74, previous)
        assert 50 <= min(notes) and max(notes) <= 74 and max(notes) - min(notes) < 12
        assert abs(sum(notes) / 3 - sum(previous) / 3) <= 4  # the nearest inversion, not a jump
        previous = notes
    with pytest.raises(ValueError):
        voice((0, 4, 7), 60, 62)


def test_phrase_pairs_close_on_the_tonic():
    song = Song(Key(2, "major"), 120, 4, 9, "I-V-vi-IV")
    spans = harmony(song)
    assert [s.chord.degree for s in spans[:8]] == [0, 4, 5, 3, 0, 4, 4, 0]
    assert [s.cadence for s in spans[:8]] == ["", "", "", "half", "", "", "", "authentic"]
    slow = Song(Key(2, "major"), 60, 4, 3, "I-V-vi-IV", chords_per_bar=2)
    assert [s.start for s in harmony(slow)[:3]] == [0, 2, 4] and slow.phrase_bars == 2


@pytest.mark.parametrize("seed", range(6))
def test_melodies_move_and_land_on_chord_tones(seed):
    rng = random.Random(seed)
    key = Key(rng.randrange(12), rng.choice(("major", "minor")))
    bpm, beats = rng.randint(50, 180), rng.choice((3, 4))
    song = Song(key, bpm, beats, 8, rng.choice(sorted(PROGRESSIONS[key.mode])), 2 if beats == 4 and bpm < 80 else 1)
    spans = harmony(song)
    notes = melody(song, spans, rng, (60, 84), 0, 90)
    assert all(60 <= n.pitch <= 84 for n in notes)
    for note in notes:
        if note.start % beats == 0:  # every downbeat note is a tone of its chord
            span = next(s for s in spans if s.start <= note.start < s.start + s.length)
            assert note.pitch % 12 in span.chord.pitch_classes
    pitches = [n.pitch for n in notes]
    assert len(set(pitches)) >= 4
    longest, run = 1, 1
    for a, b in zip(pitches, pitches[1:]):
        run = run + 1 if a == b else 1
        longest = max(longest, run)
    assert longest <= 3  # a third repeat only where a cadence lands on the note just sung twice
    seconds = 8 * beats * 60 / bpm
    assert 0.5 <= len(notes) / seconds <= 8


def test_drums_follow_the_meter():
    rng = random.Random(0)
    waltz = drum_part("pop", 3, 4, 4, 100, rng, 90)
    kicks = sorted(n.start for n in waltz if n.pitch == KICK)
    assert kicks == [0, 3, 6, 9] and all(n.channel == DRUM_CHANNEL for n in waltz)
    rock = drum_part("rock", 4, 4, 4, 120, rng, 90)
    snares = sorted(n.start for n in rock if n.pitch == SNARE and n.start < 12)
    assert snares == [1, 3, 5, 7, 9, 11]  # backbeat on 2 and 4 until the fill in the last bar
    assert [n.start for n in rock if n.pitch == CRASH] == [0]
    fill = [n for n in rock if n.start >= 15]
    assert len(fill) == 4 and all(n.pitch != KICK for n in fill)  # sixteenths of snare and toms


def test_events_restrike_a_key_and_stop_at_the_end():
    from ssmusic.data.demo_v2.compose import Note

    timed = events([Note(0, 2, 60, 90, 0), Note(1, 1, 60, 80, 0), Note(3.5, 2, 62, 70, 0)], {0: 40}, {0: 100}, 4)
    notes = [(e.tick, e.kind, e.data1) for e in timed if e.kind in (0x80, 0x90)]
    assert notes == [(0, 0x90, 60), (480, 0x80, 60), (480, 0x90, 60), (960, 0x80, 60), (1680, 0x90, 62),
                     (1920, 0x80, 62)]
    assert [(e.kind, e.data1) for e in timed[:2]] == [(0xC0, 40), (0xB0, 7)]


def test_templates_families_and_held_out_phrasings():
    assert len(TEMPLATE_IDS) >= 30 and all(len(shapes) >= 5 for shapes in TEMPLATES.values())
    assert HELD_OUT_FAMILY in TEMPLATES and len(TEMPLATES) >= 5
    spellings = {spell_key(8, "major", random.Random(i)) for i in range(40)}
    assert spellings == {"A-flat major", "A flat major", "Ab major", "A♭ major"}
    assert spell_key(0, "minor", random.Random(0)) == "C minor"


def test_instrument_names_agree_with_demo_v1_and_leave_some_unheard():
    for program, instrument in INSTRUMENTS.items():
        if program in ALL_INSTRUMENTS:
            assert instrument.name == ALL_INSTRUMENTS[program][0]
    assert INSTRUMENTS[40].words[:2] == ("violin", "fiddle") and "keys" in INSTRUMENTS[0].words
    for unheard in (114, 105, 104, 108, 10, 8, 13, 22):  # steel drums, banjo, sitar, kalimba, ...
        assert unheard in ALL_INSTRUMENTS and unheard not in INSTRUMENTS


def test_captions_name_every_attribute():
    from ssmusic.data.demo_v2.build import row

    for index in range(300):
        plan = plan_clip(index, 1, 10.0, 22050)
        caption = row(plan, 0.1)["caption"]
        text = caption.lower()
        assert str(plan.bpm) in caption and plan.mode in caption
        assert any(w in text for w in TEMPO_SYNONYMS[row(plan, 0.1)["tempo_word"]])
        assert KEY_NAMES[plan.mode][plan.tonic].split("-")[0] in caption
        assert any(w in text for w in mood_words(plan.mode, plan.bpm, plan.dynamics))
        for _, program in plan.parts:
            assert any(w.lower() in text for w in INSTRUMENTS[program].words), caption
        if plan.kit is None:
            assert re.search(r"no drums|without drums|drumless|without percussion|drums: none", text), caption
        else:
            assert any(w.lower().removeprefix("a ") in text for w in DRUM_KITS[plan.kit]), caption
        assert not re.search(r"\ba [aeiou]", text), caption  # articles agree
