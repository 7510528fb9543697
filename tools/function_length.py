"""Fail on any function longer than 50 lines: a function should fit on one screen.

    python tools/function_length.py                 # src/, model_evaluation/, benchmarks/ (what `make lint` runs)
    python tools/function_length.py some/dir a.py   # other places

A function's length runs from its `def` line to its last line (decorators not counted; a nested function
counts towards its parent as well as on its own). Prints `path:line name N lines` for each function over
the limit and exits 1; exits 0 when there is none. Complexity is ruff's job (mccabe, pyproject.toml).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MAX_LINES = 50
DEFAULT_ROOTS = ("src", "model_evaluation", "benchmarks")

# Functions still too long in files other branches of the restructure are splitting. Each group goes when its
# branch merges; an entry that is no longer needed fails the check, so the list cannot outlive its reason.
ALLOWED: frozenset[tuple[str, str]] = frozenset()  # (path, name) pairs a split has not reached yet: none


def long_functions(path: Path, max_lines: int = MAX_LINES) -> list[tuple[int, str, int]]:
    """(line, qualified name, length) of every function in one file longer than `max_lines`."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = prefix + child.name
                length = child.end_lineno - child.lineno + 1
                if length > max_lines:
                    found.append((child.lineno, name, length))
                visit(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return sorted(found)


def python_files(roots) -> list[Path]:
    files: list[Path] = []
    for root in map(Path, roots):
        files += [root] if root.is_file() else sorted(root.rglob("*.py"))
    return files


def main(argv: list[str] | None = None, allowed=ALLOWED) -> int:
    roots = [Path(root) for root in ((argv if argv is not None else sys.argv[1:]) or DEFAULT_ROOTS)]
    failures, used = [], set()
    for path in python_files(roots):
        for line, name, length in long_functions(path):
            if (path.as_posix(), name) in allowed:
                used.add((path.as_posix(), name))
            else:
                failures.append(f"{path.as_posix()}:{line} {name} {length} lines")
    # an entry under the places checked that matched nothing (split, renamed or moved) has done its job
    stale = sorted(entry for entry in allowed - used if any(Path(entry[0]).is_relative_to(r) for r in roots))
    failures += [f"{path}: {name} is no longer over {MAX_LINES} lines: remove it from ALLOWED" for path, name in stale]
    for failure in failures:
        print(failure)
    if failures:
        print(f"function_length: {len(failures)} problem(s); a function may have {MAX_LINES} lines", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
