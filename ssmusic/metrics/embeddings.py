"""Audio embedding models for the Fréchet distance, behind one interface:

    model.name, model.sample_rate, model.embed(wav [N] at sample_rate) -> [windows, dim]

- "mel-stats" (offline default, no weights): per one-second window, the mean and standard deviation
  of each of 64 log-mel bands (22.05 kHz, 1024-point STFT, hop 512) -> 128 dims. A transparent,
  parameter-free descriptor of timbre and loudness; not a learned embedding like VGGish.
- "clap:<hub id or dir>": LAION-CLAP audio embeddings through transformers' ClapModel (e.g.
  laion/larger_clap_music), one per 10 s window; also gives text embeddings for the CLAP score.
- "codec:<name or dir>": a codec's continuous encoder latents (EnCodec / DAC via transformers),
  one per codec frame, averaged over one-second windows.
"""

from __future__ import annotations


import numpy as np
import torch

from ssmusic.errors import SsmusicError
from ssmusic.io.hub import load_pretrained
from ssmusic.codec.mel import log_mel, mel_filterbank


class MelStats:
    name = "mel-stats"
    sample_rate = 22050

    def __init__(self) -> None:
        self.bank = mel_filterbank(self.sample_rate, 1024, 64)
        self.window = torch.hann_window(1024)

    def embed(self, wav: torch.Tensor) -> np.ndarray:
        logmel = log_mel(wav.float(), self.bank, 1024, 512, self.window)  # [64, frames]
        per_second = max(1, round(self.sample_rate / 512))
        windows = [logmel[:, i:i + per_second] for i in range(0, logmel.shape[1], per_second)]
        windows = [w for w in windows if w.shape[1] >= per_second // 2] or [logmel]
        return torch.stack([torch.cat([w.mean(1), w.std(1, unbiased=False)]) for w in windows]).numpy()


class ClapEmbedding:
    """LAION-CLAP via transformers (hub id or local directory with weights + processor files)."""

    sample_rate = 48000

    def __init__(self, source: str) -> None:
        from transformers import ClapModel, ClapProcessor

        def load(local: bool):
            return (ClapModel.from_pretrained(source, local_files_only=local).eval(),
                    ClapProcessor.from_pretrained(source, local_files_only=local))

        self.model, self.processor = load_pretrained("CLAP model", source, load, "pass clap:DIR")
        self.name = f"clap:{source}"

    @torch.no_grad()
    def embed(self, wav: torch.Tensor) -> np.ndarray:
        step = 10 * self.sample_rate
        chunks = [wav[i:i + step].numpy() for i in range(0, len(wav), step) if len(wav[i:i + step]) > self.sample_rate]
        inputs = self.processor(audio=chunks or [wav.numpy()], sampling_rate=self.sample_rate, return_tensors="pt")
        features = self.model.get_audio_features(**inputs)
        features = getattr(features, "pooler_output", features)
        return torch.nn.functional.normalize(features, dim=-1).numpy()

    @torch.no_grad()
    def embed_text(self, texts: list[str]) -> np.ndarray:
        inputs = self.processor(text=texts, return_tensors="pt", padding=True)
        features = self.model.get_text_features(**inputs)
        features = getattr(features, "pooler_output", features)
        return torch.nn.functional.normalize(features, dim=-1).numpy()


class CodecLatents:
    """Continuous encoder latents of EnCodec / DAC (before quantization), one vector per second."""

    def __init__(self, source: str) -> None:
        from ssmusic.codec.codecs import HFCodec, load_codec

        codec = load_codec(source)
        if not isinstance(codec.backend, HFCodec):
            raise SsmusicError(f"codec:{source}: latents need a neural codec (EnCodec or DAC via transformers)")
        self.model = codec.backend.model
        self.sample_rate = codec.sample_rate
        self.frame_rate = codec.frame_rate
        self.name = f"codec:{source}"

    @torch.no_grad()
    def embed(self, wav: torch.Tensor) -> np.ndarray:
        latents = self.model.encoder(wav[None, None].float())[0].T  # [frames, dim]
        per_second = max(1, round(self.frame_rate))
        return torch.stack([latents[i:i + per_second].mean(0) for i in range(0, len(latents), per_second)]).numpy()


def load_embedding(name: str | None = None):
    name = name or "mel-stats"
    if name == "mel-stats":
        return MelStats()
    if name.startswith("clap:"):
        return ClapEmbedding(name[5:])
    if name.startswith("codec:"):
        return CodecLatents(name[6:])
    if name.lower() in ("vggish", "passt"):
        raise SsmusicError(f"--embedding {name}: not supported yet (no loader ships with ssmusic); use mel-stats, "
                           "clap:<laion/larger_clap_music or a local dir> or codec:<facebook/encodec_32khz or dir>")
    raise SsmusicError(f"--embedding {name!r}: expected mel-stats, clap:<hub id or dir> or codec:<name or dir>")
