"""The offline codec family: a fixed signal transform + residual VQ codebooks fitted by k-means.

Nothing to download: the codebooks (and the learned decoder's weights) are a few MB shipped in the
package, and fitting the codebooks takes minutes on a CPU (`ssmusic codec fit AUDIO_DIR --out DIR`).

Two transforms (chosen between by measurement, see docs/codec.md):
- "mel":  log-mel spectrogram frames are quantized. Two decoders: a learned one (ssmusic.codec.vocoder,
          the shipped codec's default; its weights sit beside the codebooks) and Griffin-Lim, which
          inverts mel -> linear magnitude and recovers phase iteratively (no weights; phasey).
- "mdct": MDCT coefficient frames (sine window, 50% overlap, perfect reconstruction when
          unquantized) are quantized directly; decoding is the inverse MDCT.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ssmusic.codec import DECODERS
from ssmusic.io.atomic import read_json, write_json_atomic
from ssmusic.config import from_dict
from ssmusic.errors import SsmusicError
from ssmusic.codec.mel import log_mel, mel_filterbank
from ssmusic.io.tensors import load_tensors, save_tensors


@dataclass
class TransformCodecConfig:
    transform: str = "mel"  # mel | mdct
    sample_rate: int = 22050
    hop: int = 512  # frame rate = sample_rate / hop
    n_fft: int = 2048  # mel: STFT size; mdct: frame = 2 * hop
    n_mels: int = 128
    card: int = 1024
    n_codebooks: int = 8
    griffin_lim_iters: int = 32
    name: str = "ssmusic-mel-22k"
    decoder: str = "griffin-lim"  # mel: "vocoder" (vocoder.safetensors beside codec.json) or "griffin-lim"

    def __post_init__(self) -> None:
        if self.transform not in ("mel", "mdct"):
            raise SsmusicError(f"codec.json transform: expected 'mel' or 'mdct', got {self.transform!r}")
        if self.decoder not in DECODERS:
            raise SsmusicError(f"codec.json decoder: expected one of {DECODERS}, got {self.decoder!r}")



class TransformCodec:
    """Implements the codec protocol (see ssmusic.codec.codecs.Codec)."""

    def __init__(self, config: TransformCodecConfig, codebooks: torch.Tensor, scale: float = 1.0,
                 vocoder: torch.nn.Module | None = None) -> None:
        if (config.decoder == "vocoder") != (vocoder is not None) and config.transform == "mel":
            raise SsmusicError(f"codec {config.name}: decoder {config.decoder!r} needs "
                               f"{'a' if vocoder is None else 'no'} learned decoder")
        self.config = config
        self.vocoder = vocoder
        self.codebooks = codebooks.float()  # [K, card, dim]
        self.scale = scale  # feature scale applied before quantization (mdct)
        self.name = config.name
        self.sample_rate = config.sample_rate
        self.frame_rate = config.sample_rate / config.hop
        self.card = config.card
        self.n_codebooks = codebooks.shape[0]
        # Griffin-Lim's initial phases and the learned decoder's absolute-time phases depend on
        # where a window sits in the clip
        self.position_dependent = config.transform == "mel" and (
            vocoder is None or bool(vocoder.config.absolute_phase))
        # the learned decoder's reach is finite and known from its shape, so streaming needs no
        # measurement (ssmusic.codec.stream.measure_context); Griffin-Lim's fades and is measured
        self.receptive_field = vocoder.config.reach if vocoder is not None else None
        if config.transform == "mel":
            self.window = torch.hann_window(config.n_fft)
            self.mel = mel_filterbank(config.sample_rate, config.n_fft, config.n_mels)
            self.mel_pinv = torch.linalg.pinv(self.mel)
        else:
            n = 2 * config.hop
            self.window = torch.sin(math.pi * (torch.arange(n) + 0.5) / n)
            k, t = torch.arange(config.hop)[:, None], torch.arange(n)[None]
            self.basis = torch.cos(math.pi / config.hop * (t + 0.5 + config.hop / 2) * (k + 0.5))  # [hop, 2hop]

    @property
    def device(self) -> torch.device:
        return self.codebooks.device

    def to(self, device: str | torch.device) -> "TransformCodec":
        """Move the codebooks and transform tensors (decoding then runs there, e.g. on a GPU)."""
        for name in ("codebooks", "window", "mel", "mel_pinv", "basis"):
            if hasattr(self, name):
                setattr(self, name, getattr(self, name).to(device))
        if self.vocoder is not None:
            self.vocoder.to(device)
        return self

    # ---- transform ----------------------------------------------------------------------------
    def features(self, wav: torch.Tensor) -> torch.Tensor:
        """Mono audio [B, N] at sample_rate -> frames [B, T, dim], T = ceil(N / hop)."""
        c = self.config
        frames = math.ceil(wav.shape[-1] / c.hop)
        if c.transform == "mel":
            return log_mel(wav, self.mel, c.n_fft, c.hop, self.window, frames).transpose(1, 2)
        padded = F.pad(wav, (c.hop, frames * c.hop - wav.shape[-1] + c.hop))
        chunks = padded.unfold(-1, 2 * c.hop, c.hop)[:, :frames] * self.window  # [B, T, 2hop]
        return chunks @ self.basis.T * self.scale

    def synthesize(self, feats: torch.Tensor, length: int, first_frame: int = 0) -> torch.Tensor:
        """frames [B, T, dim] -> audio [B, length]. `first_frame`: the absolute index of frame 0
        (a window of a longer clip), which fixes Griffin-Lim's initial phases."""
        c = self.config
        if self.vocoder is not None:
            wav = self.vocoder(feats, first_frame)
            return F.pad(wav, (0, max(0, length - wav.shape[-1])))[..., :length]
        if c.transform == "mel":
            magnitude = torch.clamp(self.mel_pinv @ torch.exp(feats).transpose(1, 2), min=0)
            return self._griffin_lim(magnitude, length, first_frame)
        coeffs = feats / self.scale
        chunks = (coeffs @ self.basis) * self.window * (2.0 / c.hop)  # [B, T, 2hop]
        batch, frames, n = chunks.shape
        out = F.fold(chunks.transpose(1, 2), output_size=(1, (frames + 1) * c.hop), kernel_size=(1, n),
                     stride=(1, c.hop))[:, 0, 0]
        return out[:, c.hop:c.hop + length]

    def _griffin_lim(self, magnitude: torch.Tensor, length: int, first_frame: int = 0,
                     momentum: float = 0.99) -> torch.Tensor:
        """Fast Griffin-Lim (Perraudin et al. 2013). The initial phases are a fixed hash of (frame
        index, bin), so decoding is deterministic and a window of a clip starts from the same
        phases as the whole clip (what streaming relies on)."""
        c = self.config
        n_frames = magnitude.shape[-1]
        frames = torch.arange(first_frame, first_frame + n_frames)
        # a fixed hash of (frame, bin): the same for every row (decoding in batches changes nothing)
        # and computed on the CPU whatever the device, so a GPU decode starts from the same phases
        phase = initial_phase(magnitude.shape[-2], frames).to(magnitude.device).expand_as(magnitude)
        angles = torch.polar(torch.ones_like(magnitude), phase)
        previous = torch.zeros_like(angles)
        target = (n_frames - 1) * c.hop
        for _ in range(c.griffin_lim_iters):
            wav = torch.istft(magnitude * angles, c.n_fft, c.hop, window=self.window, length=target)
            rebuilt = torch.stft(wav, c.n_fft, c.hop, window=self.window, return_complex=True)[..., :n_frames]
            angles = rebuilt - (momentum / (1 + momentum)) * previous
            previous = rebuilt
            angles = angles / angles.abs().clamp(min=1e-8)
        wav = torch.istft(magnitude * angles, c.n_fft, c.hop, window=self.window, length=target)
        return F.pad(wav, (0, max(0, length - wav.shape[-1])))[..., :length]

    # ---- residual VQ ---------------------------------------------------------------------------
    def quantize(self, feats: torch.Tensor) -> torch.Tensor:
        """[B, T, dim] -> codes [B, K, T]"""
        residual = feats.reshape(-1, feats.shape[-1]).clone()
        codes = []
        for book in self.codebooks:
            index = nearest(residual, book)
            residual -= book[index]
            codes.append(index)
        return torch.stack(codes, dim=0).reshape(len(codes), *feats.shape[:2]).permute(1, 0, 2)

    def dequantize(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, k, T] (k <= K) -> [B, T, dim]"""
        return sum(self.codebooks[k][codes[:, k]] for k in range(codes.shape[1]))

    # ---- protocol -----------------------------------------------------------------------------
    @torch.no_grad()
    def encode_mono(self, wav: torch.Tensor) -> torch.Tensor:
        return self.quantize(self.features(wav.float().to(self.device))).cpu()

    @torch.no_grad()
    def decode(self, codes: torch.Tensor, first_frame: int = 0) -> torch.Tensor:
        """codes [B, k, T] -> audio [B, 1, T * hop] on the CPU; `first_frame`: see synthesize()."""
        codes = codes.long().to(self.device)
        if codes.shape[1] > self.n_codebooks or codes.min() < 0 or codes.max() >= self.card:
            raise SsmusicError(f"codec {self.name}: codes must be [B, <= {self.n_codebooks}, T] in [0, {self.card})")
        return self.synthesize(self.dequantize(codes), codes.shape[-1] * self.config.hop, first_frame)[:, None].cpu()

    # ---- files --------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        save_tensors({"codebooks": self.codebooks.contiguous(), "scale": torch.tensor([self.scale])},
                     directory / "codebooks.safetensors")
        if self.vocoder is not None:
            self.vocoder.save(directory)
        write_json_atomic(directory / "codec.json", asdict(self.config))

    @classmethod
    def load(cls, directory: str | Path, decoder: str | None = None) -> "TransformCodec":
        """`decoder`: None = codec.json's; "griffin-lim" or "vocoder" (a mel codec) overrides it."""
        from dataclasses import replace

        directory = Path(directory)
        config = from_dict(TransformCodecConfig, read_json(directory / "codec.json"), str(directory / "codec.json"))
        if decoder is not None:
            if config.transform != "mel":
                raise SsmusicError(f"codec {config.name}: decoder {decoder!r} is for mel codecs; "
                                   f"{config.transform} decodes with its inverse transform")
            config = replace(config, decoder=decoder)
        tensors = load_tensors(directory / "codebooks.safetensors")
        vocoder = None
        if config.transform == "mel" and config.decoder == "vocoder":
            from ssmusic.codec.vocoder import Vocoder

            vocoder = Vocoder.load(directory)
        return cls(config, tensors["codebooks"], float(tensors["scale"][0]), vocoder)


def initial_phase(bins: int, frames: torch.Tensor) -> torch.Tensor:
    """Pseudo-random phases [bins, T] in [0, 2 pi) from an integer hash of (bin, absolute frame)."""
    mask = 0xFFFFFFFF
    x = ((frames[None].long() * 73856093) ^ (torch.arange(bins)[:, None] * 19349663)) & mask
    for _ in range(2):
        x = (((x >> 16) ^ x) * 0x45D9F3B) & mask
    x = (x >> 16) ^ x
    return x.double().div(2.0**32).mul(2 * math.pi).float()


def nearest(x: torch.Tensor, book: torch.Tensor, chunk: int = 65536) -> torch.Tensor:
    """Index of the nearest codeword for each row of x [N, dim] (squared Euclidean)."""
    norms = (book * book).sum(-1)
    out = torch.empty(x.shape[0], dtype=torch.long, device=x.device)
    for start in range(0, x.shape[0], chunk):
        part = x[start:start + chunk]
        out[start:start + chunk] = (norms - 2 * part @ book.T).argmin(-1)
    return out


def kmeans(x: torch.Tensor, k: int, iters: int, generator: torch.Generator) -> torch.Tensor:
    """Lloyd's k-means with k-means++-style seeding on a subsample; empty clusters are re-seeded
    from the points worst served. Deterministic under `generator`."""
    n = x.shape[0]
    if n < k:
        raise SsmusicError(f"codec fit: {n} frames cannot fit {k} codewords; give more audio")
    sample = x[torch.randperm(n, generator=generator)[: min(n, 20 * k)]]
    centers = sample[torch.randint(len(sample), (1,), generator=generator)]
    dist = ((sample - centers[0]) ** 2).sum(-1)
    while len(centers) < k:  # k-means++ in batches of 32 for speed
        picks = torch.multinomial(dist / dist.sum(), min(32, k - len(centers)), generator=generator)
        centers = torch.cat([centers, sample[picks]])
        dist = torch.minimum(dist, torch.cdist(sample, sample[picks]).pow(2).min(-1).values)
    for _ in range(iters):
        assign = nearest(x, centers)
        sums = torch.zeros_like(centers).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k).float()
        empty = counts == 0
        centers = torch.where(empty[:, None], centers, sums / counts.clamp(min=1)[:, None])
        if empty.any():
            err = ((x - centers[assign]) ** 2).sum(-1)
            centers[empty] = x[err.topk(int(empty.sum())).indices]
    return centers


def fit_codec(wavs: list[torch.Tensor], config: TransformCodecConfig, iters: int = 20, seed: int = 0,
              max_frames: int = 200_000, progress: bool = True) -> TransformCodec:
    """Fit residual codebooks on mono audio at config.sample_rate."""
    from tqdm import tqdm

    generator = torch.Generator().manual_seed(seed)
    probe = TransformCodec(config, torch.zeros(1, config.card, 1))
    feats = torch.cat([probe.features(w[None].float())[0] for w in wavs])
    if config.transform == "mdct":
        probe.scale = float(1.0 / feats.std().clamp(min=1e-8))
        feats = feats * probe.scale
    if len(feats) > max_frames:
        feats = feats[torch.randperm(len(feats), generator=generator)[:max_frames]]
    residual, books = feats.clone(), []
    for _ in tqdm(range(config.n_codebooks), desc="fitting codebooks", disable=not progress):
        book = kmeans(residual, config.card, iters, generator)
        residual -= book[nearest(residual, book)]
        books.append(book)
    return TransformCodec(config, torch.stack(books), probe.scale)


def training_files(directory: Path) -> list[Path]:
    """A demo dataset (captions.csv with a split column) contributes its train split only, so the
    held-out clips stay unseen by the codec too; any other directory contributes all its audio."""
    from ssmusic.io.audio import list_audio_files
    from ssmusic.data.captions import split_paths

    train = split_paths(directory, "train")
    return train if train is not None else list_audio_files(directory)


def run_fit(args) -> int:
    from ssmusic.io.audio import read_audio

    directory = Path(args.audio_dir)
    files = training_files(directory)
    if not files:
        raise SsmusicError(f"{directory}: no audio files to fit on")
    config = TransformCodecConfig(transform=args.transform, card=args.card, n_codebooks=args.codebooks,
                                  name=args.name or f"ssmusic-{args.transform}-22k")
    wavs = [read_audio(f, config.sample_rate, mono=True)[0][0] for f in files]
    codec = fit_codec(wavs, config, iters=args.iters, seed=args.seed)
    codec.save(args.out)
    print(f"fitted {codec.n_codebooks} x {codec.card} codebooks on {len(files)} files "
          f"({sum(w.shape[-1] for w in wavs) / config.sample_rate / 60:.1f} min) -> {args.out}")
    return 0
