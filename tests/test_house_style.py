"""The package stays readable in pieces: no file over ~400 lines, no function over ~80."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "ssmusic"
MAX_FILE_LINES, MAX_FUNCTION_LINES = 400, 80


def test_no_file_over_the_limit():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES}
    assert not long, f"files over {MAX_FILE_LINES} lines: {long}"


def test_no_function_over_the_limit():
    long = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(PACKAGE)}:{node.name}"] = lines
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_the_folders_show_the_flow():
    """The top level keeps the public API and the CLI; everything else sits in a subpackage by role."""
    top_modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    subpackages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists())
    assert len(top_modules) <= 12, f"too many top-level modules: {top_modules}"
    assert len(subpackages) >= 5, f"too few subpackages: {subpackages}"
    for role in ("model", "codec", "data", "training", "metrics", "serve"):
        assert role in subpackages


def test_tests_mirror_the_packages():
    tests = Path(__file__).parent
    subpackages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert subpackages <= {p.name for p in tests.iterdir() if p.is_dir()}, "a subpackage has no tests/ folder"
