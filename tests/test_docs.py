"""The documentation stays a landing page plus topic pages, and every link and results file it names
exists: README.md is short with the quick start near the top, docs/ holds the topic pages, relative
links (and their #anchors) resolve, and every results file the docs name is committed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
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
