"""What a finished web-demo generation leaves on disk: the WAV, its JSON sidecar, a spectrogram."""

from __future__ import annotations

from pathlib import Path

import torch

from ssmusic.io.atomic import atomic_path, write_json_atomic
from ssmusic.io.audio import write_wav


def output_paths(outputs: Path, job_id: str) -> dict[str, Path]:
    return {kind: outputs / f"{job_id}.{kind}" for kind in ("wav", "json", "png")}


def write_spectrogram(path: Path, audio: torch.Tensor, sample_rate: int, title: str) -> None:
    """A log-magnitude spectrogram of mono audio [N] as a PNG (written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spec = torch.stft(audio.float(), 1024, 256, window=torch.hann_window(1024), return_complex=True).abs()
    db = 20 * torch.log10(spec.clamp(min=1e-5))
    figure, axes = plt.subplots(figsize=(8, 3), dpi=100)
    axes.imshow(db.numpy(), origin="lower", aspect="auto", cmap="magma", vmin=float(db.max()) - 80,
                extent=(0, audio.shape[-1] / sample_rate, 0, sample_rate / 2000))
    axes.set_xlabel("seconds")
    axes.set_ylabel("kHz")
    axes.set_title(title[:90], fontsize=9)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)


def public_description(model) -> dict:
    """What visitors may know about the served model: its folder's name, never where it lives."""
    from ssmusic.pipeline import DEFAULT_MODEL_DIR

    folder = model.model_dir
    name = "the shipped default model" if folder and Path(folder) == DEFAULT_MODEL_DIR else Path(folder or "model").name
    return {"name": name, "backbone": model.lm.config.backbone, "conditioning": model.lm.config.conditioning,
            "codec": Path(model.config.codec).name, "text_encoder": Path(model.config.text_encoder).name,
            "sample_rate": model.sample_rate, "frame_rate": model.config.frame_rate}


def decode_environment(model) -> dict:
    """What decided the speed and the float error of this decode (as generate's sidecars record it):
    torch's threads and, on a CPU, the C state-update kernel or why the reference ran."""
    from ssmusic.model.ops import cpu_step

    on_cpu = model.devices()["lm"].type == "cpu"
    return {"threads": torch.get_num_threads(), "cpu_step_kernel": cpu_step.status() if on_cpu else None}


def write_outputs(model, job, audio: torch.Tensor, outputs: Path) -> None:
    paths = output_paths(outputs, job.id)
    request, sampling = job.request, job.request.sampling
    write_wav(paths["wav"], audio[None], model.sample_rate)
    write_spectrogram(paths["png"], audio, model.sample_rate, request.prompt)
    write_json_atomic(paths["json"], {
        "prompt": request.prompt,
        "seed": sampling.seed,
        "seconds_generated": request.seconds,
        "audio_seconds": audio.shape[-1] / model.sample_rate,
        "sample_rate": model.sample_rate,
        "settings": {"cfg": sampling.cfg_scale, "top_k": sampling.top_k, "temperature": sampling.temperature,
                     **decode_environment(model)},
        "stream": {"time_to_first_audio_s": job.time_to_first_audio_s, "real_time_factor": job.real_time_factor},
        "model": public_description(model),
    })
