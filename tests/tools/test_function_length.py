"""tools/function_length.py: the 50-line limit that `make lint` enforces on src/, model_evaluation/, benchmarks/."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "function_length.py"


def _tool():
    spec = importlib.util.spec_from_file_location("function_length", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _function(name: str, lines: int, indent: str = "") -> str:
    """Source of a function spanning exactly `lines` lines, from its def to its last statement."""
    body = [f"{indent}    x{i} = {i}" for i in range(lines - 2)]
    return "\n".join([f"{indent}def {name}():", *body, f"{indent}    return 0"]) + "\n"


def _write(tmp_path: Path) -> Path:
    source = (
        "import functools\n\n\n"
        + "@functools.cache\n"  # a decorator is not counted
        + _function("fifty", 50)
        + "\n\n"
        + _function("fifty_one", 51)
        + "\n\nclass Holder:\n"
        + _function("method", 60, indent="    ")
    )
    path = tmp_path / "pkg" / "mod.py"
    path.parent.mkdir()
    path.write_text(source)
    return path


def test_a_51_line_function_is_reported_and_a_50_line_one_is_not(tmp_path):
    path = _write(tmp_path)
    found = _tool().long_functions(path)
    lines = path.read_text().splitlines()
    assert [name for _, name, _ in found] == ["fifty_one", "Holder.method"]
    for line, name, _length in found:
        assert lines[line - 1].strip() == f"def {name.split('.')[-1]}():"
    assert [length for _, _, length in found] == [51, 60]


def test_command_prints_path_line_name_length_and_fails(tmp_path):
    path = _write(tmp_path)
    run = subprocess.run([sys.executable, str(TOOL), str(tmp_path)], capture_output=True, text=True)
    assert run.returncode == 1
    line_51 = path.read_text().splitlines().index("def fifty_one():") + 1
    line_60 = path.read_text().splitlines().index("    def method():") + 1
    assert run.stdout.splitlines() == [
        f"{path.as_posix()}:{line_51} fifty_one 51 lines",
        f"{path.as_posix()}:{line_60} Holder.method 60 lines",
    ]
    assert len(run.stderr.splitlines()) == 1


def test_short_functions_pass(tmp_path):
    (tmp_path / "ok.py").write_text(_function("fifty", 50))
    run = subprocess.run([sys.executable, str(TOOL), str(tmp_path)], capture_output=True, text=True)
    assert (run.returncode, run.stdout, run.stderr) == (0, "", "")


def test_allowed_entries_pass_and_stale_ones_fail(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path)
    tool = _tool()
    allowed = {("pkg/mod.py", "fifty_one"), ("pkg/mod.py", "Holder.method")}
    assert tool.main(["pkg"], allowed=allowed) == 0
    assert capsys.readouterr().out == ""
    stale = allowed | {("pkg/mod.py", "fifty")}  # 50 lines: nothing to allow any more
    assert tool.main(["pkg"], allowed=stale) == 1
    assert capsys.readouterr().out.splitlines() == [
        "pkg/mod.py: fifty is no longer over 50 lines: remove it from ALLOWED"
    ]
    elsewhere = allowed | {("other/mod.py", "gone")}  # outside the folders checked: not judged
    assert tool.main(["pkg"], allowed=elsewhere) == 0


def test_the_repository_passes():
    run = subprocess.run([sys.executable, str(TOOL)], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stdout
