"""`ssmusic prepare`: audio files + captions -> a dataset of codec tokens the LM trains on.

    AUDIO_DIR + captions.csv (path, caption[, split][, attribute columns])
      -> per source file: read, mono, resample, cut fixed-length clips, codec.encode
      -> DATA_DIR/<split>/codes.npy       uint16 [N, K, T] (pad id = card)
                          captions.jsonl  one line per clip (caption, source, the CSV's attributes)
                          text.npy        float16 [N, S, D] cached caption embeddings
                          text_mask.npy   bool [N, S]
         DATA_DIR/manifest.json           codec, text encoder, settings, sources + hashes
    Splits: train, valid, test, and any held-out test_<name> the captions name (never trained on).
    Files without a split get one by captions.held_out_splits (valid and test at least one file each
    from 10 usable files on).

Resumable: each source file's codes are written to DATA_DIR/.work/ as soon as it is encoded, and an
interrupted run skips what is there. The manifest is written last, so a dataset without one is
incomplete and readers refuse it. A file that cannot be read is reported and skipped.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ssmusic.data.captions import held_out_splits, read_csv
from ssmusic.checks import check_writable
from ssmusic.errors import SsmusicError
from ssmusic.io.atomic import atomic_path, write_json_atomic
from ssmusic.io.audio import read_or_skip, report_skipped, skip

SPLITS = ("train", "valid", "test")
# more held-out test sets beside `test` are named test_<name> (e.g. demo v2's test_phrasing: test
# clips captioned in phrasings no training caption uses); training never reads them
EXTRA_TEST_SPLIT = re.compile(r"test_[a-z0-9_]+")
CSV_FIELDS = ("path", "caption", "split")  # the other columns of captions.csv are attributes
FORMAT_VERSION = 1


@dataclass
class PrepareSettings:
    clip_seconds: float = 30.0  # the paper's clip length
    min_clip_fraction: float = 0.5  # a shorter tail clip is dropped; a longer one is padded
    # A file shorter than one clip is kept as one padded clip (10 s MusicCaps files, 4 s demo clips)
    # if it has at least this much audio, capped at min_clip_fraction of a clip.
    min_seconds: float = 1.0
    max_clips_per_file: int = 0  # 0 = all
    valid_percent: float = 5.0  # used only when the captions file has no split column
    test_percent: float = 5.0
    cache_text: bool = True
    batch_size: int = 8


def read_captions(path: Path, audio_dir: Path) -> list[dict]:
    if not path.is_file():
        raise SsmusicError(f"{path}: captions file not found")
    fields, rows = read_csv(path)
    for required in ("path", "caption"):
        if required not in fields:
            raise SsmusicError(f"{path}: missing column {required!r} (expected a header with path,caption[,split])")
    for line, row in enumerate(rows, start=2):
        split = row.get("split")
        if split not in (None, "") and split not in SPLITS and not EXTRA_TEST_SPLIT.fullmatch(split):
            raise SsmusicError(f"{path}:{line}: split {split!r}: expected one of {list(SPLITS)} or test_<name>")
        if row["caption"] is None:
            raise SsmusicError(f"{path}:{line}: caption: missing value")
        audio = Path(row["path"])
        if not audio.is_absolute():
            by_csv, by_dir = path.parent / audio, audio_dir / audio
            audio = by_csv if by_csv.exists() else by_dir
        row["attributes"] = {k: v for k, v in row.items() if k not in CSV_FIELDS}
        row["audio"] = audio
    if not rows:
        raise SsmusicError(f"{path}: no captions")
    return rows


def assign_splits(sources: list[dict], settings: PrepareSettings) -> None:
    """Give each usable file without a split one: captions.held_out_splits of their paths (valid and
    test at least one file each from 10 files on), so a fine-tune on a small folder still validates."""
    unassigned = [s["path"] for s in sources if not s["split"]]
    splits = held_out_splits(unassigned, settings.valid_percent, settings.test_percent)
    for source in sources:
        source["split"] = source["split"] or splits[source["path"]]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _save_npy_atomic(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with tmp.open("wb") as handle:
            np.save(handle, array, allow_pickle=False)


def min_file_seconds(settings: PrepareSettings) -> float:
    """The shortest file that still gives a (padded) clip."""
    return min(settings.min_seconds, settings.min_clip_fraction * settings.clip_seconds)


def encode_file(wav, rate: int, codec, settings: PrepareSettings) -> tuple[np.ndarray, list[float]]:
    """Mono audio [1, N] at the codec's rate -> (codes uint16 [clips, K, T], clip start times). Tail
    clips are padded with card."""
    import torch

    clip = int(round(settings.clip_seconds * rate))
    frames = int(round(settings.clip_seconds * codec.frame_rate))
    starts = list(range(0, wav.shape[-1], clip))
    tail = wav.shape[-1] - starts[-1]
    if len(starts) > 1 and tail < settings.min_clip_fraction * clip:
        starts = starts[:-1]
    elif len(starts) == 1 and tail < min_file_seconds(settings) * rate:
        starts = []
    if settings.max_clips_per_file:
        starts = starts[: settings.max_clips_per_file]
    if not starts:
        return np.zeros((0, codec.n_codebooks, frames), np.uint16), []
    pieces = []
    for i in range(0, len(starts), settings.batch_size):
        batch = [wav[0, s:s + clip] for s in starts[i:i + settings.batch_size]]
        lengths = [len(b) for b in batch]
        batch = torch.stack([torch.nn.functional.pad(b, (0, clip - len(b))) for b in batch])
        codes = codec.encode(batch, rate)[..., :frames]
        codes = torch.nn.functional.pad(codes, (0, frames - codes.shape[-1]), value=codec.card)
        for row, length in enumerate(lengths):  # padded audio is not music: mark it as pad
            codes[row, :, int(np.ceil(length / rate * codec.frame_rate)):] = codec.card
        pieces.append(codes.numpy().astype(np.uint16))
    return np.concatenate(pieces), [s / rate for s in starts]


def prepare(audio_dir: str | Path, captions: str | Path, out: str | Path, codec_name: str | None = None,
            text_encoder_name: str | None = None, settings: PrepareSettings | None = None,
            progress: bool = True) -> dict:
    """Build (or resume building) a dataset; returns the manifest."""
    from tqdm import tqdm

    from ssmusic.codec.codecs import load_codec

    settings = settings or PrepareSettings()
    audio_dir, out = Path(audio_dir), Path(out)
    if not audio_dir.is_dir():
        raise SsmusicError(f"{audio_dir}: audio directory not found")
    if settings.clip_seconds <= 0:
        raise SsmusicError(f"--clip-seconds: expected a positive number, got {settings.clip_seconds}")
    if settings.min_seconds <= 0:
        raise SsmusicError(f"--min-seconds: expected a positive number, got {settings.min_seconds}")
    rows = read_captions(Path(captions), audio_dir)
    check_writable([out / "manifest.json"], flag="--out")
    codec = load_codec(codec_name)
    if codec.card >= np.iinfo(np.uint16).max:
        raise SsmusicError(f"codec {codec.name}: card {codec.card} does not fit uint16 storage")
    work = out / ".work"
    work.mkdir(parents=True, exist_ok=True)
    settings_key = hashlib.sha256(json.dumps([asdict(settings), codec.name]).encode()).hexdigest()[:12]
    sources, skipped = [], []
    for row in tqdm(rows, desc="encoding audio", unit="file", disable=not progress):
        audio = row["audio"]
        try:
            digest = file_sha256(audio)
        except OSError as err:
            skip(skipped, row["path"], err)
            continue
        done = work / f"{digest[:24]}-{settings_key}.npy"
        if not done.exists():
            loaded = read_or_skip(audio, skipped, row["path"], codec.sample_rate, mono=True)
            if loaded is None:
                continue
            _save_npy_atomic(done, encode_file(*loaded, codec, settings)[0])
        n_clips = int(np.load(done, mmap_mode="r").shape[0])
        if n_clips == 0:
            skipped.append({"path": row["path"], "reason": f"shorter than the {min_file_seconds(settings):g} s minimum"})
            continue
        sources.append({"path": row["path"], "sha256": digest, "clips": n_clips, "work": done.name,
                        "split": row.get("split") or "", **{k: row[k] for k in ("caption", "attributes")}})
    if not sources:
        hint = ""
        if any(problem["reason"].endswith(" s minimum") for problem in skipped):
            hint = (f"; the minimum is --min-seconds ({settings.min_seconds:g}), capped at half of "
                    f"--clip-seconds ({settings.clip_seconds:g})")
        raise SsmusicError(f"{captions}: none of the {len(rows)} audio files could be used "
                           f"(first problem: {skipped[0]['path']}: {skipped[0]['reason']}){hint}")
    report_skipped(skipped)
    assign_splits(sources, settings)
    counts = {}
    text_info = {"text_encoder": None, "text_dim": None}
    encoder = None
    if settings.cache_text:
        from ssmusic.text import load_text_encoder

        encoder = load_text_encoder(text_encoder_name)
        text_info = {"text_encoder": encoder.name, "text_dim": encoder.dim}
    elif text_encoder_name:
        text_info["text_encoder"] = text_encoder_name
    for split in SPLITS + tuple(sorted({s["split"] for s in sources} - set(SPLITS))):
        members = [s for s in sources if s["split"] == split]
        counts[split] = _write_split(out / split, members, work, encoder, settings, progress)
    manifest = {
        "format": FORMAT_VERSION,
        "codec": codec.name, "sample_rate": codec.sample_rate, "frame_rate": codec.frame_rate,
        "card": codec.card, "n_codebooks": codec.n_codebooks, "pad_id": codec.card,
        "clip_seconds": settings.clip_seconds,
        "clip_frames": int(round(settings.clip_seconds * codec.frame_rate)),
        **text_info, "text_cached": encoder is not None,
        "splits": counts, "settings": asdict(settings),
        "sources": [{k: s[k] for k in ("path", "sha256", "clips", "split")} for s in sources],
        "skipped": skipped,
    }
    write_json_atomic(out / "manifest.json", manifest)
    return manifest


def _write_split(directory: Path, members: list[dict], work: Path, encoder, settings: PrepareSettings,
                 progress: bool) -> int:
    from tqdm import tqdm

    directory.mkdir(parents=True, exist_ok=True)
    arrays = [np.load(work / m["work"]) for m in members]
    codes = np.concatenate(arrays) if arrays else np.zeros((0, 1, 0), np.uint16)
    captions = []
    for member, array in zip(members, arrays):
        for clip in range(array.shape[0]):
            captions.append({"caption": member["caption"], "source": member["path"],
                             "start_seconds": clip * settings.clip_seconds,
                             **({"attributes": member["attributes"]} if member["attributes"] else {})})
    _save_npy_atomic(directory / "codes.npy", codes)
    lines = "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in captions)
    with atomic_path(directory / "captions.jsonl") as tmp:
        tmp.write_text(lines, encoding="utf-8")
    if encoder is not None and captions:
        texts = [c["caption"] for c in captions]
        unique = sorted(set(texts))
        index = {t: i for i, t in enumerate(unique)}
        embedded, masks = [], []
        for start in tqdm(range(0, len(unique), 64), desc=f"embedding {directory.name} captions",
                          disable=not progress):
            emb, mask = encoder.encode(unique[start:start + 64])
            embedded.append(emb.numpy())
            masks.append(mask.numpy())
        width = max(e.shape[1] for e in embedded)
        table = np.zeros((len(unique), width, encoder.dim), np.float16)
        table_mask = np.zeros((len(unique), width), bool)
        row = 0
        for emb, mask in zip(embedded, masks):
            table[row:row + len(emb), : emb.shape[1]] = emb
            table_mask[row:row + len(emb), : mask.shape[1]] = mask
            row += len(emb)
        order = np.array([index[t] for t in texts])
        _save_npy_atomic(directory / "text.npy", table[order])
        _save_npy_atomic(directory / "text_mask.npy", table_mask[order])
    return len(captions)


def run(args) -> int:
    settings = PrepareSettings(clip_seconds=args.clip_seconds, max_clips_per_file=args.max_clips_per_file,
                               cache_text=not args.no_text_cache, min_seconds=args.min_seconds)
    captions = args.captions
    if captions is None:  # a folder without a captions file: AUDIO_DIR/captions.csv or one written from the options
        from ssmusic.data.autocaption import captions_file

        captions = captions_file(args.audio_dir, args.out, args.caption, args.captions_from_filenames)
    elif args.caption is not None or args.captions_from_filenames:
        raise SsmusicError("--caption/--captions-from-filenames: for a folder without captions; not with --captions")
    manifest = prepare(args.audio_dir, captions, args.out, args.codec, args.text_encoder, settings)
    print(f"{args.out}: {manifest['splits']} clips of {manifest['clip_seconds']:g} s, codec {manifest['codec']} "
          f"({manifest['n_codebooks']} x {manifest['card']}, {manifest['frame_rate']:.2f} frames/s), "
          f"text {manifest['text_encoder']}; skipped {len(manifest['skipped'])}")
    return 0
