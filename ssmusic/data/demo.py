"""`ssmusic data demo`: a real, captioned, offline music dataset.

Real compositions from music21's bundled corpus (Bach chorales, fiddle tunes from Ryan's Mammoth
Collection and O'Neill's Music of Ireland, Essen folk songs, Palestrina masses, Monteverdi
madrigals, Trecento pieces) rendered through FluidSynth with a General MIDI SoundFont. Each clip
varies what a caption can name: the piece, the instrument (GM program), the tempo and the key
(transposition). Captions are written from the score's real metadata and those choices.

Every random choice is drawn up front from `--seed`, so the same seed gives the same files; splits
are by piece, so no piece appears in two splits. Rendering is resumable (finished clips are kept).
"""

from __future__ import annotations

import functools
import random
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ssmusic.io.atomic import write_json_atomic
from ssmusic.data.captions import CAPTIONS_FILE, write_csv
from ssmusic.errors import SsmusicError
from ssmusic.data.instruments import ALL_INSTRUMENTS, INSTRUMENTS, parse_instruments

SOUNDFONT_PATHS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2",
                   "/usr/share/soundfonts/FluidR3_GM.sf2", "/usr/share/soundfonts/default.sf2")

# (corpus folder, how the caption names it, composer, quarter-note BPM range, sampling weight)
COLLECTIONS = {
    "bach": ("Bach chorale", "Johann Sebastian Bach", (56, 96), 0.30),
    "ryansMammoth": ("fiddle tune from Ryan's Mammoth Collection", "traditional", (96, 160), 0.22),
    "oneills1850": ("Irish tune from O'Neill's Music of Ireland", "traditional", (96, 160), 0.08),
    "essenFolksong": ("German folk song", "traditional", (80, 132), 0.10),
    "palestrina": ("Renaissance mass movement by Palestrina", "Giovanni Pierluigi da Palestrina", (96, 144), 0.18),
    "monteverdi": ("Monteverdi madrigal", "Claudio Monteverdi", (80, 132), 0.06),
    "trecento": ("fourteenth-century Italian piece", "Trecento composers", (84, 132), 0.06),
}
OPUS_FILES = {"essenFolksong": ("altdeu10.abc", "altdeu20.abc"), "oneills1850": ("0001-0050.abc", "0051-0100.abc")}
TITLED = ("ryansMammoth", "oneills1850", "essenFolksong")  # collections whose titles are real titles
# conventional spelling of each key by pitch class (no E-sharp minor)
MAJOR = ("C", "D-flat", "D", "E-flat", "E", "F", "F-sharp", "G", "A-flat", "A", "B-flat", "B")
MINOR = ("C", "C-sharp", "D", "E-flat", "E", "F", "F-sharp", "G", "G-sharp", "A", "B-flat", "B")
DANCES = ("reel", "jig", "hornpipe", "strathspey", "waltz", "march", "polka", "clog", "schottische",
          "quickstep", "fling", "set dance", "slide", "air")


@dataclass
class Clip:
    index: int
    collection: str
    source: str  # corpus path relative to the corpus root
    number: int  # score number inside an opus file (-1 for single-score files)
    split: str
    program: int
    bpm: int
    transpose: int
    seconds: float
    sample_rate: int

    @property
    def piece_id(self) -> str:
        return self.source + ("" if self.number < 0 else f"#{self.number}")

    @property
    def filename(self) -> str:
        return f"clip_{self.index:05d}.wav"


def find_soundfont(path: str | None = None) -> str:
    if path:
        if not Path(path).is_file():
            raise SsmusicError(f"--soundfont {path}: file not found")
        return path
    for candidate in SOUNDFONT_PATHS:
        if Path(candidate).is_file():
            return candidate
    raise SsmusicError("no General MIDI SoundFont found: install the Debian package fluid-soundfont-gm "
                       "(apt-get install fluid-soundfont-gm, done by install.sh) or pass --soundfont FILE")


def check_fluidsynth() -> str:
    binary = shutil.which("fluidsynth")
    if binary is None:
        raise SsmusicError("fluidsynth is not installed: install the Debian package fluidsynth "
                           "(apt-get install fluidsynth, done by install.sh)")
    return binary


def candidate_pieces() -> list[tuple[str, str, int]]:
    """(collection, corpus path, number) for every usable piece, in a fixed order."""
    from music21 import common, corpus

    root = Path(common.getCorpusFilePath())
    pieces = []
    for collection in COLLECTIONS:
        paths = sorted(p for p in corpus.getPaths() if f"/{collection}/" in str(p)
                       and p.suffix in (".mxl", ".xml", ".krn", ".abc"))
        if collection in OPUS_FILES:
            for name in OPUS_FILES[collection]:
                for path in paths:
                    if path.name == name:
                        count = len(_parse(str(path)).scores)
                        pieces += [(collection, str(path.relative_to(root)), n) for n in range(count)]
        else:
            pieces += [(collection, str(p.relative_to(root)), -1) for p in paths]
    return pieces


def piece_split(source: str, number: int, seed: int) -> str:
    """90/5/5 by piece, from the piece's identity alone: every clip of a piece lands in one split."""
    draw = random.Random(f"{seed}:{source}:{number}").random()
    return "test" if draw < 0.05 else "valid" if draw < 0.10 else "train"


def plan(clips: int, seconds: float, sample_rate: int, seed: int, programs: list[int] | None = None) -> list[Clip]:
    """Draw every clip's piece and rendering from the seed. Splits are by piece (90/5/5).
    `programs`: the GM programs to draw from (default: the ten of INSTRUMENTS)."""
    programs = list(programs or INSTRUMENTS)
    rng = random.Random(seed)
    by_collection: dict[str, list] = {}
    for collection, source, number in candidate_pieces():
        by_collection.setdefault(collection, []).append((source, number))
    for pieces in by_collection.values():
        rng.shuffle(pieces)
    names = list(COLLECTIONS)
    weights = [COLLECTIONS[c][3] for c in names]
    used: dict[str, int] = {c: 0 for c in names}
    out = []
    for index in range(clips):
        collection = rng.choices(names, weights)[0]
        pieces = by_collection[collection]
        source, number = pieces[used[collection] % len(pieces)]
        used[collection] += 1
        split = piece_split(source, number, seed)
        low, high = COLLECTIONS[collection][2]
        out.append(Clip(index, collection, source, number, split, rng.choice(programs),
                        rng.randrange(low, high + 1, 2), rng.randint(-4, 4), seconds, sample_rate))
    return out


@functools.lru_cache(maxsize=4)
def _parse(path: str):
    from music21 import converter

    return converter.parse(path)


def _score(clip: Clip):
    from music21 import common

    parsed = _parse(str(Path(common.getCorpusFilePath()) / clip.source))
    return parsed.scores[clip.number] if clip.number >= 0 else parsed


def _key_name(key) -> str:
    names = MAJOR if key.mode == "major" else MINOR
    return f"{names[key.tonic.pitchClass]} {key.mode}"


def describe(clip: Clip, score) -> dict:
    """The score's real metadata after this clip's transposition."""
    from music21 import interval, meter

    analysed = score.analyze("key")
    key = analysed.transpose(interval.Interval(clip.transpose)) if clip.transpose else analysed
    signatures = list(score.recurse().getElementsByClass(meter.TimeSignature))
    title = (score.metadata.title if score.metadata and score.metadata.title else Path(clip.source).stem).strip()
    if clip.collection == "bach" and title.lower().startswith("bwv"):
        title = "BWV " + title[3:]
    label, composer = COLLECTIONS[clip.collection][:2]
    if clip.collection in ("ryansMammoth", "oneills1850"):
        dance = next((d for d in DANCES if d in title.lower()), None)
        if dance:
            label = label.replace("fiddle tune", dance).replace("Irish tune", f"Irish {dance}")
    if clip.collection == "palestrina":
        movement = next((m for m in ("Kyrie", "Gloria", "Credo", "Sanctus", "Benedictus", "Agnus")
                         if m.lower() in clip.source.lower()), None)
        if movement:
            label = f"Renaissance {movement} by Palestrina"
    return {"title": title, "composer": composer, "label": label, "key": _key_name(key), "mode": key.mode,
            "meter": signatures[0].ratioString if signatures else ""}


def caption(clip: Clip, meta: dict) -> str:
    """One of several natural sentence shapes, chosen by the clip index (deterministic)."""
    tempo = "slow" if clip.bpm < 76 else "moderate" if clip.bpm < 112 else "lively"
    _, played, subject = ALL_INSTRUMENTS[clip.program]
    meter = meta["meter"]
    label = meta["label"]
    named = label[0].upper() + label[1:]
    if clip.collection in TITLED or clip.collection == "bach":
        named += f" \"{meta['title']}\""
    shapes = [
        f"A {tempo} {label} in {meta['key']} {played}" + (f", {meter}" if meter else "") + f", about {clip.bpm} BPM.",
        f"{subject} a {tempo} {label} in {meta['key']} at {clip.bpm} BPM" + (f" in {meter} time." if meter else "."),
        f"{named} {played}, {meta['key']}, {tempo} tempo ({clip.bpm} BPM).",
        f"{tempo.capitalize()} {meter + ' ' if meter else ''}{label} {played}; key of {meta['key']}, {clip.bpm} BPM.",
    ]
    return shapes[clip.index % len(shapes)]


def _prepare_score(clip: Clip, score):
    """Keep only the notes the clip needs (plus a bar of tail), transpose, set tempo and instrument."""
    from music21 import instrument, note, stream, tempo

    needed = clip.seconds * clip.bpm / 60 + 4  # quarter notes
    trimmed = stream.Score()
    for part in (list(score.parts) or [score]):
        kept = stream.Part()
        for element in part.flatten().notesAndRests.getElementsByOffset(0, needed, mustBeginInSpan=True,
                                                                         includeEndBoundary=False):
            if isinstance(element, note.GeneralNote):
                kept.insert(element.getOffsetBySite(part.flatten()), element)
        if clip.transpose:
            kept = kept.transpose(clip.transpose)
        kept.insert(0, instrument.instrumentFromMidiProgram(clip.program))
        trimmed.insert(0, kept)
    trimmed.insert(0, tempo.MetronomeMark(number=clip.bpm))
    return trimmed


def synthesize(midi: Path, soundfont: str, sample_rate: int, samples: int) -> np.ndarray:
    """Render MIDI with FluidSynth, reading raw audio from its stdout and stopping after `samples`:
    the cost is bounded by the clip length (some valid MIDI files make fluidsynth's file renderer
    run forever). -> mono float32, possibly shorter when the piece ends first."""
    wanted = samples * 2 * 2  # stereo int16
    process = subprocess.Popen(["fluidsynth", "-ni", "-q", "-T", "raw", "-O", "s16", "-r", str(sample_rate),
                                "-g", "0.5", "-F", "-", soundfont, str(midi)],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    chunks, received = [], 0
    try:
        while received < wanted:
            chunk = process.stdout.read(min(1 << 16, wanted - received))
            if not chunk:
                break
            chunks.append(chunk)
            received += len(chunk)
    finally:
        process.kill()
        process.wait()
    raw = b"".join(chunks)
    stereo = np.frombuffer(raw[: len(raw) // 4 * 4], dtype="<i2").reshape(-1, 2).astype(np.float32) / 32768
    return stereo.mean(axis=1)


def render(clip: Clip, out_dir: Path, soundfont: str) -> dict:
    """Render one clip to OUT_DIR; returns its CSV row, or {'skip': reason}."""
    import soundfile

    from ssmusic.io.audio import write_wav

    target = out_dir / clip.filename
    samples = int(round(clip.seconds * clip.sample_rate))
    try:
        score = _score(clip)
        meta = describe(clip, score)
        if target.is_file() and soundfile.info(str(target)).frames == samples:
            return _row(clip, meta)  # finished by an earlier, interrupted run
        with tempfile.TemporaryDirectory() as tmp:
            midi = Path(tmp) / "clip.mid"
            _prepare_score(clip, score).write("midi", fp=str(midi))
            audio = synthesize(midi, soundfont, clip.sample_rate, samples)
    except SsmusicError as err:
        return {"skip": f"{clip.piece_id}: {err}"}
    except Exception as err:  # music21 raises many exception types on odd scores; skip, never abort
        return {"skip": f"{clip.piece_id}: {type(err).__name__}: {str(err)[:120]}"}
    if len(audio) < 0.8 * samples:
        return {"skip": f"{clip.piece_id}: rendered only {len(audio) / clip.sample_rate:.1f} s"}
    rms = float(np.sqrt(np.mean(audio ** 2)))
    if rms < 1e-4:
        return {"skip": f"{clip.piece_id}: silent rendering"}
    fade = min(len(audio), int(0.05 * clip.sample_rate))
    audio = audio.copy()
    audio[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    audio = np.pad(audio, (0, samples - len(audio)))
    audio *= min(0.1 / rms, 0.95 / max(1e-6, float(np.abs(audio).max())))  # -20 dBFS RMS, no clipping
    import torch

    write_wav(target, torch.from_numpy(audio), clip.sample_rate)
    return _row(clip, meta)


def _row(clip: Clip, meta: dict) -> dict:
    return {"path": clip.filename, "caption": caption(clip, meta), "split": clip.split, "piece_id": clip.piece_id,
            "collection": clip.collection, "title": meta["title"], "composer": meta["composer"],
            "instrument": ALL_INSTRUMENTS[clip.program][0], "gm_program": clip.program, "tempo_bpm": clip.bpm,
            "key": meta["key"], "mode": meta["mode"], "meter": meta["meter"], "transpose": clip.transpose,
            "seconds": clip.seconds}


def _render_job(args):
    return render(*args)


def build(out_dir: str | Path, clips: int = 600, seconds: float = 10.0, sample_rate: int = 22050, seed: int = 0,
          soundfont: str | None = None, workers: int = 2, progress: bool = True,
          instruments: list[int] | None = None) -> dict:
    """Build the dataset in OUT_DIR: WAVs, captions.csv, dataset.json. Returns dataset.json's content.
    `instruments`: GM programs to render with (see parse_instruments; default the ten of INSTRUMENTS)."""
    import multiprocessing

    import music21
    from tqdm import tqdm

    if clips < 1 or not 1.0 <= seconds <= 120.0 or not 8000 <= sample_rate <= 96000:
        raise SsmusicError(f"expected --clips >= 1, 1 <= --seconds <= 120, 8000 <= --sample-rate <= 96000; "
                           f"got {clips}, {seconds}, {sample_rate}")
    check_fluidsynth()
    font = find_soundfont(soundfont)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jobs = plan(clips, seconds, sample_rate, seed, instruments)
    args = [(clip, out, font) for clip in jobs]
    if workers > 1:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            results = list(tqdm(pool.imap(_render_job, args), total=len(args), desc="rendering", unit="clip",
                                disable=not progress))
    else:
        results = [_render_job(a) for a in tqdm(args, desc="rendering", unit="clip", disable=not progress)]
    rows = [r for r in results if "skip" not in r]
    skipped = [r["skip"] for r in results if "skip" in r]
    write_csv(out / CAPTIONS_FILE, rows, list(rows[0]) if rows else ["path", "caption", "split"])
    info = {
        "clips": len(rows), "skipped": len(skipped), "skipped_reasons": skipped,
        "splits": {s: sum(r["split"] == s for r in rows) for s in ("train", "valid", "test")},
        "hours": round(len(rows) * seconds / 3600, 3),
        "settings": {"clips": clips, "seconds": seconds, "sample_rate": sample_rate, "seed": seed,
                     **({"instruments": [ALL_INSTRUMENTS[p][0] for p in instruments]} if instruments else {})},
        "soundfont": font, "music21": music21.__version__,
        "licences": {
            "compositions": "music21 corpus (BSD-licensed software; encodings distributed with the encoders' "
                            "permission, public domain compositions; Essen folk songs: non-commercial use)",
            "soundfont": "FluidR3_GM by Frank Wen, MIT licence (Debian fluid-soundfont-gm)",
        },
    }
    write_json_atomic(out / "dataset.json", info)
    return info


def run(args) -> int:
    info = build(args.out_dir, clips=600 if args.clips is None else args.clips, seconds=args.seconds, sample_rate=args.sample_rate, seed=args.seed,
                 soundfont=args.soundfont, workers=args.workers,
                 instruments=parse_instruments(args.instruments) if args.instruments else None)
    print(f"{args.out_dir}: {info['clips']} clips ({info['hours'] * 60:.1f} min) {info['splits']}, "
          f"{info['skipped']} skipped -> captions.csv")
    return 0


