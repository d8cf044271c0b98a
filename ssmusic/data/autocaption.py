"""Captions for a folder of audio that has none (`ssmusic prepare AUDIO_DIR --caption "..."` or
`--captions-from-filenames`).

One caption for every file, or each file's name turned into words ("steel_drums-calypso 03.wav" ->
"steel drums calypso 03"). Either way the captions say little or nothing that differs between clips,
so the model learns the music but hardly what to ask for: text conditioning then carries little
(a warning says so). The captions.csv written here (into DATA_DIR, atomically) can be edited and
passed back with --captions.

Splits: captions.held_out_splits of the relative paths (5% valid, 5% test, at least one each from 10
files on), the rule `prepare` applies to any file without a split.
"""

from __future__ import annotations

import re
from pathlib import Path

from ssmusic.data.captions import CAPTIONS_FILE, held_out_splits, write_csv
from ssmusic.errors import SsmusicError


def filename_caption(path: Path) -> str:
    words = re.sub(r"[\s_\-.]+", " ", path.stem).strip()
    return words or path.stem


def folder_captions(audio_dir: str | Path, caption: str | None = None, from_filenames: bool = False) -> list[dict]:
    """path (relative to audio_dir), caption, split for every audio file under audio_dir."""
    from ssmusic.io.audio import list_audio_files

    audio_dir = Path(audio_dir)
    if (caption is None) == (not from_filenames):
        raise SsmusicError("captions: give either --caption TEXT or --captions-from-filenames")
    if caption is not None and not caption.strip():
        raise SsmusicError("--caption: expected some text, got an empty caption")
    files = [str(p.relative_to(audio_dir)) for p in list_audio_files(audio_dir)]
    if not files:
        raise SsmusicError(f"{audio_dir}: no audio files (.wav, .flac, .mp3, .ogg ...)")
    splits = held_out_splits(files)
    return [{"path": f, "caption": caption.strip() if caption is not None else filename_caption(Path(f)),
             "split": splits[f]} for f in files]


def captions_file(audio_dir: str | Path, out: str | Path, caption: str | None = None,
                  from_filenames: bool = False) -> Path:
    """The captions CSV `prepare` reads: AUDIO_DIR/captions.csv if neither option is given, else one
    written to OUT/captions.csv from the folder (with the warning)."""
    audio_dir, out = Path(audio_dir), Path(out)
    if caption is None and not from_filenames:
        existing = audio_dir / CAPTIONS_FILE
        if existing.is_file():
            return existing
        raise SsmusicError(f"{audio_dir}: no captions.csv; pass --captions FILE (path,caption[,split]), "
                           "--caption \"...\" (one caption for every file) or --captions-from-filenames")
    rows = folder_captions(audio_dir, caption, from_filenames)
    distinct = len({r["caption"] for r in rows})
    how = "one caption for all" if caption is not None else f"{distinct} distinct captions from file names"
    print(f"warning: {how} ({len(rows)} files): text conditioning then carries little; the model learns "
          "the music, not what to ask for. Edit the written captions.csv and pass it with --captions for more.")
    target = out / CAPTIONS_FILE
    out.mkdir(parents=True, exist_ok=True)
    write_csv(target, rows, ["path", "caption", "split"])
    return target
