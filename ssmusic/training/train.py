"""`ssmusic train`: the training loop, in plain sight.

The paper's recipe by default (AdamW wd 0.02, linear warmup then cosine decay, cross-entropy with
label smoothing 0.1, pad ignored), with this project's own choices (docs/training.md): no weight
decay on norms/biases/embeddings, and caption dropout p = 0.1 that replaces the whole caption by the
learned null, so classifier-free guidance is trained; gradient accumulation and clipping, bf16
autocast on CUDA / fp32 on CPU. Under `torchrun` it trains with
DistributedDataParallel (rank 0 logs and saves). Checkpoints resume exactly: model, optimizer,
schedule, RNG states and the position in the data order are all saved. With `--init-from` the run
fine-tunes a trained model (ssmusic.training.finetune: its weights and architecture, --freeze, LoRA adapters).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

import torch

from ssmusic.checks import check_device, check_writable
from ssmusic.training import distributed, finetune
from ssmusic.io.atomic import write_json_atomic
from ssmusic.training.checkpoint import capture_rng, export_model, latest_checkpoint, save_checkpoint
from ssmusic.config import LMConfig
from ssmusic.data.datasets import CodesDataset, DataOrder, load_batch
from ssmusic.model.controls import CONTROL_DROPOUT, drop_controls
from ssmusic.errors import SsmusicError
from ssmusic.model.lm import MusicLM, token_loss
from ssmusic.training.optim import lr_at, param_groups, scale_text_lr
from ssmusic.training.resume import restore, resume_config, truncate_metrics
from ssmusic.training.config import TrainConfig
from ssmusic.threads import set_threads
from ssmusic.training.validation import evaluate


def pipeline_record(manifest: dict, lm_config: LMConfig, clip_frames: int) -> dict:
    return {"codec": manifest["codec"], "text_encoder": manifest["text_encoder"],
            "sample_rate": manifest["sample_rate"], "frame_rate": manifest["frame_rate"],
            "card": manifest["card"], "n_codebooks": lm_config.n_codebooks, "text_dim": lm_config.text_dim,
            "clip_seconds": clip_frames / manifest["frame_rate"]}


@dataclass
class TrainingData:
    """The splits a run reads, the text encoder when captions are not cached, and what the model
    directory will record about them."""

    train: CodesDataset
    valid: CodesDataset | None
    encoder: Any
    lm_config: LMConfig
    pipeline: dict
    init: finetune.InitModel | None = None  # the model a fine-tune starts from

    @classmethod
    def load(cls, data_dir: Path, config: TrainConfig, device: torch.device,
             init: finetune.InitModel | None = None) -> "TrainingData":
        train_set = CodesDataset(data_dir, "train", n_codebooks=config.codebooks)
        has_valid = train_set.manifest["splits"].get("valid")
        valid_set = CodesDataset(data_dir, "valid", n_codebooks=config.codebooks) if has_valid else None
        manifest = train_set.manifest if init is None else finetune.check_dataset(data_dir, train_set.manifest, init)
        encoder = None
        if not manifest.get("text_cached"):
            from ssmusic.text import load_text_encoder

            encoder = load_text_encoder(manifest.get("text_encoder"), device=device)
            manifest = {**manifest, "text_encoder": encoder.name, "text_dim": encoder.dim}
        lm_config = config.lm_config(manifest) if init is None else finetune.lm_config(config, init)
        pipeline = pipeline_record(manifest, lm_config, config.crop_frames or manifest["clip_frames"])
        if init is not None:
            pipeline.update(finetune.sampling_defaults(init))
        return cls(train_set, valid_set, encoder, lm_config, pipeline, init)


@dataclass
class TrainingState:
    """What the steps change and a checkpoint saves: weights, optimizer, data order, random streams."""

    model: MusicLM
    optimizer: torch.optim.Optimizer
    order: DataOrder
    generators: dict[str, torch.Generator]  # crop windows, caption dropout
    step: int = 0
    elapsed: float = 0.0
    last_saved: Path | None = None
    weights: Any = None  # what checkpoints save and load: the model, or a LoRA run's finetune.LoraWeights

    def __post_init__(self) -> None:
        if self.weights is None:
            self.weights = self.model

    @classmethod
    def fresh(cls, config: TrainConfig, data: TrainingData, device: torch.device, rank: int,
              world: int, load_init: bool = True) -> "TrainingState":
        """A new model (a fine-tune's: with the init weights unless `load_init` is False, as when a
        checkpoint will hold them; frozen parts, LoRA adapters), its optimizer, data order and RNGs."""
        torch.manual_seed(config.seed)
        model = MusicLM(data.lm_config)
        weights = model if data.init is None else finetune.prepare_model(model, config, data.init, load=load_init)
        model = model.to(device)
        groups = scale_text_lr(param_groups(model, config.weight_decay), model, config.text_lr_scale)
        optimizer = torch.optim.AdamW(groups, lr=config.learning_rate(),
                                      eps=config.adam_eps, fused=device.type == "cuda" or None)
        generators = {"crop": torch.Generator().manual_seed(config.seed + 1),
                      "dropout": torch.Generator().manual_seed(config.seed + 2)}
        return cls(model, optimizer, DataOrder(len(data.train), config.seed, rank, world), generators,
                   weights=weights)

    def resume_from(self, checkpoint: Path, data_dir: Path, data: TrainingData, device: torch.device) -> None:
        state = restore(checkpoint, data_dir, data.pipeline, self.weights, self.optimizer, device, self.generators)
        self.step, self.elapsed = state["step"], state["elapsed"]
        self.order.epoch, self.order.offset = state["epoch"], state["offset"]
        self.last_saved = checkpoint

    def save(self, run_dir: Path, data: TrainingData, config: TrainConfig, device: torch.device) -> None:
        rng = capture_rng(device, self.generators)
        state = {"step": self.step, "elapsed": self.elapsed, "epoch": self.order.epoch, "offset": self.order.offset}
        self.last_saved = save_checkpoint(run_dir, self.step, self.weights, self.optimizer, state, rng, data.pipeline,
                                          asdict(config), keep=config.keep_checkpoints)


class MetricsLog:
    """RUN_DIR/metrics.jsonl (one line per step), its TensorBoard mirror and the progress bar;
    only rank 0 writes."""

    def __init__(self, run_dir: Path, config: TrainConfig, initial: int, enabled: bool, progress: bool) -> None:
        from tqdm import tqdm

        self.path, self.enabled, self.writer = run_dir / "metrics.jsonl", enabled, None
        if config.tensorboard and enabled:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(run_dir / "tensorboard"))
        self.bar = tqdm(total=config.steps, initial=initial, desc="training", unit="step",
                        disable=not progress or not enabled)

    def write(self, record: dict) -> None:
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in record.items():
                if key != "step":
                    self.writer.add_scalar(key, value, record["step"])
        self.bar.set_postfix(loss=f"{record['loss']:.3f}", tok_s=f"{record['tokens_per_s']:.0f}")
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def train_step(state: TrainingState, wrapped: torch.nn.Module, data: TrainingData, config: TrainConfig,
               device: torch.device, world: int) -> dict:
    """One optimizer step over `grad_accum` batches -> its metrics record."""
    started = time.time()
    optimizer, model = state.optimizer, state.model
    for group in optimizer.param_groups:
        group["lr"] = lr_at(state.step, config) * group.get("lr_scale", 1.0)
    tokens, loss_sum = 0, 0.0
    for _ in range(config.grad_accum):
        codes, text, mask, controls = load_batch(data.train, state.order.take(config.batch_size), device,
                                              config.crop_frames, state.generators["crop"], data.encoder)
        null = torch.rand(codes.shape[0], generator=state.generators["dropout"]) < config.caption_dropout
        heard = None
        if model.uses_controls:  # drawn only for such a model: other runs keep their random streams
            heard = drop_controls(controls, CONTROL_DROPOUT, state.generators["dropout"])
        with distributed.autocast(device):
            logits = wrapped(codes, text, mask, null.to(device), heard)
        loss = token_loss(logits, codes, model.pad_id, config.label_smoothing)
        if not torch.isfinite(loss.detach()):
            where = f"; the last good checkpoint is {state.last_saved}" if state.last_saved else ""
            raise SsmusicError(f"step {state.step}: loss is {float(loss.detach())}, stopping{where}")
        (loss / config.grad_accum).backward()
        loss_sum += float(loss.detach()) / config.grad_accum
        tokens += int((codes != model.pad_id).sum())
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    state.step += 1
    seconds = time.time() - started
    state.elapsed += seconds
    record = {"step": state.step, "loss": round(loss_sum, 5), "lr": optimizer.param_groups[0]["lr"],
              "grad_norm": round(float(grad_norm), 4), "tokens_per_s": round(tokens * world / seconds, 1),
              "wall_s": round(state.elapsed, 4)}  # 0.1 ms: tiny steps on a fast machine are a few ms
    if config.compile:  # what torch.compile has cost this process so far (the first steps' wall_s hold it)
        record["compile_s"] = distributed.compile_seconds()
    return record


def warn_without_validation(data_dir: Path, fine_tune: bool) -> None:
    """A run with no valid split logs no validation loss at all (a fine-tune: no before and after)."""
    print(f"warning: {data_dir} has no validation clips: no validation loss will be logged"
          + (", so this fine-tune shows no before and after" if fine_tune else "")
          + ". Give some files split=valid in the captions CSV and prepare again (prepare holds one out "
          "by itself from 10 files on).", file=sys.stderr, flush=True)


def validation_summary(metrics: Path) -> str:
    """The first and the latest validation loss of a run's log: a fine-tune's first is its model before."""
    records = [r for r in map(json.loads, metrics.read_text().splitlines()) if "val_loss" in r]
    if not records:
        return "validation loss: none logged yet (--eval-every)"
    first, last = records[0], records[-1]
    return (f"validation loss {first['val_loss']:.4f} at step {first['step']} -> {last['val_loss']:.4f} at step "
            f"{last['step']} (metrics.jsonl)")


def train(data_dir: str | Path, run_dir: str | Path, config: TrainConfig, resume: bool = False,
          stop_after: int | None = None, progress: bool = True, given: Iterable[str] = ("steps",)) -> Path:
    """Train (or resume) a run; returns the final model directory (RUN_DIR/final), or the latest
    checkpoint when `stop_after` ends the run early. On resume, `given` names the fields of `config`
    the caller set (the CLI: the flags on the command line); see resume_config."""
    data_dir, run_dir = Path(data_dir), Path(run_dir)
    if config.device != "auto":  # one line now, not a traceback from deep in torch
        check_device(config.device)
    check_writable([run_dir / "train_config.json"], flag="--out")
    rank, world = distributed.setup(config)
    if resume:
        config = resume_config(run_dir, config, given, announce=rank == 0)
    if not isinstance(config.steps, int) or config.steps < 1:
        raise SsmusicError(f"--steps: expected an integer >= 1, got {config.steps}")
    config, init = finetune.setup(data_dir, config, resume, given)  # checked before anything is built
    device = distributed.device_for(config, rank)
    if not resume and (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").iterdir()):
        raise SsmusicError(f"{run_dir}: already holds a run; pass --resume to continue it or choose another --out")
    data = TrainingData.load(data_dir, config, device, init)
    if data.valid is None and rank == 0:
        warn_without_validation(data_dir, init is not None)
    checkpoint = latest_checkpoint(run_dir) if resume else None
    # a full fine-tune's checkpoint holds all its weights; a LoRA checkpoint only the adapters
    state = TrainingState.fresh(config, data, device, rank, world, load_init=checkpoint is None or config.lora_rank > 0)
    if checkpoint is not None:
        state.resume_from(checkpoint, data_dir, data, device)
    if resume and rank == 0:
        truncate_metrics(run_dir / "metrics.jsonl", state.step)
    if rank == 0:
        write_json_atomic(run_dir / "train_config.json", asdict(config))
        trainable = sum(p.numel() for p in state.model.parameters() if p.requires_grad)
        print(f"{data.lm_config.backbone}/{data.lm_config.conditioning}: "
              f"{state.model.num_parameters() / 1e6:.2f}M parameters ({trainable / 1e6:.3g}M trained), "
              f"{len(data.train)} train clips, {world} process(es) on {device}"
              + (f", from {init.directory}" if init else ""))
    wrapped = distributed.wrap(state.model, device, world, compile=config.compile)
    log = MetricsLog(run_dir, config, state.step, enabled=rank == 0, progress=progress)
    end = config.steps if stop_after is None else min(config.steps, stop_after)
    if init is not None and state.step == 0 and data.valid is not None and rank == 0:  # the model before fine-tuning
        log.path.write_text(json.dumps({"step": 0, **evaluate(state.model, data.valid, config, device, data.encoder)})
                            + "\n")
    state.model.train()
    while state.step < end:
        record = train_step(state, wrapped, data, config, device, world)
        if data.valid is not None and (state.step % config.eval_every == 0 or state.step == config.steps):
            record.update(evaluate(state.model, data.valid, config, device, data.encoder))
        if rank == 0:
            log.write(record)
            if state.step % config.save_every == 0 or state.step == end:
                state.save(run_dir, data, config, device)
    log.close()
    if rank == 0 and data.valid is not None:
        print(validation_summary(log.path), file=sys.stderr)
    if config.compile and rank == 0:
        print(f"torch.compile: {distributed.compile_seconds():.1f} s spent compiling (metrics.jsonl: compile_s)")
    distributed.barrier(world)
    if rank == 0 and state.step >= config.steps:
        export_model(state.last_saved, run_dir / "final")
        return run_dir / "final"
    return state.last_saved


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
                       text_lr_scale=args.text_lr_scale, tempo_clock=bool(getattr(args, "tempo_clock", False)),
                       key_embedding=bool(getattr(args, "key_embedding", False)),
                       crop_frames=args.crop_frames, eval_windows=not args.eval_whole_clips, eval_every=args.eval_every, eval_batches=args.eval_batches,
                       save_every=args.save_every, seed=args.seed, device=args.device,
                       tensorboard=args.tensorboard, compile=bool(getattr(args, "compile", False)),
                       init_from=getattr(args, "init_from", None) or "",
                       lora_rank=getattr(args, "lora_rank", 0), lora_alpha=getattr(args, "lora_alpha", 0.0),
                       freeze=getattr(args, "freeze", None) or "")


def run(args) -> int:
    set_threads(args.threads)
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    given = {"model_overrides" if dest == "model" else dest for dest in getattr(args, "given", ("steps",))}
    out = train(args.data_dir, args.out, config_from_args(args), resume=args.resume, stop_after=args.stop_after,
                given=given & fields)
    if out is not None:
        print(f"model: {out}")
    return 0
