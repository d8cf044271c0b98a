"""The documentation stays a landing page plus topic pages, and every link and results file it names
exists: README.md is short with the quick start near the top, docs/ holds the topic pages, relative
links (and their #anchors) resolve, every results file the docs name is committed, the quick start is
complete, and figures a review found overstated still say what their results files say."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
RESULTS_FILE = re.compile(r"results/[\w./-]+?\.(?:jsonl|json|md|png)(?![\w.])")
FENCE = re.compile(r"^(```|~~~)")


def doc_files(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md")), root / "benchmarks" / "README.md"]


def prose(text: str) -> str:
    """The text outside fenced code blocks (commands there may name files a user creates)."""
    kept, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced:
            kept.append(line)
    return "\n".join(kept)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    for line in prose(path.read_text(encoding="utf-8")).splitlines():
        if line.startswith("#"):
            found.add(slug(line.lstrip("#")))
    return found


def broken_links(path: Path) -> list[str]:
    """Relative links in `path` whose file (or #anchor in a Markdown file) does not exist."""
    broken = []
    for target in LINK.findall(prose(path.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.exists():
            broken.append(target)
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(target)
    return broken


def missing_results(path: Path, root: Path = ROOT) -> list[str]:
    """results files (.json, .jsonl, .md, .png) named anywhere in `path`, commands included, that are
    not committed."""
    names = set(RESULTS_FILE.findall(path.read_text(encoding="utf-8")))
    return sorted(name for name in names if not (root / name).is_file() and "*" not in name)


def test_readme_is_a_short_landing_page_with_the_quick_start_on_top():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines; move reference material to docs/"
    assert any("ssmusic generate" in line for line in lines[:60]), "no `ssmusic generate` in README's first 60 lines"


def section(text: str, heading: str) -> str:
    """The text under `heading` up to the next heading of the same or a higher level."""
    level = heading.split(" ")[0]
    lines = text.splitlines()
    start = lines.index(heading) + 1
    end = next((i for i in range(start, len(lines))
                if lines[i].startswith("#") and len(lines[i].split(" ")[0]) <= len(level)), len(lines))
    return "\n".join(lines[start:end])


def fenced(text: str) -> str:
    """The lines inside fenced code blocks: what a reader copies and pastes."""
    kept, inside = [], False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            inside = not inside
        elif inside:
            kept.append(line)
    return "\n".join(kept)


def test_the_quick_start_is_complete_copy_paste():
    """Install, activate (so `ssmusic` is on PATH), generate, stream and serve, in that order, in code
    blocks; and what to do on a busy machine (the CLI's passive OpenMP wait policy, ssmusic.threads)."""
    quick = section((ROOT / "README.md").read_text(encoding="utf-8"), "## Quick start")
    code = fenced(quick)
    steps = ["bash install.sh", "source .venv/bin/activate", "ssmusic generate", "--stream", "ssmusic serve"]
    places = [code.find(step) for step in steps]
    assert -1 not in places and places == sorted(places), dict(zip(steps, places))
    assert "busy machine" in quick.lower() and "OMP_WAIT_POLICY=PASSIVE" in quick


def test_no_dated_logs_or_issue_references():
    """Git keeps the history; the pages say what holds now."""
    history = re.compile(r"\b20\d\d-\d\d-\d\d\b|\bissues? #?\d+|(?<![\w/&])#\d+\b", re.IGNORECASE)
    found = {str(path.relative_to(ROOT)): history.findall(prose(path.read_text(encoding="utf-8")))
             for path in doc_files()}
    assert not {page: hits for page, hits in found.items() if hits}


def test_docs_holds_topic_pages():
    pages = sorted((ROOT / "docs").glob("*.md"))
    assert len(pages) >= 3, f"docs/ has {len(pages)} pages"


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path):
    assert broken_links(path) == [], f"{path.relative_to(ROOT)}: broken links"


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_results_file_named_exists(path):
    assert missing_results(path) == [], f"{path.relative_to(ROOT)}: names results files that are not committed"


def unindexed_scripts(root: Path = ROOT) -> list[str]:
    """Files in benchmarks/ that benchmarks/README.md does not name."""
    index = (root / "benchmarks" / "README.md").read_text(encoding="utf-8")
    return sorted(p.name for p in (root / "benchmarks").iterdir()
                  if p.is_file() and p.name != "README.md" and f"`{p.name}`" not in index)


def test_every_benchmark_script_is_in_the_index():
    assert unindexed_scripts() == [], "benchmarks/README.md: add a row for each new script"


def test_the_checks_fail_on_a_broken_page(tmp_path):
    """The checks above must be able to fail: a missing file, a missing anchor, a missing result."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "kept.json").write_text("{}")
    page = tmp_path / "docs" / "page.md"
    page.write_text("# A page\n\n## Real section\n\n[ok](#real-section) [ok](../results/kept.json) "
                    "[gone](other.md) [no anchor](#nowhere) [web](https://example.org)\n"
                    "numbers from results/kept.json, results/lost.json and results/kept.clips.jsonl\n\n"
                    "```bash\n[x](in-code.md)\n```\n")
    assert broken_links(page) == ["other.md", "#nowhere"]
    assert missing_results(page, tmp_path) == ["results/kept.clips.jsonl", "results/lost.json"]
    assert slug("Decode (`ssmusic bench --decode-floor`)") == "decode-ssmusic-bench---decode-floor"
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "README.md").write_text("| `listed.py` | ... |\n")
    (tmp_path / "benchmarks" / "listed.py").write_text("")
    (tmp_path / "benchmarks" / "new.py").write_text("")
    assert unindexed_scripts(tmp_path) == ["new.py"]


def flat(path: Path) -> str:
    """A page's text on one line, emphasis dropped: what a sentence says, however it is wrapped."""
    return " ".join(path.read_text(encoding="utf-8").replace("**", "").split())


def result(name: str) -> dict:
    return json.loads((ROOT / "results" / name).read_text(encoding="utf-8"))


# Figures a review found overstated, recomputed from their results files and looked for, word for
# word, where the docs state them.

def test_the_default_models_accuracy_is_the_mean_over_seeds_not_the_best_seed():
    accuracy = result("decode_dtype_quality.json")["summary"]["float32"]
    mean, low, high = (100 * accuracy["instrument_accuracy"][k] for k in ("mean", "min", "max"))
    assert f"prompted instrument; frozen run vs real | {mean:.1f}% ({low:.0f}-{high:.0f});" in flat(ROOT / "README.md")
    assert f"{mean:.1f}% of its test clips (mean over seeds 0-{len(accuracy['seeds']) - 1}, range {low:.0f}-{high:.0f}%" \
        in flat(DOCS / "generation.md")


def test_the_shipped_models_figures_are_means_over_seeds_with_their_range():
    """README's and generation.md's figures for the shipped model, recomputed from its results files."""
    seeds = result("default_v3_test.json")["over_seeds"]

    def percent(path: str, over: dict = seeds) -> str:
        figure = over[path]
        return f"{100 * figure['mean']:.0f}% ({100 * figure['min']:.0f}-{100 * figure['max']:.0f})"

    readme = flat(ROOT / "README.md")
    assert f"drums right; melody instrument; frozen run; music-network distance | {percent('tempo.hit.value')} vs" \
        f" 73%; {percent('attributes.drums.value')} vs" in readme
    assert f"; {percent('attributes.melody_instrument.value')} vs" in readme
    alone = result("default_v3_test_no_controls.json")["over_seeds"]
    chance = result("tempo_follow_default_v3_test_no_controls.json")["over_seeds"]["chance_hit_8pct"]["mean"]
    assert f"from the words alone (`--no-controls`): tempo within 8%; frozen run | " \
           f"{percent('tempo.hit.value', alone)}, chance {100 * chance:.0f}%" in readme
    hit = f"{100 * seeds['tempo.hit.value']['mean']:.0f}% of clips within 8%"
    assert hit in readme and hit in flat(DOCS / "generation.md")
    drums = f"{100 * seeds['attributes.drums.value']['mean']:.0f}%"
    assert f"leaves them out when not in {drums} of clips" in readme
    assert f"leaves them out when not in {drums} of clips" in flat(DOCS / "generation.md")


def test_the_paraphrased_prompts_are_not_called_an_improvement():
    from scipy.stats import fisher_exact

    before, after = (round(20 * result(f"adherence_{when}_paraphrased.json")["adherence"]["value"])
                     for when in ("before", "after"))
    p = fisher_exact([[before, 20 - before], [after, 20 - after]])[1]
    model = flat(DOCS / "model.md")
    assert f"improvement is not shown: {before} of 20 against {after} of 20" in model and f"p = {p:.2f}" in model


def test_equal_time_is_read_at_the_budget_and_each_fad_counts_its_clips():
    compare = result("compare_demo_seeds.json")
    budget, at_budget = compare["calibrated_time"]["budget_s"], compare["calibrated_time"]["val_loss_interpolated"]
    transformers = [at_budget[v]["mean"] for v in ("transformer-prefix", "transformer-cross")]
    ahead = f"{at_budget['simba-cross']['mean']:.2f} vs {min(transformers):.2f}-{max(transformers):.2f}"
    assert f"at equal CPU time ({budget:.0f} s, interpolated): cross-SiMBA vs the Transformers | {ahead}" in flat(ROOT / "README.md")
    assert f"each FAD value uses {compare['settings']['generation']['prompts']} clips" in flat(DOCS / "findings.md")


def test_the_lowest_fad_and_kl_are_named_as_such():
    rows = result("prompt_adherence.json")["rows"]
    fad, kl = min(r["fad"] for r in rows), min(r["kl"] for r in rows)
    model = flat(DOCS / "model.md")
    assert f"the lowest FAD is {fad:.1f} (" in model and f"the lowest KL {kl:.2f} (" in model


def test_probe_and_kernel_figures_are_the_measured_ones():
    probe = result("stream_overlap.json")["codecs"]["griffin-lim"]["clips"]["probe_signal_seed7_all_codebooks"]
    error = f"{probe['with_measured_context']['max_error_rel_peak']:.2e}".replace("e-0", "e-")
    assert f"never saw {error} (Griffin-Lim, all codebooks" in flat(DOCS / "generation.md")
    step = result("state_step.json")["ms_per_layer"]
    kernel = (ROOT / "ssmusic" / "model" / "ops" / "ssd_step.c").read_text(encoding="utf-8")
    assert f"({step['one_pass_portable bfloat16']:.1f} against {step['one_pass bfloat16']:.1f} ms per layer" in kernel


def test_compile_help_and_peak_figures_lead_with_the_like_for_like_ones():
    one, many, like, flattered = [], [], [], []
    for name in ("bench_decode.json", "bench_decode_rerun2.json"):
        floor, batch = result(name)["floor"], result(name)["batch"]
        rows = batch["rows"]
        one += [floor["steps"][kind]["ms"] / floor["compiled"][kind]["ms"] for kind in floor["compiled"]]
        many += [rows[f"float32/float32@{n}"]["ms_per_step"] / rows[f"compiled float32/float32@{n}"]["ms_per_step"]
                 for n in (4, 16, 64)]
        wide = rows["compiled bfloat16/bfloat16@64"]  # 64 prompts, bf16 weights and state, compiled
        like.append(100 * wide["gflops"] / batch["bf16_matmul_gflops"])
        flattered.append(wide["pct_of_peak"])  # against the float32 peak
    assert (f"per step {min(one):.1f}-{max(one):.1f}x faster than eager for one prompt, "
            f"{min(many):.2f}-{max(many):.2f}x for 4/16/64 prompts") in flat(ROOT / "ssmusic" / "generate.py")

    def span(values: list[float]) -> str:
        low, high = round(min(values)), round(max(values))
        return f"{low}" if low == high else f"{low}-{high}"

    assert (f"of the bf16 matmul peak / of the float32 peak | {span(like)}% / {span(flattered)}% |"
            in flat(ROOT / "README.md"))


def test_the_gallery_is_the_shipped_models_card_examples():
    """docs/gallery holds the web demo's example prompts (the default model's card), each with its audio
    and spectrogram: a new card without a regenerated gallery fails here."""
    from ssmusic.pipeline import resolve_model_dir
    from ssmusic.serve.card import read_model_card

    gallery = json.loads((DOCS / "gallery" / "gallery.json").read_text(encoding="utf-8"))
    examples = read_model_card(resolve_model_dir(None))["examples"]
    assert [c["prompt"] for c in gallery["clips"]] == [e["prompt"] for e in examples] and examples
    for clip in gallery["clips"]:
        assert (DOCS / "gallery" / clip["audio"]).stat().st_size > 10_000
        assert (DOCS / "gallery" / clip["spectrogram"]).read_bytes()[:4] == b"\x89PNG"
