"""Fine-tuning a trained model on new music: `ssmusic train DATA_DIR --init-from MODEL --out RUN_DIR`.

    MODEL: `default` (the shipped model), a model directory (`ssmusic export`, `import-ssmttm`, a
    run's final/) or a training run (its final/ or newest checkpoint).
    architecture: the model's lm_config.json; flags that contradict it are refused.
    compatibility: the dataset's codec, card, codebooks and text encoder must be the model's,
        checked (one-line error naming both sides) before anything is built.
    weights: loaded strictly into the new MusicLM before step 1; the run logs the validation loss
        of the unchanged model as its step-0 row.
    --freeze embeddings,text,heads: those parameters keep the model's values.
    --lora-rank R: LoRA adapters (PEFT) on every linear layer of the decoder blocks; everything
        else is frozen. A checkpoint then holds the merged model (a plain model directory that
        `generate` and `export` read unchanged) and the adapters alone in adapter/ (PEFT's
        adapter_config.json + adapter_model.safetensors, and base.json: which weights they adapt).

Everything else is `train`'s: atomic safetensors checkpoints, exact resume, metrics.jsonl, DDP.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import torch

from ssmusic.io.atomic import read_json, write_json_atomic
from ssmusic.config import LMConfig, load_config
from ssmusic.errors import SsmusicError
from ssmusic.training.optim import TEXT_MODULES
from ssmusic.training.resume import cli_flag

FINETUNE_LR = 1e-4  # full fine-tuning: a tenth of the default model's training rate
LORA_LR = 1e-3  # adapters start at zero and are few: LoRA's usual ~10x higher rate
FINETUNE_WARMUP = 20  # steps (still capped at 10% of the run)
# TrainConfig fields that define the architecture: with --init-from the model's config does
ARCHITECTURE = {"backbone": "backbone", "conditioning": "conditioning", "channel_mixer": "channel_mixer",
                "codebooks": "n_codebooks"}
MAY_OVERRIDE = ("dropout",)  # LMConfig fields a fine-tune may change (--model dropout=0.2)
FREEZABLE = {"embeddings": ("embed",), "text": TEXT_MODULES, "heads": ("heads",)}
SAMPLING_KEYS = ("temperature", "top_k", "cfg_scale", "min_text_tokens", "min_text_pad_id")
ADAPTER_DIR = "adapter"


@dataclass
class InitModel:
    """The model a fine-tune starts from."""

    source: str
    directory: Path
    lm_config: LMConfig
    pipeline: dict
    train_config: dict


def load_init(source: str) -> InitModel:
    from ssmusic.pipeline import resolve_model_dir

    directory = resolve_model_dir(None if source == "default" else source)
    if not (directory / "pipeline.json").is_file():
        raise SsmusicError(f"--init-from {source}: {directory} has no pipeline.json (which codec and text "
                           "encoder the model was trained with)")
    saved = directory / "train_config.json"
    return InitModel(source, directory, load_config(LMConfig, directory / "lm_config.json"),
                     read_json(directory / "pipeline.json"), read_json(saved) if saved.is_file() else {})


def setup(data_dir: Path, config, resume: bool, given: Iterable[str]) -> tuple:
    """-> (config, InitModel | None): for a run with --init-from/--lora-rank/--freeze, the flags
    checked, the model loaded, a new run's config completed from it (see configure) and the dataset
    checked against it, before anything is built. Other runs pass through unchanged."""
    if not (config.init_from or config.lora_rank or config.freeze):
        return config, None
    from ssmusic.data.datasets import load_manifest

    check_flags(config)
    init = load_init(config.init_from)
    config = config if resume else configure(config, init, given)
    check_dataset(data_dir, load_manifest(data_dir), init)
    return config, init


def check_flags(config) -> None:
    """LoRA and freezing need a pretrained model; freezing is for full fine-tuning."""
    if (config.lora_rank or config.freeze) and not config.init_from:
        flag = "--lora-rank" if config.lora_rank else "--freeze"
        raise SsmusicError(f"{flag}: adapts a pretrained model; pass --init-from MODEL (e.g. --init-from default)")
    if config.lora_rank < 0 or config.lora_alpha < 0:
        raise SsmusicError(f"--lora-rank/--lora-alpha: expected numbers >= 0, got {config.lora_rank}, {config.lora_alpha}")
    if config.lora_rank and config.freeze:
        raise SsmusicError("--freeze: with --lora-rank only the adapters train already; --freeze is for full fine-tuning")
    freeze_groups(config.freeze)


def freeze_groups(text: str) -> list[str]:
    groups = [g.strip() for g in text.split(",") if g.strip()]
    unknown = [g for g in groups if g not in FREEZABLE]
    if unknown:
        raise SsmusicError(f"--freeze: unknown part {unknown[0]!r}; expected a comma list of {', '.join(FREEZABLE)}")
    return groups


def configure(config, init: InitModel, given: Iterable[str]):
    """The TrainConfig of a new fine-tune: architecture fields from the model (a given flag that
    contradicts it is refused), fine-tuning defaults for the learning rate and warmup unless given."""
    given, model, where = set(given), init.lm_config, init.directory / "lm_config.json"
    for name, field in ARCHITECTURE.items():
        if name in given and getattr(config, name) != getattr(model, field):
            raise SsmusicError(f"{cli_flag(name)} {getattr(config, name)!r} contradicts the model's {field} "
                               f"{getattr(model, field)!r} ({where}); --init-from takes the architecture from "
                               f"the model: drop {cli_flag(name)}")
    preset = init.train_config.get("preset")
    if "preset" in given and config.preset != preset:
        raise SsmusicError(f"--preset {config.preset}: --init-from takes the architecture from the model "
                           f"({where}" + (f", trained as preset {preset!r}" if preset else "") + "): drop --preset")
    for key, value in config.model_overrides.items():
        if key not in {f.name for f in dataclasses.fields(LMConfig)}:
            raise SsmusicError(f"--model {key}: not an LMConfig field")
        if key not in MAY_OVERRIDE and value != getattr(model, key):
            raise SsmusicError(f"--model {key}={value!r} contradicts the model's {key} {getattr(model, key)!r} "
                               f"({where}); a fine-tune may change only {', '.join(MAY_OVERRIDE)}")
    changes = {name: getattr(model, field) for name, field in ARCHITECTURE.items()}
    changes["model_overrides"] = {k: v for k, v in config.model_overrides.items() if k in MAY_OVERRIDE}
    changes["preset"] = preset or config.preset
    if not config.lr:
        changes["lr"] = LORA_LR if config.lora_rank else FINETUNE_LR
    if "warmup_steps" not in given:
        changes["warmup_steps"] = FINETUNE_WARMUP
    return dataclasses.replace(config, **changes)


def lm_config(config, init: InitModel) -> LMConfig:
    """The model's architecture, with a fine-tune's overrides; --tempo-clock adds a beat clock at the
    model's frame rate, --key-embedding a key vector, to a model without (each starts at zero: the
    model as it was)."""
    added = {}
    if config.tempo_clock and not init.lm_config.tempo_clock_fps:
        added["tempo_clock_fps"] = float(init.pipeline["frame_rate"])
    if config.key_embedding:
        added["key_embedding"] = True
    return dataclasses.replace(init.lm_config, **config.model_overrides, **added)


def _same(a, b, model_dir: Path) -> bool:
    """Same codec / text encoder: equal names, or the same directory (the model's own may be named
    relative to its directory, as import-ssmttm's text_encoder/)."""
    if a == b:
        return True
    paths = [Path(x) if Path(x).is_absolute() or not (model_dir / x).exists() else model_dir / x
             for x in (str(a), str(b))]
    return all(p.exists() for p in paths) and paths[0].resolve() == paths[1].resolve()


def check_dataset(data_dir: Path, manifest: dict, init: InitModel) -> dict:
    """Refuse a dataset the model cannot train on (one line naming both sides); -> the manifest,
    with the model's text encoder filled in for a dataset that stored no caption embeddings."""
    model, pipeline, where = init.lm_config, init.pipeline, init.directory

    def refuse(what: str, ours, theirs, fix: str) -> None:
        raise SsmusicError(f"{data_dir}: dataset {what} {ours!r} does not match the model's {theirs!r} ({where}); {fix}")

    if not _same(manifest["codec"], pipeline["codec"], where):
        refuse("codec", manifest["codec"], pipeline["codec"], f"prepare the audio again with --codec {pipeline['codec']}")
    for key, value in (("card", model.card), ("frame_rate", pipeline["frame_rate"]),
                       ("sample_rate", pipeline["sample_rate"])):
        if manifest.get(key) != value:
            refuse(key, manifest.get(key), value, f"prepare the audio again with --codec {pipeline['codec']}")
    if manifest["n_codebooks"] < model.n_codebooks:
        refuse("codebooks", manifest["n_codebooks"], model.n_codebooks, "prepare with a codec that has as many")
    if manifest.get("text_encoder") is None and not manifest.get("text_cached"):
        manifest = {**manifest, "text_encoder": pipeline["text_encoder"]}
    if not _same(manifest["text_encoder"], pipeline["text_encoder"], where):
        refuse("text encoder", manifest["text_encoder"], pipeline["text_encoder"],
               f"prepare the captions again with --text-encoder {pipeline['text_encoder']}")
    if manifest.get("text_dim") not in (None, model.text_dim):
        refuse("text_dim", manifest["text_dim"], model.text_dim, "prepare with the model's text encoder")
    return manifest


def sampling_defaults(init: InitModel) -> dict:
    """The model's sampling defaults and caption padding, kept in the fine-tune's pipeline.json."""
    return {k: init.pipeline[k] for k in SAMPLING_KEYS if k in init.pipeline}


def weights_sha256(directory: Path) -> str:
    digest = hashlib.sha256()
    with (directory / "model.safetensors").open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_weights(model: torch.nn.Module, init: InitModel) -> None:
    """The model's weights into `model` (built from its config): every tensor, strictly; only the
    controls a fine-tune adds (--tempo-clock, --key-embedding) are new, and start at zero."""
    from ssmusic.model.lm import MusicLM

    loaded = MusicLM.from_pretrained(init.directory)  # refuses weights that do not fit lm_config.json
    added = tuple(f"{name}." for name in ("clock", "key_embed")
                  if getattr(model, name, None) is not None and getattr(loaded, name) is None)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=not added)
    if added and (unexpected or any(not key.startswith(added) for key in missing)):
        raise SsmusicError(f"--init-from {init.source}: weights do not fit beside the added controls: "
                           f"missing {missing}, unexpected {unexpected}")


def freeze(model: torch.nn.Module, groups: list[str]) -> None:
    prefixes = tuple(p for g in groups for p in FREEZABLE[g])
    for name, param in model.named_parameters():
        if name.split(".")[0] in prefixes:
            param.requires_grad_(False)


def lora_targets(model: torch.nn.Module) -> list[str]:
    """Every nn.Linear inside the decoder blocks, by module name: blocks.{i}.mixer.* (Mamba2's
    in/out projections, or self-attention's), blocks.{i}.cross_attn.* and blocks.{i}.channel_mixer.*
    (the MLP, or a second Mamba2). Norms, EinFFT's block-diagonal weights and everything outside
    the blocks stay as they are."""
    return [name for name, module in model.named_modules()
            if name.startswith("blocks.") and isinstance(module, torch.nn.Linear)]


def add_lora(model: torch.nn.Module, rank: int, alpha: float):
    """Wrap `model` with PEFT LoRA adapters in place (it keeps its type; its linear layers gain
    lora_A/lora_B, and only those train). -> the PeftModel (saving, merging)."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=rank, lora_alpha=alpha or rank, target_modules=lora_targets(model), lora_dropout=0.0,
                        bias="none")
    return get_peft_model(model, config)


class LoraWeights:
    """What save_checkpoint / load_checkpoint see for a LoRA run: saves the merged model plus the
    adapters, and loads the adapters back (the base is the --init-from model, checked by hash)."""

    def __init__(self, peft_model, init: InitModel) -> None:
        self.peft_model, self.init = peft_model, init
        self.base_sha256 = weights_sha256(init.directory)

    def save_pretrained(self, directory: Path) -> None:
        merged = copy.deepcopy(self.peft_model).merge_and_unload()
        merged.save_pretrained(directory)
        save_adapters(self.peft_model, Path(directory) / ADAPTER_DIR,
                      {"init_from": self.init.source, "base_sha256": self.base_sha256})

    def load_from_checkpoint(self, checkpoint: Path) -> None:
        adapter = checkpoint / ADAPTER_DIR
        base = read_json(adapter / "base.json")
        if base["base_sha256"] != self.base_sha256:
            raise SsmusicError(f"{adapter}: the adapters were trained on other base weights than "
                               f"{self.init.directory}'s (its model.safetensors changed); resume with that model")
        set_adapters(self.peft_model, adapter)


def save_adapters(peft_model, directory: Path, base: dict) -> None:
    """adapter_config.json + adapter_model.safetensors (PEFT's layout) + base.json, in `directory`."""
    from peft import get_peft_model_state_dict

    from ssmusic.io.tensors import save_tensors

    directory.mkdir(parents=True, exist_ok=True)
    config = peft_model.peft_config["default"].to_dict()
    config = {k: sorted(v) if isinstance(v, set) else v for k, v in config.items()}
    write_json_atomic(directory / "adapter_config.json", config)
    save_tensors(get_peft_model_state_dict(peft_model), directory / "adapter_model.safetensors")
    write_json_atomic(directory / "base.json", base)


def read_lora_config(directory: Path):
    from peft import LoraConfig

    data = read_json(directory / "adapter_config.json")
    known = {f.name for f in dataclasses.fields(LoraConfig) if f.init}
    if data.get("peft_type") != "LORA":
        raise SsmusicError(f"{directory / 'adapter_config.json'}: not a LoRA adapter (peft_type {data.get('peft_type')!r})")
    return LoraConfig(**{k: v for k, v in data.items() if k in known})


def set_adapters(peft_model, directory: Path) -> None:
    """Load adapter_model.safetensors (never a pickle) into a model wrapped with the same config."""
    from peft import set_peft_model_state_dict

    from ssmusic.io.tensors import load_tensors

    result = set_peft_model_state_dict(peft_model, load_tensors(directory / "adapter_model.safetensors"))
    missing = [k for k in result.missing_keys if "lora_" in k]
    if missing or result.unexpected_keys:
        raise SsmusicError(f"{directory}: adapters do not fit the model (missing {missing[:2]}, "
                           f"unexpected {list(result.unexpected_keys)[:2]})")


def with_adapters(base: str | Path, adapter_dir: str | Path):
    """The base model with saved adapters, unmerged (a PeftModel around a MusicLM)."""
    from peft import get_peft_model

    from ssmusic.model.lm import MusicLM
    from ssmusic.pipeline import resolve_model_dir

    adapter_dir = Path(adapter_dir)
    model = MusicLM.from_pretrained(resolve_model_dir(None if str(base) == "default" else base))
    peft_model = get_peft_model(model, read_lora_config(adapter_dir))
    set_adapters(peft_model, adapter_dir)
    return peft_model.eval()


def merge_adapters(base: str | Path, adapter_dir: str | Path, out: str | Path) -> Path:
    """Adapters + their base -> a plain model directory (the base's pipeline.json), atomically."""
    import shutil

    from ssmusic.io.atomic import atomic_dir
    from ssmusic.pipeline import resolve_model_dir

    base_dir, adapter_dir, out = resolve_model_dir(None if str(base) == "default" else base), Path(adapter_dir), Path(out)
    recorded = read_json(adapter_dir / "base.json").get("base_sha256") if (adapter_dir / "base.json").is_file() else None
    if recorded and recorded != weights_sha256(base_dir):
        raise SsmusicError(f"{adapter_dir}: these adapters were trained on other weights than {base_dir}'s")
    merged = with_adapters(base_dir, adapter_dir).merge_and_unload()
    with atomic_dir(out) as tmp:
        merged.save_pretrained(tmp)
        shutil.copy2(base_dir / "pipeline.json", tmp / "pipeline.json")
    return out


def prepare_model(model: torch.nn.Module, config, init: InitModel, load: bool):
    """Load the init weights (unless a checkpoint will), freeze, add LoRA. -> what checkpoints save:
    the model itself, or a LoraWeights around it."""
    if load:
        load_weights(model, init)
    if config.freeze:
        freeze(model, freeze_groups(config.freeze))
    if config.lora_rank:
        return LoraWeights(add_lora(model, config.lora_rank, config.lora_alpha), init)
    return model
