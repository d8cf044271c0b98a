"""`ssmusic train`: the training loop, in plain sight.

The paper's recipe by default: AdamW (wd 0.02, none on norms/biases/embeddings), linear warmup then
cosine decay, cross-entropy with label smoothing 0.1 (pad ignored), caption dropout p = 0.1 (the
whole caption replaced by the learned null, so classifier-free guidance is trained), gradient
accumulation and clipping, bf16 autocast on CUDA / fp32 on CPU. Under `torchrun` it trains with
DistributedDataParallel (rank 0 logs and saves). Checkpoints resume exactly: model, optimizer,
schedule, RNG states and the position in the data order are all saved.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

import torch

from ssmusic.atomic import atomic_path
from ssmusic.checkpoint import (capture_rng, export_model, latest_checkpoint, load_checkpoint, restore_rng,
                                save_checkpoint)
from ssmusic.config import LMConfig, from_dict, read_json, write_json_atomic
from ssmusic.data import CodesDataset, collate
from ssmusic.errors import SsmusicError
from ssmusic.lm import MusicLM, token_loss

# The paper trains a 281M model for 20k+ steps at lr 1e-4. Short CPU runs of the small presets
# learn far too slowly at that rate, so they default higher (override with --lr).
DEFAULT_LR = {"tiny": 1e-3, "small": 5e-4, "paper": 1e-4}


@dataclass
class TrainConfig:
    preset: str = "small"
    backbone: str = "simba"
    conditioning: str = "prefix"
    channel_mixer: str = "mlp"
    codebooks: int = 1  # model the first k codebooks of the dataset (the paper: 1)
    model_overrides: dict = field(default_factory=dict)  # any LMConfig field, e.g. {"d_model": 256}
    steps: int = 1000
    batch_size: int = 8
    grad_accum: int = 1
    lr: float = 0.0  # 0 = the preset's default (DEFAULT_LR)
    weight_decay: float = 0.02
    adam_eps: float = 1e-7
    warmup_steps: int = 500  # capped at 10% of the run
    label_smoothing: float = 0.1
    caption_dropout: float = 0.1
    text_lr_scale: float = 1.0  # learning-rate multiplier of the text projection (and pooled vector)
    grad_clip: float = 1.0
    crop_frames: int = 0  # train on random windows of this many frames (0 = whole clips)
    # validate a cropped run on windows of crop_frames (what it trained on); False: on whole clips
    # (the length a positionless SSM generates at, as the default model's log does)
    eval_windows: bool = True
    eval_every: int = 100
    eval_batches: int = 0  # 0 = the whole valid split
    save_every: int = 500
    keep_checkpoints: int = 3
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    tensorboard: bool = False
    # fine-tuning (ssmusic.finetune): start from this model (its config defines the architecture);
    # LoRA adapters of this rank (0 = full fine-tuning), scaled by alpha (0 = the rank); frozen parts
    init_from: str = ""
    lora_rank: int = 0
    lora_alpha: float = 0.0
    freeze: str = ""  # comma list of embeddings, text, heads

    def learning_rate(self) -> float:
        return self.lr or DEFAULT_LR.get(self.preset, 1e-4)

    def lm_config(self, manifest: dict) -> LMConfig:
        values = dict(backbone=self.backbone, conditioning=self.conditioning, card=manifest["card"],
                      n_codebooks=self.codebooks, text_dim=manifest["text_dim"] or 384)
        if self.backbone == "simba":
            values["channel_mixer"] = self.channel_mixer
        return LMConfig.preset(self.preset, **values, **self.model_overrides)


def lr_at(step: int, config: TrainConfig) -> float:
    warmup = min(config.warmup_steps, max(1, config.steps // 10))
    if step < warmup:
        return config.learning_rate() * (step + 1) / warmup
    progress = (step - warmup) / max(1, config.steps - warmup)
    return config.learning_rate() * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Decay matrices only; never norms, biases, embeddings or the learned null/BOS vectors."""
    decay, no_decay = [], []
    for module_name, module in model.named_modules():
        # biases by name: a module may store them as matrices (EinFFT's complex b1/b2 are [2, n, h])
        biases = ("bias", *getattr(module, "no_weight_decay", ()))
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad:  # frozen by a fine-tune (--freeze, LoRA's base weights)
                continue
            is_embedding = module_name.startswith("embed.")
            is_bias = name in biases or name.endswith("_bias")
            (decay if param.dim() >= 2 and not is_embedding and not is_bias else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [group for group in groups if group["params"]]


# The modules that turn a caption into the model's condition (their learning rate can be scaled)
TEXT_MODULES = ("text_proj", "text_norm", "pooled_proj", "pooled_norm", "null", "null_pooled")


def scale_text_lr(groups: list[dict], model: torch.nn.Module, scale: float) -> list[dict]:
    """Split each group so the text-conditioning parameters get `scale` x the learning rate
    (group["lr_scale"], applied by the schedule). Scale 1 leaves the groups as they are."""
    if scale == 1.0:
        return groups
    text = {id(p) for n, p in model.named_parameters() if n.split(".")[0] in TEXT_MODULES}
    out = []
    for group in groups:
        for is_text in (False, True):
            params = [p for p in group["params"] if (id(p) in text) == is_text]
            if params:
                out.append({**group, "params": params, "lr_scale": scale if is_text else 1.0})
    return out


class DataOrder:
    """A seeded permutation per epoch, sharded across ranks; its position is checkpointed."""

    def __init__(self, size: int, seed: int, rank: int = 0, world: int = 1) -> None:
        if size < world:
            raise SsmusicError(f"the train split has {size} clips, fewer than the {world} processes")
        self.size, self.seed, self.rank, self.world = size, seed, rank, world
        self.epoch, self.offset = 0, 0

    def _order(self) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(self.size, generator=g).tolist()[self.rank::self.world]

    def take(self, n: int) -> list[int]:
        out: list[int] = []
        while len(out) < n:
            order = self._order()
            chunk = order[self.offset:self.offset + n - len(out)]
            out.extend(chunk)
            self.offset += len(chunk)
            if self.offset >= len(order):
                self.epoch, self.offset = self.epoch + 1, 0
        return out


def _distributed() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend)
    return (torch.distributed.get_rank(), world) if world > 1 else (0, 1)


def _device(config: TrainConfig, rank: int) -> torch.device:
    if config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available()):
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)) % max(1, torch.cuda.device_count()))
    return torch.device("cpu")


def random_crop(codes: torch.Tensor, crop: int, pad_id: int, generator: torch.Generator) -> torch.Tensor:
    """A random window of `crop` frames per row of codes [B, K, T]. Padding is only ever a clip's
    tail; a window inside it has no target (loss 0/0 = NaN), so windows lie inside the valid frames
    when those are longer than `crop`, else start at 0 (all valid frames)."""
    valid = (codes[:, 0] != pad_id).sum(-1)
    last_start = (valid - crop).clamp(min=0)
    starts = (torch.rand(codes.shape[0], generator=generator) * (last_start + 1)).long()
    index = starts[:, None] + torch.arange(crop)
    return codes.gather(2, index[:, None, :].expand(-1, codes.shape[1], -1))


def _batch(dataset: CodesDataset, indices: list[int], device, crop: int, generator: torch.Generator, encoder):
    batch = collate([dataset[i] for i in indices])
    codes = batch["codes"]
    if crop and codes.shape[-1] > crop:
        codes = random_crop(codes, crop, dataset.manifest["card"], generator)
    if "text" in batch:
        text, mask = batch["text"], batch["text_mask"]
    else:
        text, mask = encoder.encode(batch["caption"])
    return codes.to(device), text.to(device), mask.to(device)


def _windows(codes: torch.Tensor, size: int, per_clip: tuple[torch.Tensor, ...]):
    """[B, K, T] -> the clips' consecutive whole windows [B * (T // size), K, size] (a shorter tail is
    dropped), each row of `per_clip` repeated once per window. A model trained on windows is then
    validated on positions 0..size-1 only: sinusoidal positions beyond the window were never trained."""
    if codes.shape[-1] <= size:
        return codes, per_clip
    n = codes.shape[-1] // size
    batch, books = codes.shape[:2]
    windows = codes[..., : n * size].reshape(batch, books, n, size).transpose(1, 2).reshape(batch * n, books, size)
    return windows, tuple(t.repeat_interleave(n, dim=0) for t in per_clip)


@torch.no_grad()
def evaluate(model: MusicLM, dataset: CodesDataset, config: TrainConfig, device, encoder) -> dict[str, float]:
    """Validation cross-entropy per token (no label smoothing, no caption dropout) on whole clips, or
    with `crop_frames` on the clips' consecutive windows of that length (see _windows), three ways:
    `val_loss` with each clip's own caption, `val_loss_shuffled` with another clip's caption (the
    split rotated by half its length, so a clip never keeps its own), and `val_loss_null` with the
    null condition. `cond_gap` = shuffled - true: near zero for a model that ignores its text."""
    model.eval()
    size = config.batch_size
    limit = len(dataset) if not config.eval_batches else min(len(dataset), config.eval_batches * size)
    shift = max(1, len(dataset) // 2) if len(dataset) > 1 else 0
    totals, count = {"val_loss": 0.0, "val_loss_shuffled": 0.0, "val_loss_null": 0.0}, 0
    for start in range(0, limit, size):
        indices = list(range(start, min(limit, start + size)))
        codes, text, mask = _batch(dataset, indices, device, 0, None, encoder)
        _, other_text, other_mask = _batch(dataset, [(i + shift) % len(dataset) for i in indices], device, 0,
                                           None, encoder)
        if config.crop_frames and config.eval_windows:
            codes, (text, mask, other_text, other_mask) = _windows(codes, config.crop_frames,
                                                                   (text, mask, other_text, other_mask))
        null = torch.ones(codes.shape[0], dtype=torch.bool, device=device)
        valid = int((codes != model.special).sum())
        for key, (t, m, n) in {"val_loss": (text, mask, None), "val_loss_shuffled": (other_text, other_mask, None),
                               "val_loss_null": (text, mask, null)}.items():
            with _autocast(device):
                logits = model(codes, t, m, n)
            totals[key] += float(token_loss(logits, codes, model.special)) * valid
        count += valid
    model.train()
    losses = {key: round(value / max(1, count), 5) for key, value in totals.items()}
    losses["cond_gap"] = round(losses["val_loss_shuffled"] - losses["val_loss"], 5)
    return losses


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def pipeline_record(manifest: dict, lm_config: LMConfig, clip_frames: int) -> dict:
    return {"codec": manifest["codec"], "text_encoder": manifest["text_encoder"],
            "sample_rate": manifest["sample_rate"], "frame_rate": manifest["frame_rate"],
            "card": manifest["card"], "n_codebooks": lm_config.n_codebooks, "text_dim": lm_config.text_dim,
            "clip_seconds": clip_frames / manifest["frame_rate"]}


# Flags that may change on --resume: they do not change what the run computes. Any other flag
# that differs from the run's is refused rather than silently ignored.
RESUME_MAY_CHANGE = ("steps", "eval_every", "eval_batches", "save_every", "keep_checkpoints", "device",
                     "tensorboard")


def _flag(name: str) -> str:
    return "--model" if name == "model_overrides" else "--" + name.replace("_", "-")


def resume_config(run_dir: Path, config: TrainConfig, given: Iterable[str], announce: bool = True) -> TrainConfig:
    """The run's saved config with the fields in `given` (those the user set) applied where allowed.
    `steps` 0 keeps the run's."""
    saved = run_dir / "train_config.json"
    if not saved.is_file():
        raise SsmusicError(f"{run_dir}: nothing to resume (train_config.json is missing)")
    previous = from_dict(TrainConfig, read_json(saved), str(saved))
    changes = {}
    for name in sorted(given):
        new, old = getattr(config, name), getattr(previous, name)
        if new == old or (name == "steps" and not new):
            continue
        if name not in RESUME_MAY_CHANGE:
            raise SsmusicError(f"--resume: {_flag(name)} {new!r} conflicts with the run's {old!r} ({saved}); "
                               f"drop {_flag(name)} to continue the run, or train into a new --out")
        changes[name] = new
        if announce:
            print(f"resume: {_flag(name)} changed from {old!r} to {new!r}")
    return dataclasses.replace(previous, **changes)


def truncate_metrics(path: Path, step: int) -> None:
    """Keep the rows up to `step` (the checkpoint a resumed run restarts from): rows written after it
    would appear twice, and a half-written last line is dropped."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("step", 0) <= step:
            keep.append(line + "\n")
    with atomic_path(path) as tmp:
        tmp.write_text("".join(keep))


def train(data_dir: str | Path, run_dir: str | Path, config: TrainConfig, resume: bool = False,
          stop_after: int | None = None, progress: bool = True, given: Iterable[str] = ("steps",)) -> Path:
    """Train (or resume) a run; returns the final model directory (RUN_DIR/final), or the latest
    checkpoint when `stop_after` ends the run early. On resume, `given` names the fields of `config`
    the caller set (the CLI: the flags on the command line); see resume_config."""
    from tqdm import tqdm

    data_dir, run_dir = Path(data_dir), Path(run_dir)
    rank, world = _distributed()
    if resume:
        config = resume_config(run_dir, config, given, announce=rank == 0)
    init = None
    if config.init_from or config.lora_rank or config.freeze:
        from ssmusic import finetune
        from ssmusic.data import load_manifest

        finetune.check_flags(config)
        init = finetune.load_init(config.init_from)
        config = config if resume else finetune.configure(config, init, given)
        finetune.check_dataset(data_dir, load_manifest(data_dir), init)  # before anything is built
    device = _device(config, rank)
    if not resume and (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").iterdir()):
        raise SsmusicError(f"{run_dir}: already holds a run; pass --resume to continue it or choose another --out")
    train_set = CodesDataset(data_dir, "train", n_codebooks=config.codebooks)
    valid_set = CodesDataset(data_dir, "valid", n_codebooks=config.codebooks) if train_set.manifest["splits"].get("valid") else None
    manifest = train_set.manifest if init is None else finetune.check_dataset(data_dir, train_set.manifest, init)
    encoder = None
    if not manifest.get("text_cached"):
        from ssmusic.text import load_text_encoder

        encoder = load_text_encoder(manifest.get("text_encoder"), device=device)
        manifest = {**manifest, "text_encoder": encoder.name, "text_dim": encoder.dim}
    lm_config = config.lm_config(manifest) if init is None else finetune.lm_config(config, init)
    clip_frames = config.crop_frames or manifest["clip_frames"]
    pipeline = pipeline_record(manifest, lm_config, clip_frames)

    torch.manual_seed(config.seed)
    model = MusicLM(lm_config)
    weights = model  # what checkpoints save and load (a LoRA run: merged model + adapters)
    if init is not None:
        pipeline.update(finetune.sampling_defaults(init))
        weights = finetune.prepare_model(model, config, init, load=config.lora_rank or latest_checkpoint(run_dir) is None)
    model = model.to(device)
    groups = scale_text_lr(param_groups(model, config.weight_decay), model, config.text_lr_scale)
    optimizer = torch.optim.AdamW(groups, lr=config.learning_rate(),
                                  eps=config.adam_eps, fused=device.type == "cuda" or None)
    order = DataOrder(len(train_set), config.seed, rank, world)
    crop_rng = torch.Generator().manual_seed(config.seed + 1)
    dropout_rng = torch.Generator().manual_seed(config.seed + 2)
    step, elapsed = 0, 0.0
    checkpoint = latest_checkpoint(run_dir) if resume else None
    if checkpoint is not None:
        saved_pipeline = read_json(checkpoint / "pipeline.json")
        for key in ("codec", "card", "text_encoder"):
            if saved_pipeline.get(key) != pipeline[key]:
                raise SsmusicError(f"{data_dir}: dataset {key} {pipeline[key]!r} does not match the run's "
                                   f"{saved_pipeline.get(key)!r} ({checkpoint})")
        state, rng = load_checkpoint(checkpoint, weights, optimizer)
        step, elapsed = state["step"], state["elapsed"]
        order.epoch, order.offset = state["epoch"], state["offset"]
        restore_rng(rng, device, {"crop": crop_rng, "dropout": dropout_rng})
    if resume and rank == 0:
        truncate_metrics(run_dir / "metrics.jsonl", step)
    if rank == 0:
        write_json_atomic(run_dir / "train_config.json", asdict(config))
    wrapped = model
    if world > 1:
        wrapped = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True)
    writer = None
    if config.tensorboard and rank == 0:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(run_dir / "tensorboard"))

    def save(at_step: int) -> Path:
        rng = capture_rng(device, {"crop": crop_rng, "dropout": dropout_rng})
        state = {"step": at_step, "elapsed": elapsed, "epoch": order.epoch, "offset": order.offset}
        return save_checkpoint(run_dir, at_step, weights, optimizer, state, rng, pipeline, asdict(config),
                               keep=config.keep_checkpoints)

    if rank == 0:
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        print(f"{lm_config.backbone}/{lm_config.conditioning}: {model.num_parameters() / 1e6:.2f}M parameters "
              f"({trainable / 1e6:.3g}M trained), {len(train_set)} train clips, {world} process(es) on {device}"
              + (f", from {init.directory}" if init else ""))
    end = config.steps if stop_after is None else min(config.steps, stop_after)
    bar = tqdm(total=config.steps, initial=step, desc="training", unit="step", disable=not progress or rank != 0)
    if init is not None and step == 0 and valid_set is not None and rank == 0:  # the model before fine-tuning
        with (run_dir / "metrics.jsonl").open("w") as handle:
            handle.write(json.dumps({"step": 0, **evaluate(model, valid_set, config, device, encoder)}) + "\n")
    model.train()
    last_saved = checkpoint
    while step < end:
        started = time.time()
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, config) * group.get("lr_scale", 1.0)
        tokens, loss_sum = 0, 0.0
        for _ in range(config.grad_accum):
            codes, text, mask = _batch(train_set, order.take(config.batch_size), device, config.crop_frames,
                                       crop_rng, encoder)
            null = torch.rand(codes.shape[0], generator=dropout_rng) < config.caption_dropout
            with _autocast(device):
                logits = wrapped(codes, text, mask, null.to(device))
            loss = token_loss(logits, codes, model.special, config.label_smoothing)
            if not torch.isfinite(loss.detach()):
                where = f"; the last good checkpoint is {last_saved}" if last_saved else ""
                raise SsmusicError(f"step {step}: loss is {float(loss.detach())}, stopping{where}")
            (loss / config.grad_accum).backward()
            loss_sum += float(loss.detach()) / config.grad_accum
            tokens += int((codes != model.special).sum())
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        seconds = time.time() - started
        elapsed += seconds
        record = {"step": step, "loss": round(loss_sum, 5), "lr": optimizer.param_groups[0]["lr"],
                  "grad_norm": round(float(grad_norm), 4), "tokens_per_s": round(tokens * world / seconds, 1),
                  "wall_s": round(elapsed, 2)}
        if valid_set is not None and (step % config.eval_every == 0 or step == config.steps):
            record.update(evaluate(model, valid_set, config, device, encoder))
        if rank == 0:
            with (run_dir / "metrics.jsonl").open("a") as handle:
                handle.write(json.dumps(record) + "\n")
            if writer is not None:
                for key, value in record.items():
                    if key != "step":
                        writer.add_scalar(key, value, step)
            bar.set_postfix(loss=f"{loss_sum:.3f}", tok_s=f"{record['tokens_per_s']:.0f}")
            bar.update(1)
            if step % config.save_every == 0 or step == end:
                last_saved = save(step)
    bar.close()
    if world > 1:
        torch.distributed.barrier()
    if rank == 0 and step >= config.steps:
        export_model(last_saved, run_dir / "final")
        return run_dir / "final"
    return last_saved


def config_from_args(args) -> TrainConfig:
    overrides = {}
    for item in args.model or []:
        key, _, value = item.partition("=")
        if not value:
            raise SsmusicError(f"--model {item!r}: expected FIELD=VALUE, e.g. --model d_model=256")
        overrides[key] = json.loads(value) if value[0].isdigit() or value in ("true", "false") else value
    return TrainConfig(preset=args.preset, backbone=args.backbone, conditioning=args.conditioning,
                       channel_mixer=args.channel_mixer, codebooks=args.codebooks, model_overrides=overrides,
                       steps=args.steps if args.steps is not None else (0 if args.resume else 1000),
                       batch_size=args.batch_size, grad_accum=args.grad_accum, lr=args.lr,
                       warmup_steps=args.warmup_steps, caption_dropout=args.caption_dropout,
                       text_lr_scale=args.text_lr_scale,
                       crop_frames=args.crop_frames, eval_windows=not args.eval_whole_clips, eval_every=args.eval_every, eval_batches=args.eval_batches,
                       save_every=args.save_every, seed=args.seed, device=args.device,
                       tensorboard=args.tensorboard, init_from=getattr(args, "init_from", None) or "",
                       lora_rank=getattr(args, "lora_rank", 0), lora_alpha=getattr(args, "lora_alpha", 0.0),
                       freeze=getattr(args, "freeze", None) or "")


def run(args) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    given = {"model_overrides" if dest == "model" else dest for dest in getattr(args, "given", ("steps",))}
    out = train(args.data_dir, args.out, config_from_args(args), resume=args.resume, stop_after=args.stop_after,
                given=given & fields)
    if out is not None:
        print(f"model: {out}")
    return 0
