"""Demo data v2 end to end: every caption's attributes match the MIDI written (read back with
music21's independent MIDI parser) and the audio rendered from it is sound, not silence."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from ssmusic.data.demo import find_soundfont
from ssmusic.data.demo_v2.captions import HELD_OUT_FAMILY, TEMPO_SYNONYMS, mood_words
from ssmusic.data.demo_v2.plan import arrange, plan_clip
from ssmusic.data.demo_v2.styles import DRUM_KITS, INSTRUMENTS
from ssmusic.data.demo_v2.theory import KEY_SIGNATURES, Key
from ssmusic.errors import SsmusicError


def _renderable() -> bool:
    try:
        from ssmusic.data.demo_v2.synth import load_library

        load_library()
        find_soundfont()
        return True
    except SsmusicError:
        return False


needs_synth = pytest.mark.skipif(not _renderable(), reason="install.sh installs fluidsynth and FluidR3_GM")


def read_midi(path: Path) -> dict:
    """Tempo, signatures, programs and notes of a MIDI file, by music21's parser (not ours)."""
    from music21 import midi

    handle = midi.MidiFile()
    handle.open(str(path))
    handle.read()
    handle.close()
    out = {"tpq": handle.ticksPerQuarterNote, "programs": {}, "notes": []}
    for track in handle.tracks:
        tick, sounding = 0, {}
        for event in track.events:
            if isinstance(event, midi.DeltaTime):
                tick += event.time
            elif event.type == midi.MetaEvents.SET_TEMPO:
                out["tempo_us"] = int.from_bytes(event.data, "big")
            elif event.type == midi.MetaEvents.TIME_SIGNATURE:
                out["numerator"] = event.data[0]
            elif event.type == midi.MetaEvents.KEY_SIGNATURE:
                out["key_signature"] = (int.from_bytes(event.data[:1], "big", signed=True), event.data[1])
            elif event.type == midi.ChannelVoiceMessages.PROGRAM_CHANGE:
                out["programs"][event.channel] = event.data
            elif event.type == midi.ChannelVoiceMessages.NOTE_ON and event.velocity > 0:
                sounding[(event.channel, event.pitch)] = tick
            elif event.type in (midi.ChannelVoiceMessages.NOTE_OFF, midi.ChannelVoiceMessages.NOTE_ON):
                start = sounding.pop((event.channel, event.pitch))
                out["notes"].append((event.channel, event.pitch, start, tick))
    return out


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    if not _renderable():
        pytest.skip("install.sh installs fluidsynth and FluidR3_GM")
    from ssmusic.data.demo_v2.build import build

    out = tmp_path_factory.mktemp("demo2")
    info = build(out, clips=10, seconds=4.0, sample_rate=16000, seed=3, workers=1, progress=False)
    return out, info, list(csv.DictReader((out / "captions.csv").open()))


@needs_synth
def test_captions_match_the_midi_written(tiny_set):
    out, info, rows = tiny_set
    assert info["clips"] == len(rows) == 10 and info["skipped"] == 0
    assert {r["drums"] for r in rows} == {"yes", "no"} and len({r["n_instruments"] for r in rows}) >= 2
    for row in rows:
        midi = read_midi(out / row["midi"])
        bpm, caption = int(row["tempo_bpm"]), row["caption"]
        assert round(60e6 / midi["tempo_us"]) == bpm and str(bpm) in caption
        assert any(word in caption.lower() for word in TEMPO_SYNONYMS[row["tempo_word"]])
        assert midi["numerator"] == int(row["meter"][0])
        key = Key(int(row["tonic_pc"]), row["mode"])
        assert midi["key_signature"] == (KEY_SIGNATURES[row["mode"]][key.tonic], int(row["mode"] == "minor"))
        assert row["tonic"].split("-")[0] in caption and row["mode"] in caption
        pitched = [n for n in midi["notes"] if n[0] != 10]
        # every note is in the key, but for a walking bass's chromatic approach notes (channel 4)
        diatonic = [n for n in pitched if not (row["bass_style"] == "walking" and n[0] == 4)]
        assert {pitch % 12 for _, pitch, _, _ in diatonic} <= key.scale_pitch_classes()
        opening = {p % 12 for _, p, start, _ in pitched if start < midi["tpq"] / 2}
        assert key.tonic in opening  # it opens on the tonic chord
        programs = [int(p) for p in row["gm_programs"].split("|")]
        assert sorted(p for ch, p in midi["programs"].items() if ch != 10) == sorted(set(programs))
        for program in programs:
            assert any(word.lower() in caption.lower() for word in INSTRUMENTS[program].words), (program, caption)
        assert any(word in caption.lower() for word in mood_words(row["mode"], bpm, row["dynamics"]))
        drum_notes = [n for n in midi["notes"] if n[0] == 10]
        if row["drums"] == "yes":
            kit = midi["programs"][10]
            assert any(word in caption for word in DRUM_KITS[kit])
            # the kit follows the meter: a kick (or the jazz ride) on every bar's downbeat, at this tempo
            seconds_per_tick = 60 / bpm / midi["tpq"]
            onsets = np.array([start for _, pitch, start, _ in drum_notes if pitch in (36, 51)]) * seconds_per_tick
            bar_seconds = int(row["meter"][0]) * 60 / bpm
            for downbeat in np.arange(0, float(row["seconds"]) - 0.05, bar_seconds):
                assert np.abs(onsets - downbeat).min() < 0.012, (row["path"], downbeat)
        else:
            assert not drum_notes and 10 not in midi["programs"]
            assert any(word in caption for word in ("no drums", "without drums", "drumless", "without percussion"))


@needs_synth
def test_audio_is_music_not_silence(tiny_set):
    out, _, rows = tiny_set
    for row in rows:
        audio, rate = soundfile.read(out / row["path"])
        assert rate == 16000 and len(audio) == 64000
        rms = np.sqrt(np.mean(audio ** 2))
        assert rms > 0.01 and abs(20 * np.log10(rms) - float(row["rms_dbfs"])) < 0.1
        # it keeps sounding: no quarter second of the first 3.5 s is silent
        quarters = audio[: 14 * 4000].reshape(14, 4000)
        assert np.sqrt(np.mean(quarters ** 2, axis=1)).min() > 0.003
    loud = [float(r["rms_dbfs"]) for r in rows if r["dynamics"] == "loud"]
    soft = [float(r["rms_dbfs"]) for r in rows if r["dynamics"] == "soft"]
    assert loud and soft and min(loud) > max(soft)


@needs_synth
def test_rebuild_is_deterministic_and_resumes(tiny_set, tmp_path):
    out, info, _ = tiny_set
    from ssmusic.data.demo_v2.build import build

    before = (out / "captions.csv").read_bytes()
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("clip_*")}
    build(out, clips=10, seconds=4.0, sample_rate=16000, seed=3, workers=1, progress=False)
    assert (out / "captions.csv").read_bytes() == before
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("clip_*")} == mtimes
    # a fresh build of the first clips, in two processes, writes the same audio and MIDI
    build(tmp_path, clips=3, seconds=4.0, sample_rate=16000, seed=3, workers=2, progress=False)
    for name in ("clip_00000.wav", "clip_00002.mid"):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes()
    assert json.loads((out / "dataset.json").read_text())["contents"]["keys"] >= 5


@needs_synth
def test_the_synth_resets_between_clips():
    from ssmusic.data.demo_v2.midi import events
    from ssmusic.data.demo_v2.plan import VOLUMES
    from ssmusic.data.demo_v2.synth import Synth

    synth = Synth(find_soundfont(), 16000)
    try:
        clips = []
        for index in (0, 1, 0):
            plan = plan_clip(index, 5, 2.0, 16000)
            notes, programs = arrange(plan)
            clips.append(synth.render(events(notes, programs, VOLUMES, 2 * plan.bpm / 60), plan.bpm, 32000))
    finally:
        synth.close()
    assert np.array_equal(clips[0], clips[2]) and not np.array_equal(clips[0], clips[1])


def test_held_out_phrasings_only_caption_test_clips():
    plans = [plan_clip(i, 0, 10.0, 22050) for i in range(1500)]
    families = {}
    for plan in plans:
        families.setdefault(plan.split, set()).add(plan.template.rsplit("-", 1)[0])
    assert families["test_phrasing"] == {HELD_OUT_FAMILY}
    for split in ("train", "valid", "test"):
        assert HELD_OUT_FAMILY not in families[split] and len(families[split]) == 5
    counts = {s: sum(p.split == s for p in plans) for s in families}
    assert counts["train"] > 0.85 * len(plans) and min(counts.values()) >= 25


def test_plans_are_seeded_per_clip():
    assert plan_clip(7, 0, 10.0, 22050) == plan_clip(7, 0, 10.0, 22050) != plan_clip(7, 1, 10.0, 22050)
    assert arrange(plan_clip(7, 0, 10.0, 22050)) == arrange(plan_clip(7, 0, 10.0, 22050))
    plans = [plan_clip(i, 0, 10.0, 22050) for i in range(600)]
    assert len({(p.tonic, p.mode) for p in plans}) == 24
    assert min(p.bpm for p in plans) < 55 and max(p.bpm for p in plans) > 175
    assert {p.dynamics for p in plans} == {"soft", "loud"} and {p.beats for p in plans} == {3, 4}
    shares = np.mean([p.drum_style is not None for p in plans])
    assert 0.35 < shares < 0.75
    assert {len(p.parts) for p in plans} == {1, 2, 3, 4}


def test_cli_versions(tmp_path, capsys):
    from ssmusic.cli import build_parser, main

    assert build_parser().parse_args(["data", "demo", "out"]).version == 2
    assert main(["data", "demo", str(tmp_path / "x"), "--instruments", "trumpet"]) == 2
    assert "--version 1" in capsys.readouterr().err
    if shutil.which("fluidsynth"):
        assert main(["data", "demo", str(tmp_path / "y"), "--version", "1", "--soundfont", str(tmp_path / "no.sf2")]) == 2
        assert "no.sf2: file not found" in capsys.readouterr().err
    assert main(["data", "demo", str(tmp_path / "z"), "--clips", "0"]) == 2
