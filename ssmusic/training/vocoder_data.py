"""What the learned decoder trains on: audio beside the codec's codes for it, one split at a time.

Sources: a demo dataset's split (captions.csv) and the same split of the Debian-packaged real
recordings (ssmusic.data.real_music, split by track). Each file is read once (mono, the codec's
rate), zero-padded to whole frames and encoded with all codebooks; the corpus keeps int16 audio
and codes in one safetensors file, so a resumed run does not read or encode anything again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch

from ssmusic.errors import SsmusicError

POOLS = ("demo", "real")


def sources(demo_dir: str | Path | None, split: str, real: bool = True) -> list[tuple[str, Path]]:
    """[(pool, path)]: the demo dataset's `split` and the real recordings' `split`."""
    from ssmusic.data.captions import split_paths
    from ssmusic.data.real_music import debian_tracks

    out = []
    if demo_dir is not None:
        paths = split_paths(demo_dir, split)
        if paths is None:
            raise SsmusicError(f"{Path(demo_dir) / 'captions.csv'}: missing or without a split column "
                               "(a demo dataset from `ssmusic data demo` has one)")
        out += [("demo", Path(p)) for p in paths]
    if real:
        out += [("real", row["path"]) for row in debian_tracks(split)]
    if not out:
        raise SsmusicError(f"vocoder corpus: no audio in split {split!r}")
    return out


@dataclass
class Corpus:
    """Tracks laid end to end: audio [N] int16 and codes [K, F] int16 with N = F * hop; track i holds
    frames starts[i]:starts[i + 1]; pools[i] is 'demo' or 'real'."""

    audio: torch.Tensor
    codes: torch.Tensor
    starts: torch.Tensor
    pools: list[str]
    files: list[str]
    hop: int

    def track(self, i: int) -> tuple[int, int]:
        return int(self.starts[i]), int(self.starts[i + 1])

    def segment(self, i: int, start: int, frames: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(codes [K, frames] long, audio [frames * hop] float) of track i from its frame `start`."""
        first = self.track(i)[0] + start
        audio = self.audio[first * self.hop:(first + frames) * self.hop].float() / 32768.0
        return self.codes[:, first:first + frames].long(), audio


def corpus_key(files: list[tuple[str, Path]], codec) -> str:
    text = "|".join(f"{pool}:{path}:{path.stat().st_size}" for pool, path in files)
    return hashlib.sha1(f"{codec.name}|{codec.n_codebooks}|{text}".encode()).hexdigest()[:16]


def build_corpus(files: list[tuple[str, Path]], codec, path: Path, progress: bool = True) -> Corpus:
    """Read and encode `files` once into `path` (reused while the file list and codec are the same)."""
    from tqdm import tqdm

    from ssmusic.io.audio import read_audio
    from ssmusic.io.tensors import load_tensors, save_tensors

    key, hop = corpus_key(files, codec), codec.samples_per_frame
    if path.is_file():
        tensors = load_tensors(path)
        if "key" in tensors and bytes(tensors["key"].tolist()).decode() == key:
            return Corpus(tensors["audio"], tensors["codes"], tensors["starts"], [p for p, _ in files],
                          [str(f) for _, f in files], hop)
    audio, codes, starts = [], [], [0]
    for _, file in tqdm(files, desc=f"encoding {path.name}", disable=not progress):
        wav = read_audio(file, codec.sample_rate, mono=True)[0][0]
        frames = -(-wav.shape[-1] // hop)
        wav = torch.nn.functional.pad(wav, (0, frames * hop - wav.shape[-1]))
        codes.append(codec.encode(wav[None], codec.sample_rate)[0, :, :frames].short())
        audio.append((wav.clamp(-1, 1) * 32767).round().short())
        starts.append(starts[-1] + frames)
    corpus = Corpus(torch.cat(audio), torch.cat(codes, dim=1), torch.tensor(starts), [p for p, _ in files],
                    [str(f) for _, f in files], hop)
    save_tensors({"audio": corpus.audio, "codes": corpus.codes, "starts": corpus.starts,
                  "key": torch.tensor(list(key.encode()), dtype=torch.uint8)}, path)
    return corpus


def sample_batch(corpus: Corpus, batch: int, frames: int, generator: torch.Generator,
                 k_probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(codes [B, K, frames], audio [B, frames * hop], k [B]): each row from the pools in turn (demo,
    real, demo, ...; a pool the corpus lacks is skipped), a track of it by length, a start frame
    uniformly, and the number of codebooks k from `k_probs` (k = 1..K)."""
    lengths = (corpus.starts[1:] - corpus.starts[:-1]).clamp(min=0) - frames
    present = [p for p in POOLS if any(q == p and n > 0 for q, n in zip(corpus.pools, lengths.tolist()))]
    if not present:
        raise SsmusicError(f"vocoder corpus: no track has {frames} frames")
    rows = []
    for row in range(batch):
        pool = present[row % len(present)]
        weights = torch.tensor([float(n) if q == pool and n > 0 else 0.0 for q, n in zip(corpus.pools, lengths.tolist())])
        track = int(torch.multinomial(weights, 1, generator=generator))
        start = int(torch.randint(0, int(lengths[track]) + 1, (1,), generator=generator))
        rows.append(corpus.segment(track, start, frames))
    k = torch.multinomial(k_probs, batch, replacement=True, generator=generator) + 1
    return torch.stack([c for c, _ in rows]), torch.stack([a for _, a in rows]), k


def fixed_segments(corpus: Corpus, per_pool: int, frames: int) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """[(pool, codes, audio)]: `per_pool` segments per pool, one per track in turn from the middle of
    each track (deterministic; for validation and the held-out measurement)."""
    out = []
    for pool in POOLS:
        tracks = [i for i, q in enumerate(corpus.pools) if q == pool]
        usable = [i for i in tracks if corpus.track(i)[1] - corpus.track(i)[0] >= frames]
        for n in range(min(per_pool, len(usable) * 8)):
            track = usable[n % len(usable)]
            length = corpus.track(track)[1] - corpus.track(track)[0]
            rounds = -(-per_pool // len(usable))
            start = (length - frames) * (2 * (n // len(usable)) + 1) // (2 * rounds)
            codes, audio = corpus.segment(track, start, frames)
            out.append((pool, codes, audio))
    return out
