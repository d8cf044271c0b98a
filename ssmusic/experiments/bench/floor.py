"""The decode step against its memory floor, and batches against the matmul peak.

A one-prompt step (CFG pair: 2 rows) is matrix-vector work: it must stream every weight it uses
once per token, so the time to stream the model's float32 weights once, at the best bandwidth this
machine shows in the same process (a large reduction or a large matrix-vector product), is its
floor. Many prompts turn the products into matrix-matrix work, bound by the matmul peak instead.
Both bounds are measured in the same process as the steps they are compared with, because on a
shared machine the same step varies by tens of percent between runs.
"""

from __future__ import annotations

import statistics
import time

import torch

from ssmusic.experiments.bench.timing import matmul_gflops, sync
from ssmusic.model.lm import MusicLM
from ssmusic.model.sampling import sample_next

STREAM_MB = 256  # far beyond any cache, so it measures memory, not cache, bandwidth
PER_STEP_UNUSED = ("embed", "text_proj", "pooled_proj", "text_norm", "pooled_norm", "null", "bos")


def stream_gbps(device: str = "cpu", repeats: int = 5) -> dict:
    """GB/s of reading STREAM_MB once: the best of a sum and of a matrix-vector product."""
    n = STREAM_MB * 2 ** 20 // 4
    flat = torch.randn(n, device=device)
    matrix, vector = flat.view(8192, n // 8192), torch.randn(n // 8192, device=device)
    best = {}
    for name, fn in (("reduce", flat.sum), ("matvec", lambda: matrix @ vector)):
        times = []
        for _ in range(repeats + 1):
            sync(device)
            started = time.perf_counter()
            fn()
            sync(device)
            times.append(time.perf_counter() - started)
        best[f"{name}_gbps"] = n * 4 / min(times[1:]) / 1e9
    return {**best, "gbps": max(best.values())}


def step_bytes(model: MusicLM, dtype: str = "float32") -> int:
    """Bytes of weights one step reads: every parameter but the embeddings (one row each) and the
    caption's projections (used once, at prefill); linear weights as stored for `dtype`."""
    total = 0
    for name, module in model.named_modules():
        for pname, p in module.named_parameters(recurse=False):
            full = f"{name}.{pname}" if name else pname
            if full.startswith(PER_STEP_UNUSED):
                continue
            if pname == "weight" and getattr(module, "decode_dtype", "float32") != "float32" and dtype != "float32":
                total += module.decode_weight.numel() * module.decode_weight.element_size()
                scales = module._buffers.get("decode_scales")
                total += 0 if scales is None else scales.numel() * scales.element_size()
            else:
                total += p.numel() * p.element_size()
    return total


def step_flops(model: MusicLM) -> float:
    """FLOPs per row of one step: 2 per weight of every product, plus the SSM state's update and
    read-out (4 per state entry)."""
    flops = 2 * sum(p.numel() for n, p in model.named_parameters() if p.dim() >= 2 and not n.startswith(PER_STEP_UNUSED))
    for module in model.modules():
        if hasattr(module, "allocate") and hasattr(module, "d_state"):  # a Mamba2 layer
            flops += 4 * module.nheads * module.headdim * module.d_state
    return float(flops)


@torch.inference_mode()
def time_steps(model: MusicLM, prompts: int, steps: int, device: str = "cpu", warmup: int = 3) -> list[float]:
    """Seconds per full sampling step (logits, CFG, top-k draw, state update) for `prompts` prompts,
    i.e. 2 x prompts rows with CFG, from a prefilled random caption."""
    rows = 2 * prompts
    text = torch.randn(rows, 16, model.config.text_dim, device=device)
    null = torch.arange(rows, device=device) >= prompts
    cond, mask = model.condition(text, None, null, rows)
    h, state = model.prefill(cond, mask, steps + warmup + 1, pooled=model.pooled(text, None, null, rows))
    generator = torch.Generator(device=device).manual_seed(0)
    times = []
    for t in range(steps + warmup):
        sync(device)
        started = time.perf_counter()
        logits = model._logits(h).float()
        guided = logits[:prompts] + 2.0 * (logits[:prompts] - logits[prompts:])
        token = sample_next(guided, 250, 0.0, 1.0, generator)
        h = model.step(torch.cat([token, token]), state)
        sync(device)
        if t >= warmup:
            times.append(time.perf_counter() - started)
    return times


def _model(preset: str, device: str, compiled: bool = False, cache: str | None = None) -> MusicLM:
    from ssmusic.model import presets
    from ssmusic.model.compiled import compile_decode

    torch.manual_seed(0)
    model = MusicLM(presets.preset(preset, dropout=0.0)).to(device).eval()
    return compile_decode(model, cache) if compiled else model


def _first_step_s(model: MusicLM, prompts: int, device: str) -> float:
    """The first step alone: with a compiled model, the trace and the compile (or the cache load)."""
    return time_steps(model, prompts, 1, device, warmup=0)[0]


def decode_floor(preset: str, steps: int, device: str = "cpu", dtypes=("float32", "bfloat16", "int8"),
                 rounds: int = 3, compiled: bool = False) -> dict:
    """One prompt (CFG pair): the median step for each weight type, in `rounds` interleaved rounds
    (so a burst of load hits every type alike), against the float32 streaming floor; the bandwidth is
    measured before and after the steps and the best kept. `compiled`: the compiled step
    (ssmusic.model.compiled) too, interleaved with the eager one, under "compiled"."""
    paths = {"eager": _model(preset, device)}
    if compiled:
        paths["compiled"] = _model(preset, device, compiled=True)
    model = paths["eager"]
    dtypes = [d for d in dtypes if not (d == "int8" and device != "cpu")]
    first = {d: _first_step_s(paths["compiled"].set_decode_dtype(d), 1, device) for d in dtypes} if compiled else {}
    bandwidth = stream_gbps(device)
    times: dict[tuple[str, str], list[float]] = {(p, d): [] for p in paths for d in dtypes}
    for _ in range(rounds):
        for dtype in dtypes:
            for path, m in paths.items():
                times[path, dtype] += time_steps(m.set_decode_dtype(dtype), 1, steps, device)
    after = stream_gbps(device)
    bandwidth = {k: max(bandwidth[k], after[k]) for k in bandwidth}
    fp32_bytes = step_bytes(model.set_decode_dtype("float32"))
    floor_ms = fp32_bytes / (bandwidth["gbps"] * 1e9) * 1000
    out = {"bandwidth": bandwidth, "weight_mb": fp32_bytes / 1e6, "floor_ms": floor_ms, "steps": {},
           "parameters": model.num_parameters()}
    for path in paths:
        rows = out["steps"] if path == "eager" else out.setdefault("compiled", {})
        for dtype in dtypes:
            ms = 1000 * statistics.median(times[path, dtype])
            rows[dtype] = {"ms": ms, "x_floor": ms / floor_ms,
                           "weight_mb": step_bytes(model.set_decode_dtype(dtype), dtype) / 1e6}
            if path == "compiled":
                rows[dtype]["first_step_s"] = first[dtype]
    return out


def compile_start(preset: str, dtype: str = "float32", cache: str | None = None, device: str = "cpu") -> dict:
    """What a process pays before its first compiled one-prompt step: seconds to build the model and
    run that step (trace, then compile or load from the disk cache `cache`), and the cache counters."""
    from torch._dynamo.utils import counters

    started = time.perf_counter()
    model = _model(preset, device, compiled=True, cache=cache).set_decode_dtype(dtype)
    first = _first_step_s(model, 1, device)
    return {"first_step_s": first, "model_and_first_step_s": time.perf_counter() - started,
            "cache_hits": counters["aot_autograd"]["autograd_cache_hit"] + counters["inductor"]["fxgraph_cache_hit"],
            "cache_misses": counters["aot_autograd"]["autograd_cache_miss"] + counters["inductor"]["fxgraph_cache_miss"]}


BATCH_TYPES = (("float32", "float32"), ("bfloat16", "float32"), ("bfloat16", "bfloat16"))  # (weights, SSM state)


def batch_throughput(preset: str, steps: int, device: str = "cpu", prompts=(1, 4, 16, 64),
                     dtypes=BATCH_TYPES, compiled: bool = False) -> dict:
    """Generated tokens/s for each number of prompts (CFG: twice the rows) and the FLOP rate that
    implies, against the float32 matmul peak measured in this process (before and after, best; the
    bfloat16 one is recorded beside it). `dtypes`: (weights, state) pairs, or weight types with a
    float32 state. `compiled`: the compiled step too, its rows keyed "compiled <weights>/<state>@<prompts>"."""
    paths = {"eager": _model(preset, device)}
    if compiled:
        paths["compiled"] = _model(preset, device, compiled=True)
    peak = matmul_gflops(device)["gflops"]
    flops = step_flops(paths["eager"])
    out: dict = {"flops_per_row": flops, "rows": {}}
    for dtype, state in (d if isinstance(d, tuple) else (d, "float32") for d in dtypes):
        for n in prompts:
            for path, model in paths.items():  # interleaved, so a burst of load hits both alike
                model.set_decode_dtype(dtype).set_state_dtype(state)
                seconds = statistics.median(time_steps(model, n, steps, device))
                gflops = 2 * n * flops / seconds / 1e9
                key = f"{dtype}/{state}@{n}" if path == "eager" else f"compiled {dtype}/{state}@{n}"
                out["rows"][key] = {"prompts": n, "dtype": dtype, "state": state, "path": path,
                                    "ms_per_step": 1000 * seconds, "tokens_per_s": n / seconds, "gflops": gflops}
    out["matmul_gflops"] = max(peak, matmul_gflops(device)["gflops"])
    out["bf16_matmul_gflops"] = matmul_gflops(device, torch.bfloat16)["gflops"]
    for row in out["rows"].values():
        row["pct_of_peak"] = 100 * row["gflops"] / out["matmul_gflops"]
    return out


@torch.inference_mode()
def logits_agreement(model: MusicLM, codes: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor | None,
                     dtypes=("bfloat16", "int8", "bfloat16 state")) -> dict:
    """Teacher-forced recurrent logits with bf16 / int8 decode weights (or a bf16 SSM state,
    "bfloat16 state") against float32 on the same
    codes: the largest absolute difference (and the largest logit, for scale), the mean KL divergence
    of the sampling distributions (temperature 1) and how often the most likely token agrees."""
    model.set_decode_dtype("float32")
    reference = model.recurrent_logits(codes, text, text_mask).float()
    log_p = torch.log_softmax(reference, dim=-1)
    out = {"max_abs_logit": reference.abs().max().item(), "tokens": int(reference[..., 0].numel())}
    for dtype in dtypes:
        if dtype == "int8" and reference.device.type != "cpu":
            continue
        if dtype == "bfloat16 state":  # float32 weights, the SSM state stored in bfloat16
            logits = model.set_state_dtype("bfloat16").recurrent_logits(codes, text, text_mask).float()
            model.set_state_dtype("float32")
        else:
            logits = model.set_decode_dtype(dtype).recurrent_logits(codes, text, text_mask).float()
        kl = (log_p.exp() * (log_p - torch.log_softmax(logits, dim=-1))).sum(-1)
        out[dtype] = {"max_abs_diff": (logits - reference).abs().max().item(), "mean_kl": kl.mean().item(),
                      "top1_agreement": (logits.argmax(-1) == reference.argmax(-1)).float().mean().item()}
    model.set_decode_dtype("float32")
    return out


def default_model_agreement(seconds: float = 4.0, prompts: int = 4) -> dict:
    """logits_agreement on the shipped default model, over codes it generates (float32, seed 0)
    from the first demo captions: the distribution the fast paths actually see."""
    from ssmusic.pipeline import TextToMusic

    captions = ["a calm piano melody", "an energetic drum groove with bass", "a slow string pad",
                "a bright acoustic guitar strum"][:prompts]
    pipe = TextToMusic.from_pretrained()
    codes = pipe.generate_codes(captions, seconds=seconds, sampling=pipe.sampling(seed=0))
    text, mask = pipe.encode_text(captions)
    return {"captions": captions, **logits_agreement(pipe.lm, codes, text, mask)}
