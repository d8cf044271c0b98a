"""Import the prefix-SiMBA checkpoint released with SSM-TTM (github Lonian6/SSM-TTM).

    model.ckpt (PyTorch Lightning pickle) + config.json  ->  MODEL_DIR/
        lm_config.json + model.safetensors (MusicLM) + pipeline.json (DAC 44.1 kHz, flan-t5-base)

Facts this relies on, read from the released code (commit db08c2f):
- simba.py `Text_Mmamba`: condition_linear Linear(768->d) + condition_norm LayerNorm; one
  embedding table per codebook with `vocab_size` rows; blocks `backbone.{i}` = pre-RMSNorm ->
  mamba_ssm Mamba2(d_state, d_conv 4, expand 2; everything else mamba_ssm's default) -> residual,
  then pre-RMSNorm -> Linear(d->2d), GELU, Linear(2d->d) -> residual; `lm_head.{k}` without bias.
  The text states and the code embeddings are concatenated, sinusoidal positions are added over
  the whole sequence, the text mask is ignored and logits are kept from the last text position on.
- main_pl.py: vocab_size = 1024 + 1 (the extra id 1024 is the pad id), codec_layer 1.
- utils.py `to_delay` / `create_empty_prompt`, dataloader.py (is_incontext=True): the audio
  sequence starts with the pad id 1024 as a start token; the last text position predicts that
  start token (ignored by the loss), the start token's position predicts the first code.

A .ckpt is a pickle: it is read with torch.load(weights_only=True), whose unpickler builds only
tensors and plain containers, plus one allow-listed name (Lightning's AttributeDict, read as a
plain dict). Anything else is refused; no code from the file ever runs.
"""

from __future__ import annotations

import os
import pickle
import re
import shutil
import zipfile
from pathlib import Path
from typing import Any

import torch

from ssmusic.io.atomic import atomic_dir
from ssmusic.io.atomic import read_json
from ssmusic.config import LMConfig, PipelineConfig, save_config
from ssmusic.errors import SsmusicError
from ssmusic.io.tensors import check_shapes

PREFIX = "music_model."
TEXT_ENCODER_PREFIX = "text_encoder."
# DAC 44.1 kHz: 512 samples per frame.
DAC_44K = {"codec": "descript/dac_44khz", "sample_rate": 44100, "frame_rate": 44100 / 512}
TEXT_ENCODER = "google/flan-t5-base"
# pl_inference.py: pads T5 tokens to >= 60, samples 2,200 frames at temperature 1.2, top-k 250,
# guidance 3; dataloader.py trains on 2,588-frame (30 s) clips.
RELEASE_SAMPLING = {"temperature": 1.2, "top_k": 250, "cfg_scale": 3.0}
MIN_TEXT_TOKENS = 60
MIN_TEXT_PAD_ID = 1  # torch.ones(...) in pl_model.py: T5's </s>, not its pad id 0
CLIP_FRAMES = 2588
# Lightning stores hyper-parameters as plain dicts, but older versions and user hooks may pickle
# its AttributeDict (a dict subclass with attribute access): read it as a plain dict.
_PLAIN_DICT_NAMES = (
    "lightning.fabric.utilities.data.AttributeDict",
    "lightning_fabric.utilities.data.AttributeDict",
    "pytorch_lightning.utilities.parsing.AttributeDict",
)


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a Lightning .ckpt without executing it: tensors and plain containers only."""
    path = Path(path)
    if not path.is_file():
        raise SsmusicError(f"{path}: checkpoint file not found")
    # mmap keeps a multi-GB checkpoint (weights + optimizer state) out of RAM until touched.
    mmap = zipfile.is_zipfile(path)
    try:
        with torch.serialization.safe_globals([(dict, name) for name in _PLAIN_DICT_NAMES]):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL (\S+)|unsupported GLOBAL (\S+)|got (<[^>]+>)", str(err))
        what = next((g for g in found.groups() if g), None) if found else None
        raise SsmusicError(
            f"{path}: refused: the pickle holds {f'the Python object {what!r}' if what else 'an object'} "
            "that is not plain data (tensors, dicts, lists, numbers, strings); ssmusic never executes "
            "a checkpoint's code") from None
    except Exception as err:  # noqa: BLE001 - torch raises many types for a non-checkpoint
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SsmusicError(f"{path}: not a readable PyTorch checkpoint ({first})") from None
    if not isinstance(checkpoint, dict):
        raise SsmusicError(f"{path}: expected a Lightning checkpoint (a dict), got {type(checkpoint).__name__}")
    return checkpoint


def split_state_dict(checkpoint: dict[str, Any], source: str) -> tuple[dict[str, torch.Tensor],
                                                                       dict[str, torch.Tensor]]:
    """The Lightning module's state dict -> (music_model weights, text_encoder weights), prefixes cut."""
    state = checkpoint.get("state_dict")
    if not isinstance(state, dict):
        keys = sorted(map(str, checkpoint))[:8]
        raise SsmusicError(f"{source}: no 'state_dict' in the checkpoint (top-level keys: {keys}); "
                           "expected a PyTorch Lightning .ckpt of SSM-TTM's Text_Mmamba_pl")
    music, text, other = {}, {}, []
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise SsmusicError(f"{source}: state_dict[{key!r}] is a {type(value).__name__}, expected a tensor")
        if key.startswith(PREFIX):
            music[key[len(PREFIX):]] = value
        elif key.startswith(TEXT_ENCODER_PREFIX):
            text[key[len(TEXT_ENCODER_PREFIX):]] = value
        else:
            other.append(key)
    if not music:
        raise SsmusicError(f"{source}: no '{PREFIX}*' weights in state_dict; expected SSM-TTM's "
                           "Text_Mmamba_pl (attribute music_model)")
    if other:
        raise SsmusicError(f"{source}: unexpected state_dict keys outside music_model/text_encoder, "
                           f"e.g. {other[:3]}")
    return music, text


def read_release_config(path: str | os.PathLike) -> dict[str, Any]:
    """The `model` section of the released config.json, checked for the variant this importer knows."""
    data = read_json(path)
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, dict):
        raise SsmusicError(f"{path}: expected a JSON object with a 'model' section (SSM-TTM's config.json)")
    for name in ("layers", "vocab_size", "codec_layer", "d_model", "d_state"):
        value = model.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise SsmusicError(f"{path}: model.{name}: expected a positive integer, got {value!r}")
    drop = model.get("drop_p", 0.0)
    if not isinstance(drop, (int, float)) or not 0.0 <= drop < 1.0:
        raise SsmusicError(f"{path}: model.drop_p: expected a number in [0, 1), got {drop!r}")
    # Other variants of the paper (cross-attention, attention layers, pure Mamba) carry these keys;
    # the released simba.py builds only the prefix ("in-context") SiMBA.
    if model.get("is_incontext", True) is not True:
        raise SsmusicError(f"{path}: model.is_incontext is {model.get('is_incontext')!r}: only the prefix "
                           "(in-context) SiMBA model can be imported")
    if model.get("self_atten_layers") or model.get("is_pure_mamba"):
        raise SsmusicError(f"{path}: model.self_atten_layers/is_pure_mamba are set: only the prefix SiMBA "
                           "model (Mamba2 + MLP blocks) can be imported")
    return model


def _shape(state: dict[str, torch.Tensor], key: str, source: str, ndim: int) -> tuple[int, ...]:
    if key not in state:
        raise SsmusicError(f"{source}: missing weight {PREFIX}{key}")
    shape = tuple(state[key].shape)
    if len(shape) != ndim:
        raise SsmusicError(f"{source}: {PREFIX}{key} has shape {list(shape)}, expected {ndim} dimensions")
    return shape


def _count(state: dict[str, torch.Tensor], pattern: str) -> int:
    indices = {int(m.group(1)) for key in state if (m := re.match(pattern, key))}
    return max(indices) + 1 if indices else 0


def infer_config(state: dict[str, torch.Tensor], release: dict[str, Any], source: str) -> LMConfig:
    """Our LMConfig for the released weights, from their shapes, cross-checked with config.json."""
    d_model, text_dim = _shape(state, "condition_linear.weight", source, 2)
    vocab, _ = _shape(state, "embedding.0.weight", source, 2)
    n_codebooks = _count(state, r"embedding\.(\d+)\.")
    n_layers = _count(state, r"backbone\.(\d+)\.")
    (d_inner,) = _shape(state, "backbone.0.mamba.mamba.norm.weight", source, 1)
    (nheads,) = _shape(state, "backbone.0.mamba.mamba.A_log", source, 1)
    conv_dim, _, d_conv = _shape(state, "backbone.0.mamba.mamba.conv1d.weight", source, 3)
    ff_hidden, _ = _shape(state, "backbone.0.ff.feed_forward.0.weight", source, 2)
    # mamba_ssm Mamba2 with ngroups=1 (its default): conv over [x, B, C] = d_inner + 2 * d_state.
    d_state = (conv_dim - d_inner) // 2
    expected = {"layers": n_layers, "vocab_size": vocab, "codec_layer": n_codebooks, "d_model": d_model,
                "d_state": d_state}
    wrong = {k: (release[k], v) for k, v in expected.items() if release[k] != v}
    if wrong:
        detail = ", ".join(f"{k}={a} but the weights say {b}" for k, (a, b) in wrong.items())
        raise SsmusicError(f"{source}: config.json does not match the checkpoint: {detail}")
    if d_inner % d_model or d_inner % nheads or ff_hidden % d_model:
        raise SsmusicError(f"{source}: unexpected Mamba2/MLP widths (d_model {d_model}, d_inner {d_inner}, "
                           f"{nheads} heads, MLP {ff_hidden})")
    config = LMConfig(
        backbone="simba", conditioning="prefix", channel_mixer="mlp", d_model=d_model, n_layers=n_layers,
        d_state=d_state, expand=d_inner // d_model, headdim=d_inner // nheads, d_conv=d_conv, ngroups=1,
        ff_mult=ff_hidden // d_model, dropout=float(release.get("drop_p", 0.0)), n_codebooks=n_codebooks,
        # the last id is the pad/start id, never a code (released data: 1024 codes + pad id 1024)
        card=vocab - 1, text_dim=text_dim, positions="sinusoidal", use_text_mask=False, final_norm=False,
        start_token=True, null_condition="empty_text")
    return config


def map_state_dict(state: dict[str, torch.Tensor], config: LMConfig, source: str) -> dict[str, torch.Tensor]:
    """Released parameter names -> MusicLM's. The heads drop their last row: the pad/start id's logit,
    which no code can be (sampling is over the `card` codes only)."""
    renames = [
        (r"condition_linear\.(weight|bias)", r"text_proj.\1"),
        (r"condition_norm\.(weight|bias)", r"text_norm.\1"),
        (r"embedding\.(\d+)\.weight", r"embed.\1.weight"),
        (r"backbone\.(\d+)\.mamba\.norm\.weight", r"blocks.\1.mixer_norm.weight"),
        (r"backbone\.(\d+)\.mamba\.mamba\.(.+)", r"blocks.\1.mixer.\2"),
        (r"backbone\.(\d+)\.ff\.norm\.weight", r"blocks.\1.channel_mixer_norm.weight"),
        (r"backbone\.(\d+)\.ff\.feed_forward\.0\.(weight|bias)", r"blocks.\1.channel_mixer.fc1.\2"),
        (r"backbone\.(\d+)\.ff\.feed_forward\.3\.(weight|bias)", r"blocks.\1.channel_mixer.fc2.\2"),
        (r"lm_head\.(\d+)\.weight", r"heads.\1.weight"),
    ]
    mapped: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        for pattern, replacement in renames:
            if re.fullmatch(pattern, key):
                name = re.sub(pattern, replacement, key)
                mapped[name] = value[:config.card] if name.startswith("heads.") else value
                break
        else:
            raise SsmusicError(f"{source}: unexpected weight {PREFIX}{key}: not part of the released prefix SiMBA")
    # the learned null vector is unused (the null condition is the encoded empty caption)
    mapped["null"] = torch.zeros(config.d_model)
    mapped = {k: v.float().contiguous() for k, v in mapped.items()}
    return mapped


def export_text_encoder(state: dict[str, torch.Tensor], directory: str | os.PathLike,
                        tokenizer_dir: str | os.PathLike, source: str = "checkpoint") -> Path:
    """Write the checkpoint's frozen T5 encoder (`text_encoder.*`) as a local transformers model
    (config.json + model.safetensors) with the tokenizer files copied from `tokenizer_dir`."""
    from transformers import T5Config, T5EncoderModel

    tokenizer_dir = Path(tokenizer_dir)
    tokenizer_files = [f for f in ("spiece.model", "tokenizer.json", "tokenizer_config.json",
                                   "special_tokens_map.json") if (tokenizer_dir / f).is_file()]
    if not any(f in tokenizer_files for f in ("spiece.model", "tokenizer.json")):
        raise SsmusicError(f"{tokenizer_dir}: no T5 tokenizer (spiece.model or tokenizer.json); use a copy "
                           "of google/flan-t5-base's tokenizer files")
    if "shared.weight" not in state or "encoder.block.0.layer.0.SelfAttention.q.weight" not in state:
        raise SsmusicError(f"{source}: no T5 encoder weights (text_encoder.shared.weight, "
                           "text_encoder.encoder.block.*) to export")
    vocab, d_model = state["shared.weight"].shape
    layer = "encoder.block.0.layer."
    buckets, heads = state[layer + "0.SelfAttention.relative_attention_bias.weight"].shape
    gated = layer + "1.DenseReluDense.wi_0.weight" in state
    d_ff = state[layer + ("1.DenseReluDense.wi_0.weight" if gated else "1.DenseReluDense.wi.weight")].shape[0]
    config = T5Config(vocab_size=vocab, d_model=d_model, d_kv=state[layer + "0.SelfAttention.q.weight"].shape[0]
                      // heads, d_ff=d_ff, num_layers=_count(state, r"encoder\.block\.(\d+)\."), num_heads=heads,
                      relative_attention_num_buckets=buckets,
                      feed_forward_proj="gated-gelu" if gated else "relu")
    encoder = T5EncoderModel(config)
    weights = {k: v.float() for k, v in state.items()}
    weights.setdefault("encoder.embed_tokens.weight", weights["shared.weight"])
    missing, unexpected = encoder.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise SsmusicError(f"{source}: text_encoder weights do not form a T5 encoder "
                           f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    directory = Path(directory)
    encoder.save_pretrained(directory)
    for name in tokenizer_files:
        shutil.copyfile(tokenizer_dir / name, directory / name)
    return directory


def pipeline_config(lm: LMConfig, text_encoder: str = TEXT_ENCODER, codec: str = DAC_44K["codec"]) -> PipelineConfig:
    """How the released model turns text into a prefix and codes into audio, plus its sampling.
    Another codec than the hub's DAC 44.1 kHz (a local copy, say) is loaded to read its rates."""
    sample_rate, frame_rate = DAC_44K["sample_rate"], DAC_44K["frame_rate"]
    if codec != DAC_44K["codec"]:
        from ssmusic.codec.codecs import load_codec

        loaded = load_codec(codec)
        if loaded.card != lm.card or loaded.n_codebooks < lm.n_codebooks:
            raise SsmusicError(f"--codec {codec}: card {loaded.card} with {loaded.n_codebooks} codebooks, the "
                               f"checkpoint needs card {lm.card} with {lm.n_codebooks} (DAC 44.1 kHz)")
        sample_rate, frame_rate = loaded.sample_rate, loaded.frame_rate
    return PipelineConfig(
        codec=codec, text_encoder=text_encoder, sample_rate=sample_rate, frame_rate=frame_rate, card=lm.card,
        n_codebooks=lm.n_codebooks, text_dim=lm.text_dim, clip_seconds=CLIP_FRAMES / DAC_44K["frame_rate"],
        min_text_tokens=MIN_TEXT_TOKENS, min_text_pad_id=MIN_TEXT_PAD_ID, **RELEASE_SAMPLING)


def import_checkpoint(ckpt: str | os.PathLike, config_json: str | os.PathLike, out: str | os.PathLike,
                      overwrite: bool = False, text_encoder: str = TEXT_ENCODER,
                      codec: str = DAC_44K["codec"], tokenizer_dir: str | os.PathLike | None = None) -> Path:
    """Released .ckpt + config.json -> an ssmusic model directory; returns its path.

    With `tokenizer_dir`, the checkpoint's own T5 encoder is exported to MODEL_DIR/text_encoder
    (plus those tokenizer files) and pipeline.json names that directory instead of flan-t5-base.
    The model directory appears whole or not at all: it is built beside `out`, then renamed.
    """
    from ssmusic.model.lm import MusicLM

    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise SsmusicError(f"{out}: already exists and is not empty (pass --force to replace it)")
    release = read_release_config(config_json)
    music, text_state = split_state_dict(read_checkpoint(ckpt), str(ckpt))
    lm_config = infer_config(music, release, str(ckpt))
    model = MusicLM(lm_config)
    weights = map_state_dict(music, lm_config, str(ckpt))
    expected = model.state_dict()
    missing = sorted(set(expected) - set(weights))
    if missing:
        raise SsmusicError(f"{ckpt}: the checkpoint lacks {len(missing)} weight(s) of the released model, "
                           f"e.g. {missing[:3]} (ssmusic names)")
    check_shapes(expected, weights, str(ckpt), "the config")
    model.load_state_dict(weights)
    with atomic_dir(out) as staging:
        model.save_pretrained(staging)
        if tokenizer_dir is not None:
            export_text_encoder(text_state, staging / "text_encoder", tokenizer_dir, str(ckpt))
            text_encoder = "text_encoder"  # relative: found inside the model directory wherever it moves
        save_config(pipeline_config(lm_config, text_encoder=text_encoder, codec=codec), staging / "pipeline.json")
    return out


def run_cli(args: Any) -> int:
    """`ssmusic import-ssmttm CKPT --config CONFIG_JSON --out MODEL_DIR`."""
    out = import_checkpoint(args.ckpt, args.config, args.out, overwrite=args.force,
                            text_encoder=args.text_encoder, codec=args.codec, tokenizer_dir=args.t5_tokenizer)
    lm = read_json(out / "lm_config.json")
    print(f"wrote {out}: prefix SiMBA, {lm['n_layers']} layers, d_model {lm['d_model']}, "
          f"d_state {lm['d_state']}, {lm['n_codebooks']} codebook(s)")
    print(f'next: ssmusic generate "a calm piano piece" --checkpoint {out} -o out.wav')
    return 0
