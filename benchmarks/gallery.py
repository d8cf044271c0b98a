"""The docs' gallery: the model card's example prompts (the web demo's examples, the same list),
generated once each, as audio, a spectrogram and what the judges hear in it.

    python benchmarks/gallery.py --out docs/gallery [--model DIR] [--seed 0] [--threads 1]

Writes OUT/NN.ogg (Vorbis, small enough to commit), OUT/NN.png (log-mel spectrogram), OUT/gallery.json
(prompts, seed, sampling, seconds to generate each on this machine, and per clip the judges'
readings: tempo, key, longest frozen codec run, onset rate, the music network's top tags) and
OUT/README.md, the page linked from the docs. Every clip is generated with the same seed, so the
gallery is reproducible; it is not picked: each example is generated once.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ssmusic.io.atomic import atomic_path, write_json_atomic, write_text_atomic

KEYS = ["C", "C♯", "D", "E♭", "E", "F", "F♯", "G", "A♭", "A", "B♭", "B"]


def spectrogram_png(wav: np.ndarray, sample_rate: int, path: Path, title: str) -> None:
    """A log-mel spectrogram (librosa's, 128 bands, 0-8 kHz) as a small PNG."""
    import librosa
    import librosa.display
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mel = librosa.feature.melspectrogram(y=wav, sr=sample_rate, n_fft=2048, hop_length=512, n_mels=128, fmax=8000)
    figure, axis = plt.subplots(figsize=(8, 2.4), dpi=80)
    librosa.display.specshow(librosa.power_to_db(mel, ref=np.max), sr=sample_rate, hop_length=512, x_axis="time",
                             y_axis="mel", fmax=8000, ax=axis, cmap="magma")
    axis.set_title(title if len(title) <= 90 else title[:87] + "...", fontsize=9)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)


def readings(wav: np.ndarray, sample_rate: int, music, network) -> dict:
    """What the judges hear in one clip (the same readers `ssmusic evaluate` uses)."""
    music_fields = music.fields(music.embed(torch.from_numpy(wav)))
    out = {"tempo_bpm": round(music_fields["tempo_bpm"], 1),
           "key": f"{KEYS[music_fields['key_tonic']]} {music_fields['key_mode']}",
           "frozen_run_s": round(music_fields["frozen_run_s"], 2),
           "onset_rate": round(music_fields["onset_rate"], 2), "distinct_tokens": music_fields["distinct_tokens"]}
    if network is not None:
        from ssmusic.io.audio import resample_array

        _, tags = network.split(network.embed(torch.from_numpy(resample_array(wav, sample_rate, 16000))))
        top = np.argsort(tags)[::-1][:3]
        out["top_tags"] = [f"{network.tag_names[i]} {tags[i]:.2f}" for i in top]
    return out


def page(record: dict) -> str:
    lines = ["# Gallery", "",
             f"The default model's card examples (the web demo's example prompts), each generated once with seed "
             f"{record['seed']} and the model's sampling defaults (temperature {record['sampling']['temperature']}, "
             f"CFG {record['sampling']['cfg_scale']}, top-k {record['sampling']['top_k']}); not picked. Command:",
             "", "```bash", record["command"], "```", "",
             "Beside each clip, what the judges of [evaluation.md](../evaluation.md) hear in it (librosa's tempo and "
             "key, the longest run of one identical codec frame, onsets per second, the music network's top tags). "
             f"Generation times are on this machine with {record['threads']} thread(s).", ""]
    for clip in record["clips"]:
        r = clip["readings"]
        tags = ", ".join(r.get("top_tags", []))
        lines += [f"### {clip['index']:02d}. {clip['prompt']}", "",
                  f"[{clip['audio']}]({clip['audio']}) · heard: {r['tempo_bpm']} BPM, {r['key']}, frozen run "
                  f"{r['frozen_run_s']} s, {r['onset_rate']} onsets/s; tags: {tags} · generated in "
                  f"{clip['generate_s']:.1f} s", "", f"![spectrogram]({clip['spectrogram']})", ""]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/gallery"))
    parser.add_argument("--model", default=None, help="model directory (default: the shipped model)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import soundfile as sf

    from ssmusic import TextToMusic
    from ssmusic.metrics.clips import MusicReader, NetworkReader
    from ssmusic.pipeline import resolve_model_dir
    from ssmusic.serve.card import read_model_card

    model_dir = resolve_model_dir(args.model)
    examples = read_model_card(model_dir)["examples"]
    if not examples:
        raise SystemExit(f"{model_dir}: its model_card.json has no examples to generate")
    model = TextToMusic.from_pretrained(model_dir)
    music = MusicReader(model.codec)
    try:
        network = NetworkReader()
    except Exception as error:  # the gallery still shows audio and tempo/key without the network
        print(f"no music network tags: {error}", file=sys.stderr)
        network = None
    args.out.mkdir(parents=True, exist_ok=True)
    clips = []
    from tqdm import tqdm

    for index, example in enumerate(tqdm(examples, desc="gallery", unit="clip")):
        started = time.perf_counter()
        audio, sample_rate = model.generate([example["prompt"]], seconds=example["seconds"], seed=args.seed)
        seconds = time.perf_counter() - started
        wav = audio[0, 0].numpy().astype(np.float32)
        audio_name, png_name = f"{index:02d}.ogg", f"{index:02d}.png"
        with atomic_path(args.out / audio_name) as tmp:
            sf.write(str(tmp), wav, sample_rate, format="OGG", subtype="VORBIS")
        spectrogram_png(wav, sample_rate, args.out / png_name, example["prompt"])
        clips.append({"index": index, "prompt": example["prompt"], "seconds": example["seconds"],
                      "audio": audio_name, "spectrogram": png_name, "generate_s": round(seconds, 2),
                      "readings": readings(wav, sample_rate, music, network)})
    sampling = model.sampling()
    record = {"command": " ".join(["python benchmarks/gallery.py", *sys.argv[1:]]),
              "model": model_dir.name, "seed": args.seed, "threads": args.threads,
              "sampling": {"temperature": sampling.temperature, "cfg_scale": sampling.cfg_scale,
                           "top_k": sampling.top_k}, "clips": clips}
    write_json_atomic(args.out / "gallery.json", record)
    write_text_atomic(args.out / "README.md", page(record))
    print(f"gallery: {len(clips)} clips in {args.out}")


if __name__ == "__main__":
    main()
