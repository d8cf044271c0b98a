"""Playing MIDI events through libfluidsynth in-process (ctypes), one SoundFont load per process.

Starting the fluidsynth program per clip (demo v1) reloads the 142 MB FluidR3 SoundFont from disk
each time; here a process keeps it loaded and renders each clip by advancing a synthesizer
sample-exactly from event to event. The library ships with the Debian fluidsynth package.
"""

from __future__ import annotations

import ctypes
import ctypes.util

import numpy as np

from ssmusic.data.demo_v2.midi import TICKS_PER_BEAT, Event
from ssmusic.errors import SsmusicError

_P, _I, _D, _S = ctypes.c_void_p, ctypes.c_int, ctypes.c_double, ctypes.c_char_p
SIGNATURES = {  # name: (restype, argtypes)
    "new_fluid_settings": (_P, []), "delete_fluid_settings": (None, [_P]),
    "fluid_settings_setnum": (_I, [_P, _S, _D]), "fluid_settings_setint": (_I, [_P, _S, _I]),
    "new_fluid_synth": (_P, [_P]), "delete_fluid_synth": (None, [_P]),
    "fluid_synth_sfload": (_I, [_P, _S, _I]),
    "fluid_synth_noteon": (_I, [_P, _I, _I, _I]), "fluid_synth_noteoff": (_I, [_P, _I, _I]),
    "fluid_synth_program_change": (_I, [_P, _I, _I]), "fluid_synth_cc": (_I, [_P, _I, _I, _I]),
    "fluid_synth_write_float": (_I, [_P, _I, _P, _I, _I, _P, _I, _I]),
}


def load_library() -> ctypes.CDLL:
    name = ctypes.util.find_library("fluidsynth") or "libfluidsynth.so.3"
    try:
        lib = ctypes.CDLL(name)
    except OSError as err:
        raise SsmusicError(f"libfluidsynth not found ({err}): install the Debian package fluidsynth "
                           "(apt-get install fluidsynth, done by install.sh)") from err
    for function, (restype, argtypes) in SIGNATURES.items():
        getattr(lib, function).restype = restype
        getattr(lib, function).argtypes = argtypes
    return lib


class Synth:
    """A General MIDI synthesizer for one SoundFont; render() plays one clip's events.

    Each clip gets a fresh synthesizer: fluid_synth_system_reset leaves reverb, chorus and voice
    state behind (a clip rendered after another differed from the same clip rendered first, by up
    to -5 dB of the clip's peak at its start), so reusing one would make a clip depend on the clip
    before it. A second synthesizer holds the SoundFont all along, so each fresh one finds its
    samples in fluidsynth's sample cache (~0.15 s instead of ~0.45 s to load)."""

    def __init__(self, soundfont: str, sample_rate: int) -> None:
        self.lib = load_library()
        self.soundfont, self.sample_rate = soundfont, sample_rate
        self.settings = self.lib.new_fluid_settings()
        self.lib.fluid_settings_setnum(self.settings, b"synth.sample-rate", float(sample_rate))
        self.lib.fluid_settings_setint(self.settings, b"synth.cpu-cores", 1)
        self.holder = self._new_synth()

    def _new_synth(self) -> int:
        synth = self.lib.new_fluid_synth(self.settings)
        if not synth or self.lib.fluid_synth_sfload(synth, self.soundfont.encode(), 1) < 0:
            if synth:
                self.lib.delete_fluid_synth(synth)
            raise SsmusicError(f"{self.soundfont}: fluidsynth cannot load this SoundFont")
        return synth

    def close(self) -> None:
        if getattr(self, "holder", None):
            self.lib.delete_fluid_synth(self.holder)
            self.holder = None
        if getattr(self, "settings", None):
            self.lib.delete_fluid_settings(self.settings)
            self.settings = None

    def _send(self, synth: int, event: Event) -> None:
        if event.kind == 0x90:
            self.lib.fluid_synth_noteon(synth, event.channel, event.data1, event.data2)
        elif event.kind == 0x80:
            self.lib.fluid_synth_noteoff(synth, event.channel, event.data1)
        elif event.kind == 0xC0:
            self.lib.fluid_synth_program_change(synth, event.channel, event.data1)
        elif event.kind == 0xB0:
            self.lib.fluid_synth_cc(synth, event.channel, event.data1, event.data2)

    def render(self, timed: list[Event], bpm: float, samples: int) -> np.ndarray:
        """The events at `bpm` -> `samples` of mono float32 audio (stereo output averaged), from a
        fresh synthesizer, so a clip sounds the same whatever was rendered before it."""
        synth = self._new_synth()
        try:
            left = np.zeros(samples, np.float32)
            right = np.zeros(samples, np.float32)
            samples_per_tick = 60.0 / bpm / TICKS_PER_BEAT * self.sample_rate
            position = 0
            for event in timed:
                at = min(samples, int(round(event.tick * samples_per_tick)))
                if at > position:
                    self._write(synth, left, right, position, at)
                    position = at
                if position >= samples:
                    break
                self._send(synth, event)
            if position < samples:
                self._write(synth, left, right, position, samples)
        finally:
            self.lib.delete_fluid_synth(synth)
        return (left + right) / 2

    def _write(self, synth: int, left: np.ndarray, right: np.ndarray, start: int, end: int) -> None:
        # fluid_synth_write_float(synth, n, left buffer, offset, stride, right buffer, offset, stride)
        self.lib.fluid_synth_write_float(synth, end - start, left.ctypes.data, start, 1, right.ctypes.data, start, 1)
