"""Captions for the composed demo data (v2): what plays, drums or none, tempo (words and BPM), key and
mode, mood, in 33 templates of six families, each slot filled with one of its synonyms.

The "request" family ("Play a ...", "Give me ...", "Can you make ...") is held out: it captions only
test clips (split `test_phrasing`), so a model trained on the rest can be asked the way people ask a
music generator and judged on phrasings it never saw.
"""

from __future__ import annotations

import random
import re

from ssmusic.data.demo_v2.styles import DRUM_KITS, GENRES, INSTRUMENTS
from ssmusic.data.demo_v2.theory import KEY_NAMES, tempo_word

HELD_OUT_FAMILY = "request"
TEMPO_SYNONYMS = {"slow": ("slow", "unhurried", "leisurely", "laid-back"),
                  "moderate": ("moderate", "mid-tempo", "medium-tempo", "moderately paced"),
                  "fast": ("fast", "lively", "upbeat", "brisk"),
                  "very fast": ("very fast", "rapid", "racing", "breakneck")}
# (mode, pace, dynamics) -> mood words; the first is the `mood` column
MOODS = {
    ("major", "slow", "soft"): ("peaceful", "calm", "serene", "tranquil"),
    ("major", "slow", "loud"): ("majestic", "stately", "grand", "noble"),
    ("major", "moderate", "soft"): ("warm", "tender", "relaxed", "easygoing"),
    ("major", "moderate", "loud"): ("bright", "confident", "cheerful", "sunny"),
    ("major", "fast", "soft"): ("playful", "light-hearted", "carefree", "bouncy"),
    ("major", "fast", "loud"): ("joyful", "energetic", "exuberant", "triumphant"),
    ("minor", "slow", "soft"): ("melancholic", "sad", "wistful", "mournful"),
    ("minor", "slow", "loud"): ("solemn", "brooding", "dark", "heavy-hearted"),
    ("minor", "moderate", "soft"): ("pensive", "nostalgic", "mysterious", "reflective"),
    ("minor", "moderate", "loud"): ("dramatic", "tense", "stormy", "urgent"),
    ("minor", "fast", "soft"): ("restless", "anxious", "uneasy", "nervous"),
    ("minor", "fast", "loud"): ("intense", "fierce", "driving", "furious"),
}
DYNAMICS_WORDS = {"soft": ("softly", "quietly", "gently"), "loud": ("loudly", "forcefully", "with full force")}
ACCOMPANIMENT_WORDS = {"block": ("{i} chords",), "arpeggio": ("arpeggiated {i}", "{i} arpeggios"),
                       "alberti": ("{i} broken chords",), "oompah": ("oom-pah {i}",), "strum": ("strummed {i}",),
                       "comp": ("comping {i}", "{i} comping"), "offbeat": ("off-beat {i} chords",),
                       "sustain": ("sustained {i}", "held {i} chords"), "power": ("{i} power chords",)}
COUNT_WORDS = {2: "duo", 3: "trio", 4: "quartet"}

TEMPLATES = {
    "sentence": (
        "A {mood} {genre} piece in {key} for {ens}, {drums_with}, {tempo} at {bpm} BPM.",
        "{Ens} {play} a {tempo} {genre} tune in {key} ({bpm} BPM), {drums_with}; the mood is {mood}.",
        "A {tempo}, {mood} piece in {key} at {bpm} BPM, played {dyn} by {ens} {drums_with}.",
        "{Tempo} {genre} music at {bpm} BPM in {key}: {ens}, {drums_short}. It sounds {mood}.",
        "This {mood} {genre} track in {key} features {ens} {drums_with} and moves at a {tempo} {bpm} BPM.",
        "In {key}, {ens} {play} something {mood} and {tempo} ({bpm} beats per minute), {drums_with}."),
    "ensemble": (
        "{Roles}, {drums_with}; {tempo}, {bpm} BPM, {key}, {mood}.",
        "{Lead} leads over {rest} {drums_with} in a {mood} {genre} piece, {key}, {bpm} BPM ({tempo}).",
        "{Group} {drums_with}, playing a {tempo} {bpm} BPM piece in {key} that feels {mood}.",
        "{Roles} in {key}, {drums_short}, {mood} and {tempo} at {bpm} BPM.",
        "Featuring {ens_list} {drums_with}: a {tempo} ({bpm} BPM) {genre} piece in {key}, {mood}.",
        "{Group} in {key}: {roles}, {drums_short}, {bpm} BPM, {tempo} and {mood}."),
    "technical": (
        "Instruments: {ens_list}. Drums: {yes_no}. Tempo: {bpm} BPM ({tempo}). Key: {key}. Mood: {mood}.",
        "{Genre}; {bpm} BPM, {tempo}; {key}; {ens_list}; {drums_short}; {mood}.",
        "{key}, {bpm} BPM, {meter} time: {ens} {drums_with}, {mood} and {tempo}.",
        "Tempo {bpm} BPM ({tempo}), key of {key}, {ens_list} {drums_with}, {mood} mood, played {dyn}.",
        "{bpm} BPM {tempo} {genre} music in {key}: {ens_list}, {drums_short}, {mood}."),
    "tags": (
        "{ens_tags}, {drums_tag}, {tempo}, {bpm} bpm, {key}, {mood}, {genre}",
        "{genre}, {mood}, {key}, {bpm} bpm, {tempo}, {ens_tags}, {drums_tag}",
        "{mood} {genre} | {ens_tags} | {drums_tag} | {tempo} {bpm} BPM | {key}",
        "tags: {ens_tags}; {drums_tag}; {tempo}; {bpm} BPM; {key}; {mood}",
        "{key} / {bpm} BPM / {tempo} / {ens_tags} / {drums_tag} / {mood}"),
    "mood": (
        "{Mood} and {tempo}: {ens} in {key} at {bpm} BPM, {drums_with}.",
        "Something {mood}: {ens}, {drums_short}, {tempo} {bpm} BPM, {key}.",
        "A {mood} mood: {tempo} {genre} music for {ens} in {key}, {bpm} BPM, {drums_with}.",
        "{Mood} {genre} music in {key}, played {dyn}. {Ens} {drums_with}, at a {tempo} {bpm} BPM.",
        "Feels {mood}: {ens} {drums_with}, {key}, {tempo} at {bpm} BPM."),
    "request": (
        "Play a {mood} {genre} piece in {key} for {ens}, {drums_with}, {tempo} at {bpm} BPM.",
        "Give me {ens} {drums_with}, something {mood} and {tempo} in {key}, around {bpm} BPM.",
        "I'd like a {tempo} {bpm} BPM tune in {key} with {ens}, {drums_short}, feeling {mood}.",
        "Can you make a {mood} {genre} track in {key} at {bpm} BPM? {Ens}, {drums_short}, {tempo}.",
        "Compose something {mood} for {ens} {drums_with}: {key}, {tempo}, {bpm} BPM.",
        "Write a {tempo} {genre} piece ({bpm} BPM) in {key} for {ens} {drums_with}; make it {mood}."),
}
TEMPLATE_IDS = [f"{family}-{i}" for family, shapes in TEMPLATES.items() for i in range(len(shapes))]


def pace(bpm: int) -> str:
    """The tempo class a mood is chosen by: slow, moderate or fast."""
    word = tempo_word(bpm)
    return "fast" if word == "very fast" else word


def mood_words(mode: str, bpm: int, dynamics: str) -> tuple[str, ...]:
    return MOODS[(mode, pace(bpm), dynamics)]


def template_for(split: str, rng: random.Random) -> str:
    """A template id: the held-out family for test_phrasing clips, any other family otherwise."""
    if split == "test_phrasing":
        return f"{HELD_OUT_FAMILY}-{rng.randrange(len(TEMPLATES[HELD_OUT_FAMILY]))}"
    return rng.choice([t for t in TEMPLATE_IDS if not t.startswith(HELD_OUT_FAMILY + "-")])


def spell_key(tonic: int, mode: str, rng: random.Random) -> str:
    """'A-flat major' as written in one of its usual spellings (A-flat, A flat, Ab, A♭)."""
    name = KEY_NAMES[mode][tonic % 12]
    if "-" in name:
        letter, accidental = name.split("-")
        name = rng.choice((name, f"{letter} {accidental}", letter + ("b" if accidental == "flat" else "#"),
                           letter + ("♭" if accidental == "flat" else "♯")))
    return f"{name} {mode}"


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _role_phrase(role: str, word: str, pattern: str | None, rng: random.Random) -> str:
    if role == "melody":
        return rng.choice(("a {i} melody", "a {i} lead", "a {i} tune")).format(i=word)
    if role == "accompaniment":
        return rng.choice(ACCOMPANIMENT_WORDS.get(pattern or "block", ("{i} chords",))).format(i=word)
    if role == "pad":
        return rng.choice(("a {i} pad", "sustained {i}", "{i} in the background")).format(i=word)
    walking = "walking " if pattern == "walking" else ""
    return rng.choice(("a {w}{i} line", "{w}{i}", "a {w}{i} bass line" if "bass" not in word else "a {w}{i}")
                      ).format(w=walking, i=word)


def ensemble_slots(parts: list[tuple[str, int]], patterns: dict[str, str | None], rng: random.Random) -> dict:
    """The ensemble in each of the forms the templates use: a plain list, roles, a group word, tags."""
    words = [rng.choice(INSTRUMENTS[program].words) for _, program in parts]
    if len(parts) == 1:
        solo = f"solo {words[0]}"
        return {"ens": solo, "ens_list": solo, "ens_tags": solo, "roles": f"{words[0]} alone",
                "group": f"a {words[0]} solo", "lead": words[0], "rest": "its own chords", "play": "plays"}
    roles = [_role_phrase(role, word, patterns.get(role), rng) for (role, _), word in zip(parts, words)]
    return {"ens": _and(words), "ens_list": _and(words), "ens_tags": ", ".join(words),
            "roles": roles[0] + " over " + _and(roles[1:]),
            "group": f"a {COUNT_WORDS[len(parts)]} of {_and(words)}", "lead": rng.choice(("a ", "the ")) + words[0],
            "rest": _and(roles[1:]), "play": "play"}


def drum_slots(kit: int | None, rng: random.Random) -> dict:
    if kit is None:
        return {"drums_with": rng.choice(("without drums", "with no drums", "without percussion", "no drums")),
                "drums_short": rng.choice(("no drums", "without drums", "drumless")),
                "drums_tag": rng.choice(("no drums", "drumless", "without drums")), "yes_no": "none"}
    word = rng.choice(DRUM_KITS[kit])
    return {"drums_with": rng.choice(("with ", "backed by ", "over ")) + word, "drums_short": word,
            "drums_tag": word.removeprefix("a ").removeprefix("an "), "yes_no": word.removeprefix("a ")}


def write_caption(template: str, attributes: dict, parts: list[tuple[str, int]], patterns: dict[str, str | None],
                  kit: int | None, rng: random.Random) -> str:
    """Fill `template` (an id of TEMPLATE_IDS) for one clip's attributes."""
    family, number = template.rsplit("-", 1)
    shape = TEMPLATES[family][int(number)]
    slots = {"mood": rng.choice(mood_words(attributes["mode"], attributes["tempo_bpm"], attributes["dynamics"])),
             "tempo": rng.choice(TEMPO_SYNONYMS[tempo_word(attributes["tempo_bpm"])]),
             "bpm": attributes["tempo_bpm"], "key": spell_key(attributes["tonic_pc"], attributes["mode"], rng),
             "genre": rng.choice(GENRES[attributes["genre"]].words), "meter": attributes["meter"],
             "dyn": rng.choice(DYNAMICS_WORDS[attributes["dynamics"]]),
             **ensemble_slots(parts, patterns, rng), **drum_slots(kit, rng)}
    for name in list(slots):
        value = str(slots[name])
        slots[name[0].upper() + name[1:]] = value[0].upper() + value[1:]
    text = shape.format(**slots)
    text = re.sub(r"\b([Aa]) (?=[aeiouAEIOU8])", r"\1n ", text)  # "a upright bass" -> "an upright bass"
    return text[0].upper() + text[1:] if family != "tags" else text
