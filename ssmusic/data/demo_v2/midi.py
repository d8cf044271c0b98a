"""Notes -> timed MIDI events, written as a Standard MIDI File and played by the synthesizer.

One event list serves both: the .mid file a clip ships with and the audio rendered from it, so the
audio is the file (times are the file's ticks, converted once). The file is type 1: a first track
with tempo, time and key signatures, then one track per channel with its program, volume and notes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from ssmusic.data.demo_v2.compose import Note
from ssmusic.io.atomic import atomic_path

TICKS_PER_BEAT = 480


@dataclass(frozen=True)
class Event:
    tick: int
    status: int  # 0x90 note on, 0x80 note off, 0xC0 program change, 0xB0 control change (| channel)
    data1: int
    data2: int = 0

    @property
    def channel(self) -> int:
        return self.status & 0x0F

    @property
    def kind(self) -> int:
        return self.status & 0xF0


def events(notes: list[Note], programs: dict[int, int], volumes: dict[int, int], end_beat: float) -> list[Event]:
    """Channel setup at tick 0, then every note's on and off (offs first at equal ticks; a note
    ends where the same key is struck again), notes cut at `end_beat`."""
    out = []
    for channel in sorted(programs):
        out.append(Event(0, 0xC0 | channel, programs[channel]))
        out.append(Event(0, 0xB0 | channel, 7, volumes.get(channel, 100)))
    end = round(end_beat * TICKS_PER_BEAT)
    ordered = sorted(notes, key=lambda n: (n.channel, n.pitch, n.start))
    for i, note in enumerate(ordered):
        on = max(0, round(note.start * TICKS_PER_BEAT))
        off = min(end, round((note.start + note.length) * TICKS_PER_BEAT))
        following = ordered[i + 1] if i + 1 < len(ordered) else None
        if following is not None and (following.channel, following.pitch) == (note.channel, note.pitch):
            off = min(off, max(0, round(following.start * TICKS_PER_BEAT)))  # a re-struck key ends the last
        if on >= end or off <= on:
            continue
        velocity = max(1, min(127, note.velocity))
        out.append(Event(on, 0x90 | note.channel, note.pitch, velocity))
        out.append(Event(off, 0x80 | note.channel, note.pitch, 0))
    order = {0xC0: 0, 0xB0: 1, 0x80: 2, 0x90: 3}
    return sorted(out, key=lambda e: (e.tick, order[e.kind], e.channel, e.data1))


def _varlen(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes(reversed(out))


def _track(items: list[tuple[int, bytes]]) -> bytes:
    body, last = b"", 0
    for tick, message in items:
        body += _varlen(tick - last) + message
        last = tick
    body += _varlen(0) + b"\xff\x2f\x00"  # end of track
    return b"MTrk" + struct.pack(">I", len(body)) + body


def midi_bytes(timed: list[Event], bpm: float, beats_per_bar: int, key_signature: tuple[int, int]) -> bytes:
    """A type-1 Standard MIDI File. `key_signature`: (sharps > 0 or flats < 0, 0 major | 1 minor)."""
    tempo = round(60_000_000 / bpm)
    meta = [(0, b"\xff\x51\x03" + tempo.to_bytes(3, "big")),
            (0, bytes([0xFF, 0x58, 4, beats_per_bar, 2, 24, 8])),
            (0, b"\xff\x59\x02" + struct.pack(">bB", *key_signature))]
    tracks = [_track(meta)]
    for channel in sorted({e.channel for e in timed}):
        tracks.append(_track([(e.tick, bytes([e.status, e.data1] + ([] if e.kind == 0xC0 else [e.data2])))
                              for e in timed if e.channel == channel]))
    header = b"MThd" + struct.pack(">IHHH", 6, 1, len(tracks), TICKS_PER_BEAT)
    return header + b"".join(tracks)


def write_midi(path: str | Path, timed: list[Event], bpm: float, beats_per_bar: int,
               key_signature: tuple[int, int]) -> None:
    with atomic_path(Path(path)) as tmp:
        tmp.write_bytes(midi_bytes(timed, bpm, beats_per_bar, key_signature))
