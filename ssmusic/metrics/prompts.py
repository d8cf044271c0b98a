"""What a prompt asks for, in terms the judges can check: a tempo (BPM), a key, and music-network tags.

A prompt that is a reference caption takes its tempo and key from the reference's captions.csv
columns (tempo_bpm, key), which hold the rendered values; any other prompt is read from its words
("... at 112 BPM", "in D minor"). Tags come from the words only, and only for tags the music network
has (MagnaTagATune's 50): a caption word is mapped to a tag when it names the same thing — "fiddle"
is a violin, "string ensemble" is strings — and never by association ("lively" is not "fast", a
church organ or a clarinet has no tag, "steel drums" are not a drum kit).
"""

from __future__ import annotations

import re

from ssmusic.metrics.key import parse_key

BPM_PATTERN = re.compile(r"\b(\d{2,3}(?:\.\d+)?)\s*(?:-\s*\d{2,3}\s*)?bpm\b", re.IGNORECASE)

# tag -> caption words naming it (regexes over the lower-cased prompt)
INSTRUMENT_WORDS = {
    "piano": r"\bpiano\b",
    "violin": r"\b(violins?|fiddles?)\b",
    "flute": r"\bflutes?\b",
    "guitar": r"\bguitars?\b",
    "harpsichord": r"\bharpsichords?\b",
    "choir": r"\b(choirs?|choral|chorus)\b",
    "strings": r"\b(strings|string (ensemble|section|orchestra|quartet))\b",
    "cello": r"\bcellos?\b",
    "harp": r"\bharps?\b",
    "sitar": r"\bsitars?\b",
    "drums": r"(?<!steel )\b(drums|drum kit|drum beat|drumbeat|drummer)\b",
}
TEMPO_WORDS = {"slow": r"\bslow(ly)?\b", "fast": r"\bfast\b"}
OPPOSITE = {"slow": "fast", "fast": "slow"}


def prompted_bpm(prompt: str, row: dict | None = None) -> float | None:
    """The prompted tempo: the reference row's tempo_bpm, else the first 'N BPM' (a range: its first number)."""
    if row and row.get("tempo_bpm") not in (None, ""):
        return float(row["tempo_bpm"])
    match = BPM_PATTERN.search(prompt or "")
    return float(match.group(1)) if match else None


def prompted_key(prompt: str, row: dict | None = None) -> tuple[int, str] | None:
    """(tonic pitch class, mode): the reference row's key column, else the first key the prompt names."""
    if row and row.get("key"):
        parsed = parse_key(row["key"])
        if parsed:
            return parsed
    return parse_key(prompt or "")


def prompted_tags(prompt: str) -> dict[str, list[str]]:
    """{'instruments': [MTT instrument tags named], 'tempo': [slow/fast named]}."""
    text = (prompt or "").lower()
    instruments = [tag for tag, pattern in INSTRUMENT_WORDS.items() if re.search(pattern, text)]
    tempo = [tag for tag, pattern in TEMPO_WORDS.items() if re.search(pattern, text)]
    return {"instruments": instruments, "tempo": tempo if len(tempo) == 1 else []}
