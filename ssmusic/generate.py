"""`ssmusic generate`: prompts -> WAV files, each with a JSON sidecar saying how it was made."""

from __future__ import annotations

import argparse
import re
import secrets
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ssmusic.checks import check_device, check_seconds, check_writable
from ssmusic.codec import add_decoder_argument
from ssmusic.data.captions import read_csv
from ssmusic.errors import SsmusicError
from ssmusic.io.atomic import write_json_atomic
from ssmusic.threads import GENERATE_THREADS, set_threads

if TYPE_CHECKING:
    from ssmusic.model.sampling import SamplingParams


@dataclass
class Job:
    prompt: str
    sample_index: int
    wav_path: Path


def _slug(text: str, limit: int = 40) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:limit].rstrip("-") or "untitled"


def plan_outputs(prompts: list[str], samples: int, out: Path) -> list[Job]:
    """One WAV per prompt and sample. `out.wav` names the file when there is exactly one output;
    otherwise `out.wav` becomes `out_<i>[_<j>].wav`, and any other `out` is a directory."""
    single = len(prompts) == 1 and samples == 1
    jobs = []
    for i, prompt in enumerate(prompts):
        for j in range(samples):
            if out.suffix.lower() == ".wav":
                name = out.name if single else f"{out.stem}_{i}" + (f"_{j}" if samples > 1 else "") + ".wav"
                path = out.with_name(name)
            else:
                path = out / (f"{i:02d}_{_slug(prompt)}" + (f"_{j}" if samples > 1 else "") + ".wav")
            jobs.append(Job(prompt, j, path))
    return jobs


def read_prompts(path: str | Path, split: str | None = None) -> list[str]:
    """Prompts from a file: a CSV with a `caption` or `prompt` column (and optionally `split`, which
    `split` filters on: e.g. a demo dataset's captions.csv), or plain text, one prompt per line."""
    path = Path(path)
    if not path.is_file():
        raise SsmusicError(f"--prompts-from {path}: no such file")
    if path.suffix.lower() != ".csv":
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    _, rows = read_csv(path)
    column = next((c for c in ("caption", "prompt") if rows and c in rows[0]), None)
    if column is None:
        raise SsmusicError(f"--prompts-from {path}: expected a 'caption' or 'prompt' column")
    if split is not None:
        if "split" not in rows[0]:
            raise SsmusicError(f"--prompts-from {path}: --split {split} given but the file has no 'split' column")
        rows = [r for r in rows if r["split"] == split]
    prompts = [r[column].strip() for r in rows if r[column].strip()]
    if not prompts:
        raise SsmusicError(f"--prompts-from {path}: no prompts" + (f" in split {split!r}" if split else ""))
    return prompts


def _checked(args: argparse.Namespace) -> tuple[list[Job], "SamplingParams"]:
    """Every argument checked before any model loads (ssmusic.checks): prompts, duration, counts, the
    device, the sampling settings against the model's pipeline.json, and that every output can be
    written. -> (output jobs, sampling settings)."""
    from ssmusic.config import PipelineConfig, load_config
    from ssmusic.pipeline import model_sampling, resolve_model_dir

    prompts = list(args.prompts)
    if args.prompts_from:
        prompts += read_prompts(args.prompts_from, args.split)
    elif args.split:
        raise SsmusicError("--split: only with --prompts-from (a captions CSV with a split column)")
    if not prompts:
        raise SsmusicError("no prompts given: ssmusic generate \"a calm piano piece\" -o out.wav")
    check_seconds(args.seconds)
    for flag, value in (("--samples", args.samples), ("--batch-size", args.batch_size)):
        if value < 1:
            raise SsmusicError(f"{flag}: expected an integer >= 1, got {value}")
    set_threads(args.threads)  # checked, and set before anything loads
    if args.stream and not args.chunk_seconds > 0:
        raise SsmusicError(f"--chunk-seconds: expected a positive duration, got {args.chunk_seconds}")
    args.device = check_device(args.device)
    config = load_config(PipelineConfig, resolve_model_dir(args.checkpoint) / "pipeline.json")
    sampling = model_sampling(config, cfg_scale=args.cfg, top_k=args.top_k, top_p=args.top_p,
                              temperature=args.temperature)
    jobs = plan_outputs(prompts, args.samples, Path(args.output))
    check_writable([path for job in jobs for path in (job.wav_path, job.wav_path.with_suffix(".json"))])
    return jobs, sampling


class Outputs:
    """Writes each clip and its sidecar where planned. If a write fails after the work is done (disk
    full, a folder removed meanwhile), that clip and the rest go to a temporary folder instead, and
    `finish` says where: generated audio is never lost to a traceback."""

    def __init__(self) -> None:
        self.fallback: Path | None = None
        self.reason = ""

    def write(self, job: Job, wav, sample_rate: int, sidecar: dict, written: bool = False) -> Path:
        from ssmusic.io.audio import write_wav

        path = job.wav_path if self.fallback is None else self.fallback / job.wav_path.name
        try:
            if not written:
                write_wav(path, wav, sample_rate)
            write_json_atomic(path.with_suffix(".json"), sidecar)
            return path
        except OSError as err:
            if self.fallback is not None:
                raise
            self.fallback = Path(tempfile.mkdtemp(prefix="ssmusic-unsaved-"))
            self.reason = f"cannot write {path} ({err.strerror or err})"
            return self.write(job, wav, sample_rate, sidecar)

    def finish(self) -> None:
        if self.fallback is not None:
            raise SsmusicError(f"{self.reason}; the generated audio is saved in {self.fallback} instead")


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from ssmusic.io.audio import read_audio
    from ssmusic.model.ops import cpu_step
    from ssmusic.pipeline import TextToMusic

    jobs, sampling = _checked(args)
    audio_prompt = read_audio(args.audio_prompt) if args.audio_prompt else None
    model = TextToMusic.from_pretrained(args.checkpoint, device=args.device, decoder=args.decoder)
    model.lm.set_decode_dtype(args.decode_dtype).set_state_dtype(args.state_dtype)
    model.lm.cuda_graphs = args.cuda_graphs
    model.hear_controls = not args.no_controls
    if args.compile:
        model.compile_decode()
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    # decode types and the compiled step change the float error, so which tokens a seed samples
    settings = {"seconds": args.seconds, "cfg": args.cfg, "top_k": args.top_k, "top_p": args.top_p,
                "temperature": args.temperature, "decode_dtype": args.decode_dtype,
                "state_dtype": args.state_dtype, "compile": args.compile, "device": args.device,
                "cuda_graphs": model.lm.uses_cuda_graphs(), "threads": torch.get_num_threads(),
                # the SSM state update of a CPU decode step: the C kernel, or why the slower reference ran
                "cpu_step_kernel": cpu_step.status() if torch.device(args.device).type == "cpu" else None}
    outputs = Outputs()
    for batch_index, start in enumerate(tqdm(range(0, len(jobs), args.batch_size), desc="batches",
                                             unit="batch", disable=len(jobs) <= args.batch_size)):
        batch = jobs[start:start + args.batch_size]
        batch_seed = seed + batch_index
        timing = None
        if args.stream:  # each WAV grows as the audio is decoded (see ssmusic/io/wavstream.py)
            from ssmusic.io.wavstream import stream_to_wavs

            audio, sample_rate, timing = stream_to_wavs(
                model, [job.prompt for job in batch], [job.wav_path for job in batch], args.chunk_seconds,
                seconds=args.seconds, sampling=replace(sampling, seed=batch_seed), audio_prompt=audio_prompt)
        else:
            audio, sample_rate = model.generate([job.prompt for job in batch], seconds=args.seconds,
                                                sampling=replace(sampling, seed=batch_seed),
                                                audio_prompt=audio_prompt, progress=True)
        if not torch.isfinite(audio).all():
            raise SsmusicError("generation produced non-finite audio; nothing was written")
        for job, wav in zip(batch, audio):
            sidecar = {
                "prompt": job.prompt,
                "sample": job.sample_index,
                "seed": batch_seed,
                "batch_seed_note": f"rows {start}..{start + len(batch) - 1} of this command were "
                                   "generated together from this seed",
                "seconds_generated": args.seconds,
                "audio_seconds": wav.shape[-1] / sample_rate,
                "sample_rate": sample_rate,
                "audio_prompt": str(args.audio_prompt) if args.audio_prompt else None,
                "settings": settings,
                "resolved_defaults": {"cfg": model.config.cfg_scale, "top_k": model.config.top_k,
                                      "temperature": model.config.temperature},
                "model": model.describe(),
                **({"stream": timing.to_json()} if timing else {}),
            }
            print(outputs.write(job, wav, sample_rate, sidecar, written=timing is not None))
    outputs.finish()
    return 0


SAMPLING_DEFAULTS = {"cfg": "cfg_scale", "top_k": "top_k", "temperature": "temperature"}  # flag -> pipeline.json


def model_defaults(checkpoint: str | None) -> dict[str, float]:
    """A model's sampling defaults from its pipeline.json (no weights loaded), keyed by flag dest."""
    from ssmusic.config import PipelineConfig, load_config
    from ssmusic.pipeline import resolve_model_dir

    path = resolve_model_dir(checkpoint) / "pipeline.json"
    if not path.is_file():
        raise SsmusicError(f"{path}: file not found")
    config = load_config(PipelineConfig, path)
    return {dest: getattr(config, field) for dest, field in SAMPLING_DEFAULTS.items()}


class ModelDefaultsHelp(argparse.Action):
    """--help that states the sampling defaults of the model `--checkpoint` names (when it comes
    before --help), else of the shipped model: a model may be released with its own (SSM-TTM's
    temperature is 1.2), so a fixed number in the help would be wrong."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None) -> None:
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        checkpoint = getattr(namespace, "checkpoint", None)
        try:
            defaults, source = model_defaults(checkpoint), checkpoint or "the shipped model"
        except SsmusicError as err:  # still print help, saying why the values are missing
            defaults, source = {}, None
            print(f"(model defaults unavailable: {err})")
        for action in parser._actions:
            if action.dest in defaults:
                action.help = f"{action.help} (default: {defaults[action.dest]:g}, from {source})"
        parser.print_help()
        parser.exit()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The generate command's arguments; `parser` is built with add_help=False (see ModelDefaultsHelp)."""
    parser.add_argument("-h", "--help", action=ModelDefaultsHelp,
                        help="show this help; after --checkpoint DIR, with that model's sampling defaults")
    parser.add_argument("prompts", nargs="*", metavar="PROMPT", help="one or more text descriptions")
    parser.add_argument("--prompts-from", default=None, metavar="FILE",
                        help="more prompts: a CSV with a caption or prompt column, or a text file (one per line)")
    parser.add_argument("--split", default=None, help="with a --prompts-from CSV: only rows of this split")
    parser.add_argument("-o", "--output", default="generated", metavar="OUT",
                        help="a .wav file (one output) or a directory (default: generated/)")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of new audio (default 10)")
    parser.add_argument("--cfg", type=float, default=None,
                        help="classifier-free guidance scale")
    parser.add_argument("--top-k", type=int, default=None, help="top-k sampling")
    parser.add_argument("--top-p", type=float, default=0.0, help="nucleus sampling, 0 = off (default)")
    parser.add_argument("--temperature", type=float, default=None,
                        help="sampling temperature")
    parser.add_argument("--seed", type=int, default=None, help="random seed (recorded in the sidecar)")
    parser.add_argument("--samples", type=int, default=1, help="samples per prompt (default 1)")
    parser.add_argument("--batch-size", type=int, default=4, help="rows generated together (default 4)")
    parser.add_argument("--batch", dest="batch_size", type=int, default=argparse.SUPPRESS,
                        help=argparse.SUPPRESS)  # the old spelling, kept working
    parser.add_argument("--checkpoint", default=None, metavar="RUN_DIR_OR_FILE",
                        help="model dir, training run dir or model.safetensors (default: the shipped model)")
    parser.add_argument("--audio-prompt", default=None, metavar="FILE",
                        help="continue this audio file instead of starting from silence")
    parser.add_argument("--stream", action="store_true",
                        help="write each WAV while it is generated (a valid file at every moment) and "
                             "report time to first audio and the real-time factor")
    parser.add_argument("--chunk-seconds", type=float, default=0.5,
                        help="with --stream: audio per chunk (default 0.5)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu): the LM, codec and text encoder")
    add_decoder_argument(parser)
    parser.add_argument("--decode-dtype", choices=["float32", "bfloat16", "int8"], default="float32",
                        help="weights the LM streams per token (bfloat16/int8: faster, logits within ~1%% of "
                             "float32; int8 is CPU only; default float32, the reference)")
    parser.add_argument("--state-dtype", choices=["float32", "bfloat16"], default="float32",
                        help="how the SSM decode state is stored (bfloat16: half the bytes a step moves with "
                             "many prompts; computed in float32, rounded when stored; needs a C compiler to be "
                             "faster; default float32)")
    parser.add_argument("--compile", action="store_true",
                        help="decode with a torch.compile'd step (simba/mamba; on CPU it needs a C++ compiler): "
                             "per step 1.3-2.2x faster than eager for one prompt, 1.08-1.22x for 4/16/64 prompts "
                             "(float32 weights; results/bench_decode*.json). The first run compiles "
                             "for ~25 s and caches it in ~/.cache/ssmusic/compile ($SSMUSIC_COMPILE_CACHE); later "
                             "runs still spend ~4 s tracing and loading, repaid only over clips of ~15 s or more")
    parser.add_argument("--no-controls", action="store_true",
                        help="a model with controls (a beat clock, a key vector: docs/model.md) hears the BPM and key "
                             "the prompt names by default; this generates from the words alone, to compare")
    parser.add_argument("--no-cuda-graphs", dest="cuda_graphs", action="store_false",
                        help="on CUDA, run the decode step eagerly (the reference) instead of replaying it "
                             "captured in a CUDA graph (the default there; docs/gpu.md)")
    parser.add_argument("--threads", type=int, default=GENERATE_THREADS,
                        help=f"torch CPU threads (default {GENERATE_THREADS}, the fastest measured here; 0: one per "
                             "core; see docs/performance.md)")
