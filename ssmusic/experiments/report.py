"""Tables and plots of a seeded `ssmusic compare`: mean and spread (min-max over seeds) per
evaluation step, against optimizer steps and against training wall time.

Input: curves[variant][seed] = the run's metrics.jsonl records, generation[variant][seed] = its
generation.jsonl records (FAD, KL, adherence and the judges that hear music at chosen steps).
"""

from __future__ import annotations

import statistics
from pathlib import Path

GENERATION_METRICS = ("fad", "kl", "adherence", "music_fd", "music_fd_floor", "tag_adherence", "frozen_ratio",
                      "tempo_hit", "mode")


def spread(values: list[float]) -> dict:
    return {"mean": round(statistics.fmean(values), 5), "min": min(values), "max": max(values), "n": len(values)}


def parameter_count(model_dir: Path) -> int | None:
    from ssmusic.io.atomic import read_json
    from ssmusic.config import LMConfig, from_dict
    from ssmusic.model.presets import count_parameters

    path = model_dir / "lm_config.json"
    if not path.is_file():
        return None
    return count_parameters(from_dict(LMConfig, read_json(path), str(path)))


def by_step(runs: dict[int, list[dict]], key: str) -> dict[int, dict]:
    """step -> spread of `key` over the seeds, at the steps every seed recorded it."""
    values: dict[int, list[float]] = {}
    for records in runs.values():
        for record in records:
            if record.get(key) is not None:
                values.setdefault(record["step"], []).append(record[key])
    return {step: spread(v) for step, v in sorted(values.items()) if len(v) == len(runs)}


def _at_budget(records: list[dict], budget: float) -> float | None:
    """The last validation loss reached within `budget` seconds of training."""
    within = [r["val_loss"] for r in records if "val_loss" in r and r["wall_s"] <= budget + 1e-9]
    return within[-1] if within else None


def summarize(curves: dict[str, dict[int, list[dict]]], generation: dict[str, dict[int, list[dict]]] | None = None,
              reference: str | None = None) -> dict:
    """Mean/min/max over seeds of validation loss, conditioning gap and wall time per evaluation step;
    the equal-wall-time view; when (in steps and seconds, on the seed-mean curve) each variant first
    reaches the reference's final mean validation loss; generation metrics per checked step."""
    reference = reference or next((v for v in curves if v.startswith("transformer")), None)
    summary: dict = {"variants": list(curves), "reference": reference, "val_loss": {}, "cond_gap": {},
                     "wall_s": {}, "tokens_per_s": {}, "generation": {}, "generation_wall_s": {}}
    for variant, runs in curves.items():
        evals = {seed: [r for r in records if "val_loss" in r] for seed, records in runs.items()}
        for key in ("val_loss", "cond_gap", "wall_s"):
            summary[key][variant] = {str(step): value for step, value in by_step(evals, key).items()}
        speeds = [r["tokens_per_s"] for records in runs.values() for r in records[1:]]
        summary["tokens_per_s"][variant] = round(statistics.median(speeds), 1) if speeds else None
        for metric in GENERATION_METRICS:
            table = by_step((generation or {}).get(variant, {}), metric) if generation else {}
            if table:
                summary["generation"].setdefault(metric, {})[variant] = {str(s): v for s, v in table.items()}
        checked = {int(s) for table in summary["generation"].values() for s in table.get(variant, {})}
        if checked:  # training wall time at each checked step, for the generation metrics vs wall time
            at_checks = {seed: [r for r in records if r["step"] in checked] for seed, records in runs.items()}
            summary["generation_wall_s"][variant] = {str(s): v for s, v in by_step(at_checks, "wall_s").items()}
    finals = {v: statistics.fmean(records[-1]["wall_s"] for records in runs.values() if records)
              for v, runs in curves.items() if any(runs.values())}
    budget = min(finals.values()) if finals else 0.0
    summary["equal_wall_time"] = {"budget_s": round(budget, 1), "val_loss": {}}
    for variant, runs in curves.items():
        losses = [_at_budget(records, budget) for records in runs.values()]
        if losses and all(v is not None for v in losses):
            summary["equal_wall_time"]["val_loss"][variant] = spread(losses)
    summary["reference_final_val_loss"], summary["first_reaching_reference"] = None, {}
    if reference in summary["val_loss"] and summary["val_loss"][reference]:
        target = list(summary["val_loss"][reference].values())[-1]["mean"]
        summary["reference_final_val_loss"] = target
        for variant in curves:
            hits = [s for s, v in summary["val_loss"][variant].items() if v["mean"] <= target]
            summary["first_reaching_reference"][variant] = (
                {"step": int(hits[0]), "wall_s": round(summary["wall_s"][variant][hits[0]]["mean"], 1)}
                if hits else None)
    return summary


def interpolated(curve: dict[str, dict], at_step: float) -> dict | None:
    """The seed-mean curve read at a fractional step, linearly between the evaluations either side
    (the last evaluation within a budget can lie far below it when evaluations are sparse)."""
    steps = sorted(int(s) for s in curve)
    at_step = round(at_step, 6)
    below, above = [s for s in steps if s <= at_step], [s for s in steps if s >= at_step]
    if not below or not above:
        return None
    low, high = below[-1], above[0]
    a, b = curve[str(low)]["mean"], curve[str(high)]["mean"]
    mean = a if high == low else a + (b - a) * (at_step - low) / (high - low)
    return {"at_step": round(at_step, 1), "between": [low, high], "mean": round(mean, 5)}


def calibrated_time(summary: dict, step_seconds: dict[str, float]) -> dict:
    """The equal-time view on the calibrated axis (step × each variant's seconds per step, timed
    under the same load): the budget is the shortest variant's full run; per variant, the seed spread
    of the last validation loss and of each generation metric at the last step within it, and the
    seed-mean validation loss interpolated at the budget."""
    finals = {v: max(int(s) for s in summary["val_loss"][v]) for v in summary["variants"] if summary["val_loss"][v]}
    budget = min(finals[v] * step_seconds[v] for v in finals)
    view: dict = {"step_seconds": step_seconds, "budget_s": round(budget, 1), "val_loss": {}, "generation": {},
                  "val_loss_interpolated": {}}
    for variant in finals:
        at_budget = interpolated(summary["val_loss"][variant], budget / step_seconds[variant])
        if at_budget:
            view["val_loss_interpolated"][variant] = at_budget
        within = budget / step_seconds[variant] + 1e-6
        evaluated = [s for s in summary["val_loss"][variant] if int(s) <= within]
        if evaluated:
            view["val_loss"][variant] = {"step": int(evaluated[-1]), **summary["val_loss"][variant][evaluated[-1]]}
        for metric, table in summary["generation"].items():
            checked = [s for s in table.get(variant, {}) if int(s) <= within]
            if checked:
                view["generation"].setdefault(metric, {})[variant] = {"step": int(checked[-1]),
                                                                     **table[variant][checked[-1]]}
    return view


def _calibrated_lines(view: dict, variants: list[str], header: list[str]) -> list[str]:
    seconds = ", ".join(f"{v} {view['step_seconds'][v]:.3f}" for v in variants if v in view["step_seconds"])
    lines = ["", f"At equal calibrated training time ({view['budget_s']:.0f} s = the shortest variant's full run; "
             f"steps × seconds per step timed in interleaved rounds under the same load: {seconds}), the last "
             "value within it (at step):", "", header[0].replace("| step |", "| metric |"), header[1]]
    rows = [("val_loss", view["val_loss"], 4)] + [(m, t, 3) for m, t in view["generation"].items()]
    for name, table, digits in rows:
        lines.append(f"| {name} | " + " | ".join(f"{_cell(table[v], digits)} (step {table[v]['step']})"
                                                  if v in table else "" for v in variants) + " |")
    at_budget = view.get("val_loss_interpolated", {})
    if at_budget:
        lines.append("| val_loss, seed mean interpolated at the budget | " + " | ".join(
            f"{at_budget[v]['mean']:.4f} (step {at_budget[v]['at_step']:g})" if v in at_budget else ""
            for v in variants) + " |")
    return lines


def _cell(value: dict | None, digits: int = 4) -> str:
    if value is None:
        return ""
    if value["n"] == 1 or value["min"] == value["max"]:
        return f"{value['mean']:.{digits}f}"
    return f"{value['mean']:.{digits}f} [{value['min']:.{digits}f}–{value['max']:.{digits}f}]"


def markdown(summary: dict, params: dict[str, int | None]) -> str:
    variants = summary["variants"]
    names = [f"{v} ({params[v] / 1e6:.1f}M)" if params.get(v) else v for v in variants]
    header = ["| step | " + " | ".join(names) + " |", "|---" * (len(variants) + 1) + "|"]
    lines = ["Validation cross-entropy, mean [min–max] over seeds:", ""] + header
    steps = sorted({int(s) for v in variants for s in summary["val_loss"][v]})
    for step in steps:
        lines.append(f"| {step} | " + " | ".join(_cell(summary["val_loss"][v].get(str(step))) for v in variants) + " |")
    lines.append("| mean wall time at the last step (s) | " + " | ".join(
        f"{list(summary['wall_s'][v].values())[-1]['mean']:.0f}" if summary["wall_s"][v] else "" for v in variants) + " |")
    lines.append("| train tokens/s (median) | " + " | ".join(str(summary["tokens_per_s"][v]) for v in variants) + " |")
    if summary["reference_final_val_loss"] is not None:
        reached = [f"step {h['step']} ({h['wall_s']:.0f} s)" if h else "not reached"
                   for h in (summary["first_reaching_reference"][v] for v in variants)]
        lines.append(f"| first reaches {summary['reference']}'s final mean {summary['reference_final_val_loss']:.4f} | "
                     + " | ".join(reached) + " |")
    budget = summary["equal_wall_time"]
    lines += ["", f"At equal training wall time ({budget['budget_s']:.0f} s, the shortest variant's mean run): last "
              "validation cross-entropy reached within it:", "", header[0].replace("| step |", "| budget |"), header[1]]
    lines.append(f"| {budget['budget_s']:.0f} s | " + " | ".join(
        _cell(budget["val_loss"][v]) if v in budget["val_loss"] else "no evaluation yet" for v in variants) + " |")
    gaps = [list(summary["cond_gap"][v].values())[-1] if summary["cond_gap"][v] else None for v in variants]
    lines += ["", "Conditioning gap at the last step (val CE with shuffled captions − with true captions):", "",
              header[0].replace("| step |", "| |"), header[1], "| cond gap | " + " | ".join(_cell(g) for g in gaps) + " |"]
    if summary["generation_wall_s"]:
        table = summary["generation_wall_s"]
        lines += ["", "Training wall time (s) at the generation checks, mean [min–max] over seeds (the x axis of "
                  "the generation metrics' wall-time plots):", ""] + header
        for step in sorted({int(s) for v in table.values() for s in v}):
            lines.append(f"| {step} | " + " | ".join(_cell(table.get(v, {}).get(str(step)), 0) for v in variants) + " |")
    if summary.get("calibrated_time"):
        lines += _calibrated_lines(summary["calibrated_time"], variants, header)
    for metric, table in summary["generation"].items():
        lines += ["", f"{metric} of generated test captions, mean [min–max] over seeds:", ""] + header
        for step in sorted({int(s) for v in table.values() for s in v}):
            lines.append(f"| {step} | " + " | ".join(_cell(table.get(v, {}).get(str(step)), 3) for v in variants) + " |")
    return "\n".join(lines)


def _band(axis, xs, table: dict, label: str) -> None:
    steps = list(table)
    means = [table[s]["mean"] for s in steps]
    line = axis.plot(xs, means, marker="o", ms=3, label=label)[0]
    if any(table[s]["n"] > 1 for s in steps):
        axis.fill_between(xs, [table[s]["min"] for s in steps], [table[s]["max"] for s in steps],
                          color=line.get_color(), alpha=0.2)


def plot(summary: dict, path: Path, title: str) -> None:
    """Val loss vs steps and vs wall time, conditioning gap vs steps, and each generation metric vs
    steps: lines are seed means, bands min-max over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ssmusic.io.atomic import atomic_path

    calibrated = summary.get("calibrated_time")
    panels = [("val_loss", "step"), ("val_loss", "wall"), ("cond_gap", "step")]
    panels += [(metric, x) for metric in summary["generation"] for x in ("step", "wall")]
    rows = (len(panels) + 2) // 3
    figure, axes = plt.subplots(rows, 3, figsize=(15, 4 * rows), squeeze=False)
    for axis, (key, x) in zip(axes.flat, panels):
        source = summary["generation"][key] if key in summary["generation"] else summary[key]
        for variant in summary["variants"]:
            table = source.get(variant, {})
            if not table:
                continue
            walls = summary["generation_wall_s" if key in summary["generation"] else "wall_s"].get(variant, {})
            if calibrated:  # measured wall time carries the machine's load at the time: use the fair axis
                walls = {s: {"mean": int(s) * calibrated["step_seconds"][variant]} for s in table}
            if x == "wall" and any(s not in walls for s in table):
                continue
            xs = [walls[s]["mean"] for s in table] if x == "wall" else [int(s) for s in table]
            _band(axis, xs, table, variant)
        time_label = "calibrated training time (s: steps × s/step)" if calibrated else "training wall time (s, seed mean)"
        axis.set(xlabel=time_label if x == "wall" else "optimizer step",
                 ylabel={"val_loss": "validation CE per token", "cond_gap": "shuffled − true caption CE"}.get(key, key),
                 title=f"{key} vs {('calibrated time' if calibrated else 'wall time') if x == 'wall' else 'steps'}")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    for axis in list(axes.flat)[len(panels):]:
        axis.axis("off")
    figure.suptitle(title)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=100, format="png")
    plt.close(figure)


def write_report(out_dir: Path, curves: dict, generation: dict, params: dict, settings: dict,
                 step_seconds: dict[str, float] | None = None) -> dict:
    """compare.json, compare.md and compare.png in out_dir (atomically); returns summary and table."""
    from ssmusic.io.atomic import write_json_atomic, write_text_atomic

    summary = summarize(curves, generation)
    if step_seconds:
        summary["calibrated_time"] = calibrated_time(summary, step_seconds)
    summary.update(parameters=params, settings=settings)
    seeds = settings["seeds"]
    overrides = "".join(f", {k}={v}" for k, v in settings.get("model", {}).items())
    plot(summary, out_dir / "compare.png", f"{settings['preset']} preset{overrides}, matched parameters, "
         f"{len(seeds)} seed(s) {seeds}: mean and min–max; validation on {settings['validation']}")
    write_json_atomic(out_dir / "compare.json", summary)
    table = markdown(summary, params)
    write_text_atomic(out_dir / "compare.md", table + "\n")
    return {"summary": summary, "table": table}


def refresh(path: Path) -> dict:
    """Recompute the calibrated equal-time view of a written compare.json from its own curves and
    timed seconds per step (no runs needed), and rewrite it and the Markdown table beside it."""
    from ssmusic.io.atomic import read_json, write_json_atomic, write_text_atomic

    summary = read_json(path)
    if summary.get("calibrated_time"):
        summary["calibrated_time"] = calibrated_time(summary, summary["calibrated_time"]["step_seconds"])
    write_json_atomic(path, summary)
    write_text_atomic(path.with_suffix(".md"), markdown(summary, summary.get("parameters", {})) + "\n")
    return summary


if __name__ == "__main__":  # python -m ssmusic.experiments.report OUT_DIR/compare.json
    import sys

    refresh(Path(sys.argv[1]))
