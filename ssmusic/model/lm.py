"""MusicLM: a decoder over audio-codec tokens, conditioned on text.

    text [B,S,text_dim] -> Linear + LayerNorm -> condition [B,S,d]
    codes [B,K,T] -> delay pattern -> sum of K embeddings -> [B,T,d]
    prefix:  [condition ; audio] -> blocks -> K heads (logits from the last condition position on)
    cross:   [BOS ; audio] -> blocks (each attends to the condition) -> K heads
    pooled:  [BOS ; audio] -> blocks -> K heads, with only the pooled caption vector (below)
    pooled_text: the caption's mean-pooled embedding (Linear + LayerNorm) is added at every position

Each block (ssmusic/model/blocks.py) is mixer -> [cross_attn] -> channel_mixer, each pre-norm residual.
Decoding hands one DecodeState (ssmusic/model/state.py) through every block.

Captions of different lengths are left-padded, so every row's condition ends right before its
audio; padded positions are exact no-ops (masked in Mamba2 and attention). The learned `null`
vector replaces the whole caption for caption dropout and classifier-free guidance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from ssmusic.model.blocks import Block, rename_legacy_keys
from ssmusic.model.controls import BeatClock, KeyEmbedding, heard_controls
from ssmusic.config import LMConfig, load_config, save_config
from ssmusic.model.decode_weights import check_decode_dtype, state_dtype
from ssmusic.errors import SsmusicError
from ssmusic.model.layers import MLP, CrossAttention, DecodeLinear, RMSNorm, SelfAttention, init_linear, sinusoidal
from ssmusic.model.mamba2 import Mamba2
from ssmusic.model import decoding
from ssmusic.model.patterns import build_delay, revert_delay
from ssmusic.model.sampling import SamplingParams
from ssmusic.model.state import DecodeState, store


def token_loss(logits: torch.Tensor, codes: torch.Tensor, pad_id: int, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy of logits [B,K,T,V] against codes [B,K,T], pad positions ignored."""
    return F.cross_entropy(logits.flatten(0, 2).float(), codes.flatten(), ignore_index=pad_id,
                           label_smoothing=label_smoothing)


def left_align(values: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Move each row's valid positions to the end (stable), so right-padded input becomes left-padded."""
    order = torch.argsort(mask.to(torch.int8), dim=1, stable=True)
    return values.gather(1, order[..., None].expand_as(values)), mask.gather(1, order)


class MusicLM(nn.Module):
    def __init__(self, config: LMConfig) -> None:
        super().__init__()
        self.config = config
        d, card = config.d_model, config.card
        # One extra embedding row, id `card`, plays three roles (each named where it is used):
        self.pad_id = card  # a clip's padded tail; the loss ignores it
        self.delay_id = card  # "no code yet / any more" at the ends of the delay pattern
        self.start_id = card  # the start frame, with `start_token`
        self.embed = nn.ModuleList(nn.Embedding(card + 1, d) for _ in range(config.n_codebooks))
        self.text_proj = DecodeLinear(config.text_dim, d)
        self.text_norm = nn.LayerNorm(d)
        self.null = nn.Parameter(torch.randn(d) * 0.02)
        self.bos = nn.Parameter(torch.randn(d) * 0.02) if config.conditioning != "prefix" else None
        if config.uses_pooled_text:
            self.pooled_proj = DecodeLinear(config.text_dim, d)
            self.pooled_norm = nn.LayerNorm(d)
            self.null_pooled = nn.Parameter(torch.randn(d) * 0.02)
        # what the prompt asks for, heard at every position (ssmusic.model.controls): tempo and key
        self.clock = BeatClock(d, config.tempo_clock_fps) if config.tempo_clock_fps else None
        self.key_embed = KeyEmbedding(d) if config.key_embedding else None
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.final_norm = RMSNorm(d) if config.final_norm else nn.Identity()
        self.heads = nn.ModuleList(DecodeLinear(d, card, bias=False) for _ in range(config.n_codebooks))
        # GPT-style init for projections; Mamba2 keeps mamba_ssm's own init. Code embeddings start at
        # unit scale (torch's and MusicGen's default), like the LayerNorm'd text and the sinusoidal
        # positions they sit beside: at GPT's 0.02 the token signal starts 50x below the positions
        # and a Transformer barely learns in a short run.
        for module in [self.text_proj, *self.heads, *([self.pooled_proj] if config.uses_pooled_text else [])]:
            init_linear(module)
        for embed in self.embed:
            nn.init.normal_(embed.weight, std=1.0)
        for module in self.modules():
            if isinstance(module, (SelfAttention, CrossAttention, MLP)):
                module.apply(init_linear)

    # ---- conditioning -------------------------------------------------------------------------
    @staticmethod
    def _null_rows(mask: torch.Tensor, null_cond: torch.Tensor | None) -> torch.Tensor:
        """Rows to condition on nothing: a caption with no tokens, or flagged by `null_cond`."""
        null_rows = ~mask.any(dim=1)
        return null_rows | null_cond.to(torch.bool) if null_cond is not None else null_rows

    def pooled(self, text: torch.Tensor | None, text_mask: torch.Tensor | None,
               null_cond: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        """The caption's sentence vector [B, d] added at every position (None unless the config
        uses it): masked mean of the token embeddings, Linear + LayerNorm; `null_pooled` for null rows."""
        if not self.config.uses_pooled_text:
            return None
        if text is None:
            return self.null_pooled.expand(batch, -1)
        if text_mask is None:
            text_mask = torch.ones(text.shape[:2], dtype=torch.bool, device=text.device)
        weights = text_mask.to(self.pooled_proj.weight.dtype)[..., None]
        mean = (text.to(weights.dtype) * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        vector = self.pooled_norm(self.pooled_proj(mean))
        null_rows = self._null_rows(text_mask.to(torch.bool), null_cond)
        return torch.where(null_rows[:, None], self.null_pooled.to(vector.dtype), vector)

    def condition(self, text: torch.Tensor | None, text_mask: torch.Tensor | None,
                  null_cond: torch.Tensor | None, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (condition [B,S,d], mask [B,S]), left-aligned. Null rows become [pad..., null]."""
        if text is None or self.config.conditioning == "pooled":
            cond = (self.null if text is None else self.bos).expand(batch, 1, -1)
            return cond, torch.ones(batch, 1, dtype=torch.bool, device=cond.device)
        cond = self.text_norm(self.text_proj(text.to(self.text_proj.weight.dtype)))
        if text_mask is None or not self.config.use_text_mask:
            mask = torch.ones(cond.shape[:2], dtype=torch.bool, device=cond.device)
        else:
            mask = text_mask.to(torch.bool)
        null_rows = self._null_rows(mask, null_cond)
        cond, mask = left_align(cond, mask)
        if null_rows.any():
            null_seq = torch.zeros_like(cond[:1])
            null_seq[:, -1] = self.null
            null_mask = torch.zeros_like(mask[:1])
            null_mask[:, -1] = True
            cond = torch.where(null_rows[:, None, None], null_seq, cond)
            mask = torch.where(null_rows[:, None], null_mask, mask)
        return cond, mask

    def _with_start(self, tokens: torch.Tensor) -> torch.Tensor:
        """Delayed input frames [B, K, T], behind a start frame if the config has one."""
        if not self.config.start_token:
            return tokens
        start = torch.full((*tokens.shape[:2], 1), self.start_id, dtype=tokens.dtype, device=tokens.device)
        return torch.cat([start, tokens], dim=-1)

    def _embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """[B, K, T] -> [B, T, d]"""
        return sum(embed(tokens[:, k]) for k, embed in enumerate(self.embed))

    def _add_positions(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        if self.config.positions == "none":
            return x
        return x + sinusoidal(positions, self.config.d_model).to(x.dtype)

    def _run(self, x: torch.Tensor, mask: torch.Tensor | None, condition: tuple[torch.Tensor, torch.Tensor],
             state: DecodeState | None = None) -> torch.Tensor:
        # a padding mask of all True is dropped (a host sync); under torch.compile it is kept: the same
        # values without the sync, and no graph break
        if mask is not None and not torch.compiler.is_compiling() and bool(mask.all()):
            mask = None
        for i, block in enumerate(self.blocks):
            x = block(x, mask, condition, state.blocks[i] if state is not None else None)
        return x

    uses_controls = property(lambda self: self.clock is not None or self.key_embed is not None)

    def _sequence(self, cond, cond_mask, audio, pooled=None, controls=None):
        """Input sequence and its mask; audio [B, T, d] are the embedded inputs, `controls` [B, 5] what
        the prompt asks for (ssmusic.model.controls; the position a frame is predicted at is its index)."""
        batch = audio.shape[0]
        if pooled is not None:
            audio = audio + pooled[:, None]
        if self.config.conditioning == "prefix":
            x = torch.cat([cond, audio], dim=1)
            ones = torch.ones(batch, audio.shape[1], dtype=torch.bool, device=x.device)
            mask = torch.cat([cond_mask, ones], dim=1)
        else:  # cross and pooled start from BOS (pooled: the caption's vector added to it too)
            bos = self.bos.expand(batch, 1, -1)
            x = torch.cat([bos if pooled is None else bos + pooled[:, None], audio], dim=1)
            mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        positions = (torch.cumsum(mask.long(), dim=1) - 1).clamp(min=0)
        if controls is not None and self.uses_controls:
            x = x + heard_controls(self, positions, controls).to(x.dtype)
        return self._add_positions(x, positions), mask

    # ---- training -----------------------------------------------------------------------------
    def forward(self, codes: torch.Tensor, text: torch.Tensor | None = None,
                text_mask: torch.Tensor | None = None, null_cond: torch.Tensor | None = None,
                controls: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher forcing: codes [B,K,T] -> logits [B,K,T,card]; logits[:,k,t] predicts codes[:,k,t].
        `controls` [B, 5]: what the prompt asks for (ssmusic.model.controls), for a model that hears it."""
        batch, n_codebooks, length = codes.shape
        if n_codebooks != self.config.n_codebooks:
            raise SsmusicError(f"codes have {n_codebooks} codebooks, the model expects {self.config.n_codebooks}")
        delayed = build_delay(codes, self.delay_id)
        cond, cond_mask = self.condition(text, text_mask, null_cond, batch)
        pooled = self.pooled(text, text_mask, null_cond, batch)
        x, mask = self._sequence(cond, cond_mask, self._embed(self._with_start(delayed[:, :, :-1])), pooled, controls)
        h = self._run(x, mask, (cond, cond_mask))
        start = (cond.shape[1] - 1 if self.config.conditioning == "prefix" else 0) + int(self.config.start_token)
        h = self.final_norm(h[:, start:])
        logits = torch.stack([head(h) for head in self.heads], dim=1)  # [B, K, T', card]
        return revert_delay(logits)

    def loss(self, codes: torch.Tensor, text: torch.Tensor | None = None, text_mask: torch.Tensor | None = None,
             null_cond: torch.Tensor | None = None, label_smoothing: float = 0.1,
             controls: torch.Tensor | None = None) -> torch.Tensor:
        return token_loss(self(codes, text, text_mask, null_cond, controls), codes, self.pad_id, label_smoothing)

    # ---- generation ---------------------------------------------------------------------------
    def allocate(self, batch: int, capacity: int, device: torch.device, dtype: torch.dtype) -> DecodeState:
        """Fresh decode state for `capacity` positions, every block's, starting at position 0."""
        return DecodeState([block.allocate(batch, capacity, device, dtype) for block in self.blocks],
                           torch.zeros(batch, dtype=torch.long, device=device))

    def set_decode_dtype(self, dtype: str) -> "MusicLM":
        """Weights inference streams: "float32" (the reference), "bfloat16" or "int8" (CPU) copies of
        every linear weight (ssmusic.model.decode_weights); the rest stays float32. Training is unaffected."""
        check_decode_dtype(dtype, self.null.device)
        for module in (m for m in self.modules() if isinstance(m, DecodeLinear)):
            module.set_decode_dtype(dtype)
        decoding.forget_graphs(self)  # captured steps read the replaced weight copies
        return self

    def set_state_dtype(self, dtype: str) -> "MusicLM":
        """How new decode states store the SSM state: "float32" (the reference) or "bfloat16" (half the
        bytes a many-prompt step moves; computed in float32, rounded once per step: ops.cpu_step)."""
        dtype = state_dtype(dtype)
        for module in (m for m in self.modules() if isinstance(m, Mamba2)):
            module.state_dtype = dtype
        decoding.forget_graphs(self)
        return self

    # On CUDA, generation captures the decode step (with its sampling) in a CUDA graph once per batch
    # shape and replays it per frame (ssmusic.model.graphs): a step is ~300 small kernels, launch-bound
    # from Python. False here (or on an instance) decodes eagerly, the reference.
    cuda_graphs = True

    def uses_cuda_graphs(self) -> bool:
        return self.cuda_graphs and self.null.device.type == "cuda"

    def _logits(self, h: torch.Tensor) -> torch.Tensor:
        h = self.final_norm(h)
        return torch.stack([head(h) for head in self.heads], dim=1)  # [B, K, card]

    def capacity(self, cond_len: int, input_frames: int, frames: int) -> int:
        """Positions a decode state needs: the condition (prefix) or BOS, the start frame if any, the
        `input_frames` prefilled and `frames` more."""
        first = cond_len if self.config.conditioning == "prefix" else 1
        return first + int(self.config.start_token) + input_frames + frames

    def prefill(self, cond: torch.Tensor, cond_mask: torch.Tensor, frames: int,
                pooled: torch.Tensor | None = None, tokens: torch.Tensor | None = None,
                state: DecodeState | None = None, controls: torch.Tensor | None = None) -> tuple[torch.Tensor, DecodeState]:
        """Run the condition (prefix, or BOS for cross/pooled, then the start frame if any), then
        optionally the delayed input frames `tokens` [R, K, P] in parallel, through fresh decode state
        with room for `frames` more (or through `state`, reused: its tensors are written in place).
        `controls` [R, 5]: the prompt's controls, kept in the state for the steps. -> (last hidden [R, d], state)"""
        rows, device = cond.shape[0], cond.device
        if tokens is None:
            tokens = torch.zeros(rows, self.config.n_codebooks, 0, dtype=torch.long, device=device)
        if state is None:
            state = self.allocate(rows, self.capacity(cond.shape[1], tokens.shape[-1], frames), device,
                                  self.null.dtype)
        tokens = self._with_start(tokens)
        x, mask = self._sequence(cond, cond_mask, self._embed(tokens), pooled, controls)
        h = self._run(x, mask, (cond, cond_mask), state)[:, -1]
        state.position.copy_(mask.long().sum(1))
        if self.uses_controls:
            state.controls = None if controls is None else store(state.controls, controls.to(state.position.device).float())
        return h, state

    def step(self, tokens: torch.Tensor, state: DecodeState, pooled: torch.Tensor | None = None) -> torch.Tensor:
        """Feed one frame of tokens [R, K] at the state's position -> next hidden [R, d]; the state
        (and its position) advance in place."""
        x = self._embed(tokens[..., None])[:, 0]
        if pooled is not None:
            x = x + pooled
        if self.config.positions != "none":
            x = x + sinusoidal(state.position, self.config.d_model).to(x.dtype)
        if state.controls is not None:
            x = x + heard_controls(self, state.position[:, None], state.controls)[:, 0].to(x.dtype)
        for i, block in enumerate(self.blocks):
            x = block.step(x, state.blocks[i])
        state.position.add_(1)
        return x

    @torch.no_grad()
    def recurrent_logits(self, codes: torch.Tensor, text: torch.Tensor | None = None,
                         text_mask: torch.Tensor | None = None, null_cond: torch.Tensor | None = None,
                         controls: torch.Tensor | None = None) -> torch.Tensor:
        """Same contract as forward(), computed token by token through the decode state. Equal to
        forward() up to float error: this is what makes generation exact."""
        batch = codes.shape[0]
        delayed = build_delay(codes, self.delay_id)
        cond, cond_mask = self.condition(text, text_mask, null_cond, batch)
        pooled = self.pooled(text, text_mask, null_cond, batch)
        h, state = self.prefill(cond, cond_mask, delayed.shape[-1], pooled=pooled, controls=controls)
        logits = []
        for t in range(delayed.shape[-1]):
            logits.append(self._logits(h))
            if t < delayed.shape[-1] - 1:
                h = self.step(delayed[:, :, t], state, pooled)
        return revert_delay(torch.stack(logits, dim=2))

    @torch.no_grad()
    def generate(self, text: torch.Tensor | None, text_mask: torch.Tensor | None, steps: int,
                 sampling: SamplingParams = SamplingParams(), prompt_codes: torch.Tensor | None = None,
                 callback: Callable[[int, int], None] | None = None, batch: int | None = None,
                 null_text: torch.Tensor | None = None, null_text_mask: torch.Tensor | None = None,
                 parallel_prefill: bool = True, controls: torch.Tensor | None = None) -> torch.Tensor:
        """Sample `steps` new frames -> codes [B, K, steps], decoding with recurrent state / KV cache.

        CFG runs conditional and null rows as one doubled batch; the null rows use the learned null
        vector, or `null_text` (shaped like `text`) when given, as models with
        `null_condition="empty_text"` need. `prompt_codes` [B, K, P] are continued from: run through
        the model in parallel (`parallel_prefill`, the default) or teacher-forced one step at a time
        (the reference; both give the same codes). `text=None` samples unconditionally (`batch` rows).
        `controls` [B, 5]: the prompt's controls (ssmusic.model.controls.control_rows), for a model that hears them."""
        frames = list(self.generate_frames(text, text_mask, steps, sampling, prompt_codes, callback, batch,
                                           null_text, null_text_mask, parallel_prefill, controls))
        return torch.stack(frames, dim=-1)

    @torch.no_grad()
    def generate_frames(self, text: torch.Tensor | None, text_mask: torch.Tensor | None, steps: int,
                        sampling: SamplingParams = SamplingParams(), prompt_codes: torch.Tensor | None = None,
                        callback: Callable[[int, int], None] | None = None, batch: int | None = None,
                        null_text: torch.Tensor | None = None, null_text_mask: torch.Tensor | None = None,
                        parallel_prefill: bool = True, controls: torch.Tensor | None = None) -> Iterator[torch.Tensor]:
        """Like generate(), but yields each new frame's codes [B, K] as soon as all its codebooks
        are sampled (with the delay pattern, K - 1 steps after its first codebook)."""
        if steps < 1:
            raise SsmusicError(f"steps: expected >= 1, got {steps}")
        was_training = self.training
        self.eval()
        try:
            if text is not None:
                batch = text.shape[0]
            elif prompt_codes is not None:
                batch = prompt_codes.shape[0]
            batch = batch or 1
            guided = text is not None and sampling.guided
            text, text_mask, null_cond = self._guidance_rows(text, text_mask, null_text, null_text_mask, batch, guided)
            rows = 2 * batch if guided else batch
            cond, cond_mask = self.condition(text, text_mask, null_cond, rows)
            pooled = self.pooled(text, text_mask, null_cond, rows)
            if controls is not None and self.uses_controls:  # both CFG halves hear them: they are not text
                controls = (torch.cat([controls, controls]) if guided else controls).to(cond.device).float()
            yield from decoding.sample_frames(self, cond, cond_mask, pooled, batch, steps, sampling, guided,
                                              prompt_codes, callback, parallel_prefill, static=self.uses_cuda_graphs(),
                                              controls=controls if self.uses_controls else None)
        finally:
            self.train(was_training)

    def _guidance_rows(self, text, text_mask, null_text, null_text_mask, batch: int, guided: bool):
        """(text, text_mask, null_cond) with the unconditional rows appended when guided."""
        if not guided:
            return text, text_mask, None
        if null_text is not None:
            if null_text.shape != text.shape:
                raise SsmusicError(f"null_text: expected the shape of text {tuple(text.shape)}, "
                                   f"got {tuple(null_text.shape)}")
            if (text_mask is None) != (null_text_mask is None):
                raise SsmusicError("text_mask and null_text_mask: give both or neither")
            mask = None if text_mask is None else torch.cat([text_mask, null_text_mask])
            return torch.cat([text, null_text]), mask, None
        if self.config.null_condition == "empty_text":
            raise SsmusicError("this model's unconditional branch is the encoded empty caption: pass "
                               "null_text (TextToMusic does), or cfg_scale=1")
        mask = None if text_mask is None else torch.cat([text_mask, text_mask])
        return torch.cat([text, text]), mask, torch.arange(2 * batch, device=text.device) >= batch

    # ---- persistence --------------------------------------------------------------------------
    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False):
        """Also takes the earlier, unnamed block layout (blocks.rename_legacy_keys): old checkpoints resume."""
        return super().load_state_dict(rename_legacy_keys(dict(state_dict), self.config), strict, assign)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def save_pretrained(self, directory: str | Path) -> None:
        """Write `lm_config.json` + `model.safetensors` (each atomically)."""
        from ssmusic.io.tensors import save_tensors

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_config(self.config, directory / "lm_config.json")
        save_tensors({k: v.detach() for k, v in self.state_dict().items()}, directory / "model.safetensors")

    @classmethod
    def from_pretrained(cls, directory: str | Path, map_location: str | torch.device = "cpu") -> "MusicLM":
        from ssmusic.io.tensors import check_shapes, load_tensors

        directory = Path(directory)
        if directory.is_file():
            directory = directory.parent
        config = load_config(LMConfig, directory / "lm_config.json")
        model = cls(config)
        state = rename_legacy_keys(load_tensors(directory / "model.safetensors", map_location), config)
        if (missing := set(model.state_dict()) - set(state)) | (unexpected := set(state) - set(model.state_dict())):
            raise SsmusicError(f"{directory / 'model.safetensors'}: weights do not fit lm_config.json "
                               f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})")
        check_shapes(model.state_dict(), state, str(directory / "model.safetensors"), "lm_config.json")
        model.load_state_dict(state)
        return model.to(map_location).eval()
