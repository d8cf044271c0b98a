"""benchmarks/demo_framework_ttfa.py without servers or a browser: its arguments, summary and JSON
(--lines-only needs neither Gradio nor Chromium; the measurement itself is run by hand)."""

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("selenium", reason="selenium is missing: pip install -e '.[test]'")
SCRIPT = Path(__file__).parents[2] / "benchmarks" / "demo_framework_ttfa.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("demo_framework_ttfa", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lines_only_writes_the_json(bench, tmp_path):
    out = tmp_path / "sub" / "ttfa.json"
    bench.main(["--lines-only", "--out", str(out)])
    written = json.loads(out.read_text())
    lines = written["lines_of_code"]
    assert 10 < lines["gradio_demo_in_this_script"] < lines["ssmusic_serve_total"]
    assert "ssmusic/serve/static/app.js" in lines["ssmusic_serve_files"]
    assert written["command"].endswith("--lines-only --out " + str(out))
    assert {"python", "selenium", "gradio"} <= set(written["versions"])
    assert len(written["load_average_before"]) == 3


def test_summary_per_app(bench):
    runs = [{"app": "gradio", "time_to_first_audio_s": t} for t in (1.2, 1.0, 1.5)]
    runs += [{"app": "ssmusic_serve", "time_to_first_audio_s": t} for t in (0.7, 0.5)]
    assert bench.summarise(runs) == {"gradio": {"runs": 3, "median_s": 1.2, "min_s": 1.0, "max_s": 1.5},
                                     "ssmusic_serve": {"runs": 2, "median_s": 0.6, "min_s": 0.5, "max_s": 0.7}}


def test_bad_arguments_are_refused(bench):
    for argv in (["--runs", "0"], ["--seconds", "-1"], ["--runs", "two"]):
        with pytest.raises(SystemExit):
            bench.parse_args(argv)
    args = bench.parse_args([])
    assert (args.runs, args.seconds, args.seed, args.out.name) == (3, 6.0, 0, "demo_framework_ttfa.json")


def test_code_lines_skip_blanks_and_comments(bench):
    assert bench.code_lines("a = 1\n\n  # note\nb = 2  # kept\n") == 2
    assert bench.code_lines("x();\n// note\n", "//") == 1
