"""The General MIDI timbres `ssmusic data demo` renders with (`--instruments`), and how a caption
names each: GM program -> (instrument, "played ..." phrase, sentence subject)."""

from __future__ import annotations

from ssmusic.errors import SsmusicError

INSTRUMENTS = {  # GM program -> (instrument, "played ..." phrase, sentence subject)
    0: ("piano", "played on solo piano", "A solo piano plays"),
    19: ("church organ", "played on a church organ", "A church organ plays"),
    48: ("strings", "played by a string ensemble", "A string ensemble plays"),
    73: ("flute", "played on the flute", "A flute plays"),
    24: ("nylon guitar", "played on a nylon-string guitar", "A nylon-string guitar plays"),
    52: ("choir", "sung by a choir", "A choir sings"),
    6: ("harpsichord", "played on a harpsichord", "A harpsichord plays"),
    71: ("clarinet", "played on the clarinet", "A clarinet plays"),
    40: ("violin", "played on the violin", "A violin plays"),
    11: ("vibraphone", "played on a vibraphone", "A vibraphone plays"),
}
# More General MIDI timbres for `--instruments`: none of them is in the default model's ten above, so
# a demo set rendered with them is music the default model has not heard (e.g. to measure fine-tuning).
MORE_INSTRUMENTS = {
    56: ("trumpet", "played on the trumpet", "A trumpet plays"),
    21: ("accordion", "played on an accordion", "An accordion plays"),
    114: ("steel drums", "played on steel drums", "Steel drums play"),
    105: ("banjo", "played on a banjo", "A banjo plays"),
    12: ("marimba", "played on a marimba", "A marimba plays"),
    68: ("oboe", "played on the oboe", "An oboe plays"),
    60: ("french horn", "played on the French horn", "A French horn plays"),
    65: ("alto saxophone", "played on an alto saxophone", "An alto saxophone plays"),
    57: ("trombone", "played on the trombone", "A trombone plays"),
    70: ("bassoon", "played on the bassoon", "A bassoon plays"),
    42: ("cello", "played on the cello", "A cello plays"),
    46: ("harp", "played on the harp", "A harp plays"),
    8: ("celesta", "played on a celesta", "A celesta plays"),
    10: ("music box", "played on a music box", "A music box plays"),
    13: ("xylophone", "played on a xylophone", "A xylophone plays"),
    22: ("harmonica", "played on a harmonica", "A harmonica plays"),
    104: ("sitar", "played on a sitar", "A sitar plays"),
    108: ("kalimba", "played on a kalimba", "A kalimba plays"),
    75: ("pan flute", "played on a pan flute", "A pan flute plays"),
    4: ("electric piano", "played on an electric piano", "An electric piano plays"),
    16: ("drawbar organ", "played on a drawbar organ", "A drawbar organ plays"),
    80: ("square synth lead", "played on a square-wave synth lead", "A square-wave synth lead plays"),
    81: ("sawtooth synth lead", "played on a sawtooth synth lead", "A sawtooth synth lead plays"),
}
ALL_INSTRUMENTS = {**INSTRUMENTS, **MORE_INSTRUMENTS}


def parse_instruments(text: str | None) -> list[int]:
    """'trumpet,banjo,12' -> GM programs (names from ALL_INSTRUMENTS, or program numbers in it);
    None or '' -> the default ten. Unknown names are refused, naming the known ones."""
    if not text:
        return list(INSTRUMENTS)
    by_name = {name: program for program, (name, _, _) in ALL_INSTRUMENTS.items()}
    programs = []
    for item in (part.strip().lower() for part in text.split(",")):
        program = int(item) if item.isdigit() else by_name.get(item)
        if program not in ALL_INSTRUMENTS:
            raise SsmusicError(f"--instruments: unknown instrument {item!r}; known: {', '.join(sorted(by_name))}")
        if program not in programs:
            programs.append(program)
    if not programs:
        raise SsmusicError("--instruments: expected a comma list of instruments, e.g. trumpet,banjo")
    return programs
