"""`ssmusic bench`: decode and training speed, ours beside peers, printed as tables + JSON.

Every measurement runs in a fresh subprocess (so its peak resident memory is its own) and reports
medians of timed repetitions after warm-up. Timings are wall-clock on whatever machine runs this;
compare ratios within one run, not numbers across machines.

Positions: the cost of a step at position P does not depend on the state's values, only on its
size. An SSM state has the same size at every position, so it is filled with random values and the
step is fed position P (its sinusoidal encoding); a Transformer's KV cache is filled with P random
keys/values, which cost the same per step as real ones. Peak memory is therefore the decode state's
(plus weights), not a prefill's. Real generation over 2,588 tokens is timed by `end_to_end`.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from ssmusic.sampling import SamplingParams

DAC44K_FRAME_RATE = 44100 / 512  # 86.13 frames/s
DAC44K_FRAMES_30S = 2588  # 30 s of DAC 44.1 kHz tokens
POSITIONS = (100, 1000, 2588, 10000, 25000)


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _model(backbone: str, preset: str, device: str, **overrides):
    from ssmusic import presets
    from ssmusic.lm import MusicLM

    torch.manual_seed(0)
    config = presets.preset(preset, backbone=backbone, dropout=0.0, **overrides)
    return MusicLM(config).to(device).eval()


def _condition(model, rows: int, text_len: int = 16):
    text = torch.randn(rows, text_len, model.config.text_dim, device=model.null.device)
    null = torch.arange(rows, device=text.device) >= rows // 2  # CFG: conditional + null rows
    return model.condition(text, None, null, rows)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


@torch.inference_mode()
def decode(backbone: str, preset: str, position: int, steps: int, device: str = "cpu") -> dict:
    """Median ms per generated token at `position`, CFG batch 2 (one prompt), full sampling step."""
    from ssmusic.sampling import sample_next

    model = _model(backbone, preset, device)
    cond, mask = _condition(model, 2)
    if backbone == "transformer":
        h, state = model.prefill(cond, mask, position + steps + 8)
        for block in state.blocks:  # a KV cache: fill `position` entries
            cache = block.mixer
            start = cache.length
            cache.k[:, :, start:start + position].normal_()
            cache.v[:, :, start:start + position].normal_()
            cache.key_mask[:, start:start + position] = True
            cache.length = start + position
    else:  # an SSM state has the same size at every position: fill it instead of prefilling P tokens
        h, state = model.prefill(cond, mask, steps + 8)
        for block in state.blocks:
            for ssm in (block.mixer, block.channel_mixer):
                if ssm is not None:
                    ssm.conv.normal_()
                    ssm.ssm.normal_(std=0.1)
    state.position = state.position + position
    generator = torch.Generator(device=device).manual_seed(0)
    times = []
    for t in range(steps + 3):
        _sync(device)
        started = time.perf_counter()
        logits = model._logits(h).float()
        guided = logits[:1] + 2.0 * (logits[:1] - logits[1:])
        token = sample_next(guided, 250, 0.0, 1.0, generator)
        h = model.step(torch.cat([token, token]), state)
        _sync(device)
        if t >= 3:
            times.append(time.perf_counter() - started)
    return {"ms_per_step": 1000 * statistics.median(times), "parameters": model.num_parameters()}


@torch.inference_mode()
def paper_loop(preset: str, position: int, repeats: int, device: str = "cpu") -> dict:
    """The released code's generation: the whole sequence re-run for every new token."""
    model = _model("simba", preset, device)
    text = torch.randn(2, 16, model.config.text_dim, device=device)
    codes = torch.randint(0, model.config.card, (2, 1, position), device=device)
    times = []
    for _ in range(repeats + 1):
        _sync(device)
        started = time.perf_counter()
        model(codes, text, None)
        _sync(device)
        times.append(time.perf_counter() - started)
    return {"ms_per_step": 1000 * statistics.median(times[1:])}


@torch.inference_mode()
def end_to_end(preset: str, frames: int, device: str = "cpu") -> dict:
    """MusicLM.generate (SiMBA, random weights) for `frames` tokens with CFG: what a user waits for,
    minus the codec (see dac_decode) and the text encoder."""
    model = _model("simba", preset, device)
    text = torch.randn(1, 16, model.config.text_dim, device=device)
    _sync(device)
    started = time.perf_counter()
    model.generate(text, None, steps=frames, sampling=SamplingParams(cfg_scale=3.0, top_k=250, seed=0))
    _sync(device)
    wall = time.perf_counter() - started
    return {"wall_s": wall, "frames": frames, "audio_s": frames / DAC44K_FRAME_RATE,
            "real_time_factor": wall / (frames / DAC44K_FRAME_RATE)}


@torch.inference_mode()
def dac_decode(seconds: float, device: str = "cpu") -> dict:
    """transformers' DacModel with dac_44khz's architecture (random weights): codes -> waveform."""
    from transformers import DacConfig, DacModel

    torch.manual_seed(0)
    model = DacModel(DacConfig(sampling_rate=44100)).to(device).eval()
    frames = round(seconds * DAC44K_FRAME_RATE)
    codes = torch.randint(0, 1024, (1, 9, frames), device=device)
    _sync(device)
    started = time.perf_counter()
    model.decode(audio_codes=codes)
    _sync(device)
    return {"wall_s": time.perf_counter() - started, "audio_s": seconds,
            "parameters": sum(p.numel() for p in model.parameters())}


def _timed_generate(model, inputs: dict, new_tokens: int) -> list[float]:
    """transformers .generate with a logits processor that stamps every step."""
    from transformers import LogitsProcessor, LogitsProcessorList

    stamps: list[float] = []

    class Stamp(LogitsProcessor):
        def __call__(self, input_ids, scores):
            stamps.append(time.perf_counter())
            return scores

    model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=True, top_k=250,
                   logits_processor=LogitsProcessorList([Stamp()]))
    return [b - a for a, b in zip(stamps, stamps[1:])]


def _musicgen_config(preset: str, max_tokens: int):
    """transformers' MusicGen decoder at our width, one codebook (the papers' setting, as ours), its own
    4x FFN, and the depth whose parameter count is closest to our SiMBA's at the preset."""
    from transformers import MusicgenDecoderConfig, MusicgenForCausalLM

    from ssmusic import presets
    from ssmusic.presets import count_parameters

    ours = presets.preset(preset)
    target = count_parameters(ours)

    def config(layers: int) -> MusicgenDecoderConfig:
        # as MusicGen: the pad/start id is `vocab_size`, one past the codes (its embedding has a row for it)
        return MusicgenDecoderConfig(vocab_size=ours.card, hidden_size=ours.d_model, num_hidden_layers=layers,
                                     num_attention_heads=ours.n_heads, ffn_dim=4 * ours.d_model, num_codebooks=1,
                                     max_position_embeddings=max(4096, max_tokens), pad_token_id=ours.card,
                                     bos_token_id=ours.card, decoder_start_token_id=ours.card)

    def size(layers: int) -> int:
        with torch.device("meta"):
            return sum(p.numel() for p in MusicgenForCausalLM(config(layers)).parameters())

    one, per_layer = size(1), size(2) - size(1)
    return config(max(1, round((target - one) / per_layer) + 1))


@torch.inference_mode()
def musicgen(preset: str, new_tokens: int, device: str = "cpu") -> dict:
    """transformers' MusicGen decoder of our SiMBA's size (random weights), CFG batch 2; self- and
    cross-attention caches kept apart (see README)."""
    from transformers import MusicgenForCausalLM
    from transformers.cache_utils import DynamicCache, EncoderDecoderCache

    config = _musicgen_config(preset, new_tokens + 16)
    torch.manual_seed(0)
    model = MusicgenForCausalLM(config).to(device).eval()
    start = torch.full((2, 1), config.pad_token_id, dtype=torch.long, device=device)
    text = torch.randn(2, 16, config.hidden_size, device=device)
    inputs = {"input_ids": start, "encoder_hidden_states": text,
              "cache": EncoderDecoderCache(DynamicCache(), DynamicCache()), "num_return_sequences": 1}
    steps = _timed_generate(model, inputs, new_tokens)
    return {"ms_per_step_first_100": 1000 * statistics.median(steps[:100]),
            "ms_per_step_last_100": 1000 * statistics.median(steps[-100:]), "total_s": sum(steps),
            "parameters": sum(p.numel() for p in model.parameters()), "layers": config.num_hidden_layers}


@torch.inference_mode()
def mamba2_peer(preset: str, new_tokens: int, device: str = "cpu") -> dict:
    """transformers' Mamba2 (its CPU reference path) at our small SiMBA's width and depth, batch 2."""
    from transformers import Mamba2Config, Mamba2ForCausalLM

    from ssmusic import presets

    ours = presets.preset(preset)
    config = Mamba2Config(vocab_size=1024, hidden_size=ours.d_model, num_hidden_layers=ours.n_layers,
                          state_size=ours.d_state, head_dim=ours.headdim, expand=ours.expand, n_groups=1,
                          num_heads=ours.expand * ours.d_model // ours.headdim, chunk_size=ours.chunk_size)
    torch.manual_seed(0)
    model = Mamba2ForCausalLM(config).to(device).eval()
    inputs = {"input_ids": torch.zeros(2, 1, dtype=torch.long, device=device)}
    steps = _timed_generate(model, inputs, new_tokens)
    return {"ms_per_step_first_100": 1000 * statistics.median(steps[:100]),
            "ms_per_step_last_100": 1000 * statistics.median(steps[-100:]),
            "parameters": sum(p.numel() for p in model.parameters())}


def training(backbone: str, preset: str, seq_len: int, repeats: int, device: str = "cpu") -> dict:
    """Forward + backward tokens/s, batch 1, one codebook."""
    model = _model(backbone, preset, device)
    model.train()
    codes = torch.randint(0, model.config.card, (1, 1, seq_len), device=device)
    text = torch.randn(1, 16, model.config.text_dim, device=device)
    times = []
    for _ in range(repeats + 1):
        _sync(device)
        started = time.perf_counter()
        model.loss(codes, text, None).backward()
        _sync(device)
        times.append(time.perf_counter() - started)
    return {"tokens_per_s": seq_len / statistics.median(times[1:])}


def matmul_gflops(device: str = "cpu") -> dict:
    a = torch.randn(2048, 2048, device=device)
    b = torch.randn(2048, 2048, device=device)
    a @ b
    _sync(device)
    started = time.perf_counter()
    for _ in range(5):
        a @ b
    _sync(device)
    return {"gflops": 5 * 2 * 2048 ** 3 / (time.perf_counter() - started) / 1e9}


def decode_flops(backbone: str, preset: str, position: int) -> float:
    """Multiply-adds x 2 per generated token for one row: weights touched once per token, plus the
    SSM state update/read-out or attention over `position` cached keys."""
    model = _model(backbone, preset, "meta")
    c = model.config
    flops = 2 * sum(p.numel() for n, p in model.named_parameters() if p.dim() >= 2 and not n.startswith("embed"))
    from ssmusic.layers import SelfAttention
    from ssmusic.mamba2 import Mamba2

    for block in model.blocks:
        for layer in (block.mixer, block.channel_mixer):
            if isinstance(layer, Mamba2):
                flops += 4 * c.expand * c.d_model * c.d_state  # decay+input, read-out
            if isinstance(layer, SelfAttention):
                flops += 4 * position * c.d_model  # q.k and weights.v
    return float(flops)


MEASUREMENTS = {"decode": decode, "paper_loop": paper_loop, "musicgen": musicgen, "mamba2_peer": mamba2_peer,
                "training": training, "matmul_gflops": matmul_gflops, "end_to_end": end_to_end,
                "dac_decode": dac_decode}


def measure(name: str, threads: int, isolate: bool = True, **kwargs) -> dict:
    """Run one measurement in a fresh Python process; adds its peak resident memory (MB).
    `isolate=False` runs it here (fast smoke tests; peak memory is then this process's)."""
    if not isolate:
        return {**MEASUREMENTS[name](**kwargs), "peak_mb": _peak_mb()}
    code = ("import json, sys, torch; from ssmusic import bench; "
            f"torch.set_num_threads({threads}); "
            f"r = bench.MEASUREMENTS[{name!r}](**json.loads(sys.argv[1])); r['peak_mb'] = bench._peak_mb(); "
            "print('RESULT ' + json.dumps(r))")
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, json.dumps(kwargs)], capture_output=True, text=True)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return {**json.loads(line[7:]), "process_s": round(time.perf_counter() - started, 1)}
    return {"error": (out.stderr.strip().splitlines() or ["no output"])[-1][:200]}


def run_all(preset: str = "small", positions=POSITIONS, steps: int = 20, threads: int = 0, device: str = "cpu",
            quick: bool = False, progress: bool = True) -> dict:
    """Every table of `ssmusic bench`. `quick` shrinks everything for smoke tests."""
    threads = threads or torch.get_num_threads()
    isolate = not quick

    def measure(name, threads, **kwargs):
        return globals()["measure"](name, threads, isolate, **kwargs)

    say = print if progress else (lambda *a, **k: None)
    results: dict = {"preset": preset, "device": device, "threads": threads, "steps": steps, "decode": {},
                     "paper_loop": {}, "training": {}, "peers": {}, "end_to_end": {}}
    results["matmul"] = measure("matmul_gflops", threads, device=device)
    for backbone in ("simba", "mamba", "transformer"):
        for position in positions:
            say(f"decode {backbone} @ {position}", flush=True)
            results["decode"][f"{backbone}@{position}"] = {
                **measure("decode", threads, backbone=backbone, preset=preset, position=position, steps=steps,
                          device=device), "flops": decode_flops(backbone, preset, position)}
    for position in [p for p in positions if p <= DAC44K_FRAMES_30S]:
        say(f"paper loop @ {position}", flush=True)
        results["paper_loop"][str(position)] = measure("paper_loop", threads, preset=preset, position=position,
                                                       repeats=1 if quick else 3, device=device)
    frames = 120 if quick else DAC44K_FRAMES_30S
    say(f"peers: MusicGen decoder and transformers' Mamba2 generating {frames} tokens", flush=True)
    results["peers"]["musicgen"] = measure("musicgen", threads, preset=preset, new_tokens=frames, device=device)
    results["peers"]["mamba2"] = measure("mamba2_peer", threads, preset=preset, new_tokens=min(frames, 300),
                                         device=device)
    say(f"end to end: SiMBA generating {frames} tokens with CFG; DAC 44.1 kHz decoding them", flush=True)
    results["end_to_end"]["simba"] = measure("end_to_end", threads, preset=preset, frames=frames, device=device)
    results["end_to_end"]["dac_decode"] = measure("dac_decode", threads, seconds=frames / DAC44K_FRAME_RATE,
                                                  device=device)
    for backbone in ("simba", "mamba", "transformer"):
        for seq_len in ((128,) if quick else (1024, 2588)):
            say(f"training {backbone} @ {seq_len}", flush=True)
            results["training"][f"{backbone}@{seq_len}"] = measure(
                "training", threads, backbone=backbone, preset=preset, seq_len=seq_len, repeats=1 if quick else 2,
                device=device)
    return results


def paper_size(threads: int, device: str = "cpu", positions=(100, 1000, DAC44K_FRAMES_30S), steps: int = 10,
               progress: bool = True, preset: str = "paper", isolate: bool = True) -> dict:
    """The released model's size (`paper` preset, 281M): our recurrent step against the released
    generation loop, which re-runs the whole sequence (60 text tokens + codes) for every token, and
    what that means for 30 s of audio. Totals are integrated from the measured positions (both costs
    are linear in position between them), not timed end to end: the released loop would take hours."""
    say = print if progress else (lambda *a, **k: None)
    out: dict = {"decode": {}, "paper_loop": {}}
    for position in positions:
        say(f"paper size: recurrent SiMBA @ {position}", flush=True)
        out["decode"][str(position)] = measure("decode", threads, isolate, backbone="simba", preset=preset,
                                               position=position, steps=steps, device=device)
        say(f"paper size: released loop @ {position}", flush=True)
        out["paper_loop"][str(position)] = measure("paper_loop", threads, isolate, preset=preset,
                                                   position=position + 60, repeats=1, device=device)
    total = positions[-1]

    def integrate(kind: str) -> float:
        xs = [0, *positions]
        ys = [out[kind][str(positions[0])].get("ms_per_step", float("nan")),
              *(out[kind][str(p)].get("ms_per_step", float("nan")) for p in positions)]
        return sum((xs[i + 1] - xs[i]) * (ys[i] + ys[i + 1]) / 2 for i in range(len(xs) - 1)) / 1000

    out["total_s"] = {"recurrent": integrate("decode"), "paper_loop": integrate("paper_loop"), "frames": total}
    return out


def _paper_size_table(paper: dict) -> list[str]:
    lines = ["Paper size (281M SiMBA), ms per token with CFG batch 2: recurrent vs the released loop "
             "(60 text tokens + position, re-run for every token)", "",
             "| position | recurrent | released loop |", "|---|---|---|"]
    for p in paper["decode"]:
        ours = paper["decode"][p].get("ms_per_step", float("nan"))
        theirs = paper["paper_loop"][p].get("ms_per_step", float("nan"))
        lines.append(f"| {p} | {ours:.1f} | {theirs:.0f} |")
    total = paper["total_s"]
    lines.append(f"| {total['frames']} tokens in all (s, integrated) | {total['recurrent']:.0f} | "
                 f"{total['paper_loop']:.0f} |")
    return lines


def tables(results: dict) -> str:
    if "paper_size" in results and not results["decode"]:
        return "\n".join([f"device {results['device']}, {results['threads']} threads", "",
                          *_paper_size_table(results["paper_size"])])
    lines = [f"preset {results['preset']}, device {results['device']}, {results['threads']} threads; "
             f"matmul peak {results['matmul'].get('gflops', float('nan')):.0f} GFLOP/s", ""]
    positions = sorted({int(k.split("@")[1]) for k in results["decode"]})
    lines += ["Decode, ms per generated token (CFG batch 2) [peak MB]", "",
              "| backbone | " + " | ".join(str(p) for p in positions) + " |", "|---" * (len(positions) + 1) + "|"]
    for backbone in ("simba", "mamba", "transformer"):
        cells = []
        for p in positions:
            r = results["decode"].get(f"{backbone}@{p}", {})
            cells.append(f"{r['ms_per_step']:.2f} [{r['peak_mb']:.0f}]" if "ms_per_step" in r else r.get("error", "-"))
        lines.append(f"| {backbone} | " + " | ".join(cells) + " |")
    gflops = results["matmul"].get("gflops", float("nan"))
    lines += ["", "FLOP floor per step (2 rows at the matmul peak) vs measured, at the first position", "",
              "| backbone | GFLOP/step | floor ms | measured ms | x floor |", "|---|---|---|---|---|"]
    for backbone in ("simba", "mamba", "transformer") if positions else ():
        r = results["decode"].get(f"{backbone}@{positions[0]}", {})
        if "ms_per_step" in r:
            floor = 2 * r["flops"] / (gflops * 1e9) * 1000
            lines.append(f"| {backbone} | {2 * r['flops'] / 1e9:.3f} | {floor:.3f} | {r['ms_per_step']:.2f} | "
                         f"{r['ms_per_step'] / floor:.0f} |")
    if results["paper_loop"]:
        lines += ["", "Paper's loop (full sequence re-run per token) vs recurrent SiMBA, ms per token", "",
                  "| position | paper loop | recurrent |", "|---|---|---|"]
        for p, r in results["paper_loop"].items():
            ours = results["decode"].get(f"simba@{p}", {}).get("ms_per_step", float("nan"))
            lines.append(f"| {p} | {r.get('ms_per_step', float('nan')):.1f} | {ours:.2f} |")
    mg, m2 = results["peers"].get("musicgen", {}), results["peers"].get("mamba2", {})
    lines += ["", "Peers (transformers, random weights, batch 2), ms per token", "",
              "| model | params | first 100 | last 100 | total s |", "|---|---|---|---|---|"]
    for name, r in (("MusicGen decoder (KV cache)", mg), ("Mamba2ForCausalLM (its cache)", m2)):
        if "ms_per_step_first_100" in r:
            total = f"{r['total_s']:.1f}" if "total_s" in r else "- (300 tokens)"
            lines.append(f"| {name} | {r['parameters'] / 1e6:.1f}M | {r['ms_per_step_first_100']:.2f} | "
                         f"{r['ms_per_step_last_100']:.2f} | {total} |")
        else:
            lines.append(f"| {name} | - | {r.get('error', '-')} | | |")
    e2e, dac = results["end_to_end"].get("simba", {}), results["end_to_end"].get("dac_decode", {})
    if "wall_s" in e2e:
        lines += ["", f"End to end: {e2e['frames']} tokens ({e2e['audio_s']:.1f} s of DAC-44k audio), CFG, "
                  "SiMBA generate + DAC decode", "", "| part | wall s | real-time factor |", "|---|---|---|",
                  f"| SiMBA generate | {e2e['wall_s']:.1f} | {e2e['real_time_factor']:.2f} |"]
        if "wall_s" in dac:
            lines.append(f"| DAC 44.1 kHz decode ({dac['parameters'] / 1e6:.0f}M) | {dac['wall_s']:.1f} | "
                         f"{dac['wall_s'] / dac['audio_s']:.2f} |")
    lines += ["", "Training, forward + backward tokens/s (batch 1)", "", "| backbone | seq | tokens/s |", "|---|---|---|"]
    for key, r in results["training"].items():
        backbone, seq = key.split("@")
        lines.append(f"| {backbone} | {seq} | {r.get('tokens_per_s', float('nan')):.0f} |")
    return "\n".join(lines)


def run(args) -> int:
    from ssmusic.atomic import write_json_atomic

    positions = tuple(int(p) for p in args.positions.split(",")) if args.positions else POSITIONS
    if args.quick:
        positions = positions if args.positions else (16, 64)
    if args.paper_size:
        threads = args.threads or torch.get_num_threads()
        results = {"preset": "paper", "device": args.device, "threads": threads, "matmul": {}, "decode": {},
                   "paper_loop": {}, "peers": {}, "training": {}, "end_to_end": {},
                   "paper_size": paper_size(threads, args.device)}
    else:
        results = run_all(args.preset if not args.quick else "tiny", positions,
                          args.steps if not args.quick else 3, args.threads, args.device, args.quick)
    text = tables(results)
    print(text)
    if args.out:
        write_json_atomic(args.out, results)
        Path(args.out).with_suffix(".md").write_text(text + "\n")
    return 0
