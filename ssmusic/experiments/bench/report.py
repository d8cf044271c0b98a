"""The Markdown tables `ssmusic bench` prints and writes beside its JSON."""

from __future__ import annotations

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


FLOOR_TARGET, PEAK_TARGET = 1.3, 60.0  # issue 18: a step within 1.3x its floor; 64 prompts >= 60% of peak


def _compile_start_lines(start: dict, compiled: dict) -> list[str]:
    """What the compiled step costs before it runs: its first step, traced and compiled or loaded."""
    if "first_step_s" not in start.get("warm", {}):
        return []
    cold, warm = start["cold"], start["warm"]
    firsts = ", ".join(f"{dtype} {r['first_step_s']:.1f} s" for dtype, r in compiled.items() if "first_step_s" in r)
    return ["", f"Compiled one-prompt step, float32, in a fresh process: first step {cold['first_step_s']:.1f} s with "
            f"an empty compile cache ({cold['cache_misses']} misses), {warm['first_step_s']:.1f} s with it filled "
            f"({warm['cache_hits']} hits, {warm['cache_misses']} misses). First steps in the bench process "
            f"(default cache): {firsts or '-'}."]


def _floor_tables(results: dict) -> list[str]:
    floor, batch, agreement = results.get("floor", {}), results.get("batch", {}), results.get("agreement", {})
    if "floor_ms" not in floor:
        return ["Decode floor: " + floor.get("error", "not measured"), ""]
    bw = floor["bandwidth"]
    lines = [f"One prompt (CFG pair), {floor['parameters'] / 1e6:.1f}M parameters: the step against the float32 "
             f"weight-streaming floor ({floor['weight_mb']:.0f} MB at {bw['gbps']:.1f} GB/s, the best of a "
             f"reduction {bw['reduce_gbps']:.1f} and a matrix-vector product {bw['matvec_gbps']:.1f}; "
             f"target <= {FLOOR_TARGET}x)", "",
             "| weights | step | MB streamed | floor ms | step ms | x floor |", "|---|---|---|---|---|---|"]
    for path, steps in (("eager", floor["steps"]), ("compiled", floor.get("compiled", {}))):
        for dtype, r in steps.items():
            lines.append(f"| {dtype} | {path} | {r['weight_mb']:.0f} | {floor['floor_ms']:.2f} | {r['ms']:.2f} | "
                         f"{r['x_floor']:.2f} |")
    if "rows" in batch:
        bf16_peak = (f"; the bfloat16 matmul peak is {batch['bf16_matmul_gflops']:.0f}"
                     if "bf16_matmul_gflops" in batch else "")
        lines += ["", f"Many prompts (CFG: 2 rows each) against the float32 matmul peak "
                  f"{batch['matmul_gflops']:.0f} GFLOP/s{bf16_peak} (target >= {PEAK_TARGET:.0f}% at 64 prompts)", "",
                  "| weights | SSM state | step | prompts | ms per step | tokens/s | GFLOP/s | % of peak |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in batch["rows"].values():
            lines.append(f"| {r['dtype']} | {r.get('state', 'float32')} | {r.get('path', 'eager')} | {r['prompts']} | "
                         f"{r['ms_per_step']:.1f} | {r['tokens_per_s']:.0f} | {r['gflops']:.1f} | {r['pct_of_peak']:.0f} |")
    lines += _compile_start_lines(results.get("compile_start", {}), floor.get("compiled", {}))
    if "max_abs_logit" in agreement:
        lines += ["", f"Default model's logits against float32 ({agreement['tokens']} teacher-forced tokens of its "
                  f"own generations; largest |logit| {agreement['max_abs_logit']:.1f})", "",
                  "| decoding with | max abs diff | mean KL | top-1 agreement |", "|---|---|---|---|"]
        for dtype in ("bfloat16", "int8", "bfloat16 state"):
            if dtype in agreement:
                r = agreement[dtype]
                lines.append(f"| {dtype} | {r['max_abs_diff']:.3f} | {r['mean_kl']:.1e} | {100 * r['top1_agreement']:.1f}% |")
    return lines + [""] + _threads_lines(results.get("threads_table"))


def _threads_lines(table: dict | None) -> list[str]:
    """The decode step and training at 1 and 2 threads, with 2 against 1 (below 1: the second thread helps)."""
    if not table:
        return []
    lines = [f"Threads (OMP_WAIT_POLICY {table['wait_policy']}): one-prompt SiMBA step at position 1000 and "
             "training, at each thread count", "",
             "| threads | decode ms/step | training tokens/s |", "|---|---|---|"]
    for threads, row in table["rows"].items():
        decode, training = row["decode"], row["training"]
        lines.append(f"| {threads} | {decode['ms_per_step']:.2f} | {training['tokens_per_s']:.0f} |"
                     if "ms_per_step" in decode and "tokens_per_s" in training
                     else f"| {threads} | {decode.get('error', '-')} | {training.get('error', '-')} |")
    return lines + [""]


def tables(results: dict) -> str:
    head = f"preset {results['preset']}, device {results['device']}, {results['threads']} threads"
    if "decode" not in results:
        return "\n".join([head, "", *_floor_tables(results)]).rstrip()
    if "paper_size" in results and not results["decode"]:
        return "\n".join([f"device {results['device']}, {results['threads']} threads", "",
                          *_paper_size_table(results["paper_size"])])
    lines = [f"{head}; matmul peak {results['matmul'].get('gflops', float('nan')):.0f} GFLOP/s", ""]
    if "floor" in results:
        lines += _floor_tables(results)
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
