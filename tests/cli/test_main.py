"""`lorafair.cli`: one module per subcommand, assembled by `build_parser`; --help and `import lorafair` load no torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lorafair import cli

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "transformers", "peft", "numpy", "pandas")

PROBE = """
import json, sys
import lorafair
from lorafair.cli import main
codes = [main(argv) for argv in {argvs!r}]
print(json.dumps({{"codes": codes, "loaded": [m for m in {heavy!r} if m in sys.modules]}}))
"""


def _probe(argvs: list[list[str]]) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    code = PROBE.format(argvs=argvs, heavy=HEAVY)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_help_of_every_subcommand_imports_no_heavy_library():
    argvs = [["--help"], *([name, "--help"] for name in ("compare", "quick", "train", "demo", "assets", "report"))]
    probe = _probe(argvs)
    assert probe["codes"] == [0] * len(argvs)
    assert probe["loaded"] == []  # neither torch nor numpy: `lorafair --help` is instant


def test_a_bad_option_is_an_argparse_error_without_torch():
    probe = _probe([["compare", "--adapter", "a"]])  # --data missing
    assert probe["codes"] == [2] and probe["loaded"] == []


def test_every_subcommand_module_has_add_parser_and_run():
    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    assert list(subparsers.choices) == ["compare", "quick", "train", "demo", "assets", "report"]
    for module in cli.SUBCOMMANDS:
        name = module.__name__.rpartition(".")[2]
        assert subparsers.choices[name].get_default("handler") is module.run
    args = parser.parse_args(["train", "--base-model", "b", "--data", "d", "--seeds", "0,1"])
    assert args.seeds == "0,1" and args.handler is cli.train.run


@pytest.mark.parametrize("command", ["compare", "quick"])
def test_compare_options_are_the_config_fields(command):
    import dataclasses

    from lorafair.config import CompareConfig

    subparsers = next(a for a in cli.build_parser()._actions if a.dest == "command")
    dests = {a.dest for a in subparsers.choices[command]._actions} - {"help"}
    assert dests == {f.name for f in dataclasses.fields(CompareConfig)}


def test_the_api_names_load_without_torch():
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    code = "import sys, lorafair; lorafair.compare, lorafair.train, lorafair.SweepResult; print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "False", proc.stderr
