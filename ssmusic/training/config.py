"""What a training run is: `TrainConfig`, saved as RUN_DIR/train_config.json."""

from __future__ import annotations

from dataclasses import dataclass, field

from ssmusic.model import presets
from ssmusic.config import LMConfig

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
    # the beat clock (ssmusic/model/controls.py): the BPM each caption names as a phase at every frame
    tempo_clock: bool = False
    key_embedding: bool = False  # and the key each caption names, as a learned vector
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
    # torch.compile the forward (and so the backward). Off by default, on CUDA too: whether it pays
    # there has not been measured by this project's training loop on a GPU; on the CPU the tiny
    # preset's compile repaid itself only after ~2,000 SiMBA steps (docs/gpu.md)
    compile: bool = False
    tensorboard: bool = False
    # fine-tuning (ssmusic.training.finetune): start from this model (its config defines the architecture);
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
        if self.tempo_clock:
            values["tempo_clock_fps"] = float(manifest["frame_rate"])
        if self.key_embedding:
            values["key_embedding"] = True
        return presets.preset(self.preset, **values, **self.model_overrides)
