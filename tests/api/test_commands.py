"""lorafair.compare / sweep / train: the README's example run on the tiny Llama, checked against the CLI."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from report_checks import assert_outputs_hold_the_report

import lorafair
from lorafair.cli import main

from conftest import toy_rows, write_csv

ROOT = Path(__file__).resolve().parents[2]


def readme_python_api_block() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### Python API") :]
    return section[
        section.index("```python\n") + len("```python\n") : section.index("```\n", section.index("```python"))
    ]


@pytest.fixture(scope="module")
def readme_run(llama_setup, tmp_path_factory):
    """The README block with the tiny Llama and toy CSVs in place of SmolLM2 and the polarity data."""
    root = tmp_path_factory.mktemp("readme")
    train = write_csv(toy_rows(48, seed=31), root / "train.csv")
    test = write_csv(toy_rows(40, seed=32), root / "test.csv")
    code = readme_python_api_block()
    for old, new in {
        '"smollm2-135m"': repr(str(llama_setup.base)),
        '"builtin:polarity-en:train"': repr(str(train)),
        '"builtin:polarity-en:test"': repr(str(test)),
        '"outputs/lora_adapter"': repr(str(root / "adapter")),
        '"outputs/compare"': repr(str(root / "api")),
    }.items():
        assert code.count(old) == 1, old
        code = code.replace(old, new)
    namespace, printed = {}, io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md", "exec"), namespace)
    cli_out = root / "cli"
    argv = ["compare", "--adapter", str(root / "adapter"), "--data", str(test), "--num-samples", "200"]
    assert main([*argv, "--bootstrap", "2000", "--output", str(cli_out), "--quiet"]) == 0
    cli = json.loads((cli_out / "report.json").read_text(encoding="utf-8"))
    return namespace, printed.getvalue(), cli, root


def test_readme_example_prints_the_cli_reports_figures(readme_run):
    namespace, printed, cli, root = readme_run
    lines = printed.splitlines()
    run = json.loads((root / "adapter" / "lorafair_run.json").read_text(encoding="utf-8"))
    assert lines[0] == f"adapter {root / 'adapter'}: validation accuracy {run['metrics']['eval']['accuracy']:.4f}"
    for variant, line in zip(("B", "A", "A1", "R"), lines[1:5]):
        assert line == f"{variant} accuracy {cli['variants'][variant]['metrics']['accuracy']['value']:.4f}"
    delta = cli["deltas"]["B-A"]["accuracy"]
    numbers = [float(x) for x in re.findall(r"[+-]?\d+\.\d+(?:e[+-]?\d+)?", lines[5])]
    assert numbers[:3] == pytest.approx([round(delta["value"], 4), round(delta["ci"][0], 4), round(delta["ci"][1], 4)])
    assert float(lines[5].rsplit(" p ", 1)[1]) == pytest.approx(delta["p_value"], rel=1e-3)
    assert len(lines) == 6


def test_readme_example_result_equals_the_cli_report(readme_run):
    namespace, _, cli, root = readme_run
    result = namespace["result"]
    assert isinstance(result, lorafair.CompareResult) and isinstance(namespace["trained"], lorafair.TrainResult)
    report = result.report
    for variant, block in cli["variants"].items():
        assert report["variants"][variant]["metrics"] == block["metrics"], variant
        assert report["variants"][variant]["confusion_matrix"] == block["confusion_matrix"]
    assert report["deltas"] == cli["deltas"] and report["conclusion"] == cli["conclusion"]
    assert report["data"] == cli["data"] | {"tokenize_seconds": report["data"]["tokenize_seconds"]}
    # what .write() wrote is what the CLI wrote: the same predictions, byte for byte, and consistent files
    api_csv = (root / "api" / "predictions.csv").read_bytes()
    assert api_csv == (root / "cli" / "predictions.csv").read_bytes()
    assert (root / "api" / "flips.csv").read_bytes() == (root / "cli" / "flips.csv").read_bytes()
    assert_outputs_hold_the_report(root / "api", probs=result.probs)
    assert json.loads((root / "api" / "report.json").read_text(encoding="utf-8"))["deltas"] == cli["deltas"]
    # the DataFrame is predictions.csv (read here with the csv module), its probabilities exactly the result's
    with open(root / "cli" / "predictions.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    frame = namespace["frame"]
    assert list(frame.columns) == list(rows[0]) and len(frame) == len(rows) == cli["data"]["n"]
    for column in frame.columns:
        cast = float if column.startswith("prob_") else int if column == "index" else str
        assert frame[column].tolist() == [cast(r[column]) for r in rows], column
    labels = cli["data"]["labels"]
    for variant in ("B", "A", "A1", "R"):
        probs = frame[[f"prob_{variant}_{name}" for name in labels]].to_numpy()
        np.testing.assert_array_equal(probs, result.probs[variant])
    page = namespace["page"]
    assert '<html lang="zh-CN">' in page and f"{cli['variants']['B']['metrics']['accuracy']['value']:.4f}" in page


def test_train_returns_the_folder_and_its_metadata(readme_run):
    namespace, _, _, root = readme_run
    trained = namespace["trained"]
    raw = json.loads((root / "adapter" / "lorafair_run.json").read_text(encoding="utf-8"))
    assert trained.adapter == root / "adapter" and trained.metadata.to_dict() == raw
    assert trained.metrics == raw["metrics"] and "accuracy" in trained.metrics["eval"]
    assert trained.metadata.train_data.n == 43 and trained.metadata.eval_data.n == 5  # 48 rows, 10% held out


def test_a_sweep_gives_one_result_per_adapter_as_the_cli_writes_them(llama_setup, tmp_path, capsys):
    options = dict(data=str(llama_setup.data), variants="B,A,R", bootstrap=100, num_samples=30)
    result = lorafair.compare(adapter=[llama_setup.adapter, llama_setup.zero_adapter], **options)
    assert isinstance(result, lorafair.SweepResult) and list(result.adapters) == ["llama-adapter", "llama-zero-adapter"]
    argv = ["compare", "--adapter", str(llama_setup.adapter), "--adapter", str(llama_setup.zero_adapter)]
    argv += ["--data", str(llama_setup.data), "--variants", "B,A,R", "--bootstrap", "100", "--num-samples", "30"]
    assert main([*argv, "--output", str(tmp_path / "cli"), "--quiet"]) == 0
    for name, one in result.adapters.items():
        cli = json.loads((tmp_path / "cli" / "adapters" / name / "report.json").read_text(encoding="utf-8"))
        assert one.report["deltas"] == cli["deltas"] and one.report["task_checks"] == cli["task_checks"]
        assert {v: b["metrics"] for v, b in one.report["variants"].items()} == {
            v: b["metrics"] for v, b in cli["variants"].items()
        }
    zero = result.adapters["llama-zero-adapter"]
    assert zero.delta("B-A")["value"] == 0.0  # zero LoRA: B is A
    assert result.write(tmp_path / "api") == tmp_path / "api"
    assert sorted(p.name for p in (tmp_path / "api" / "adapters").iterdir()) == list(result.adapters)
    assert (tmp_path / "api" / "adapters" / "llama-adapter" / "predictions.csv").read_bytes() == (
        tmp_path / "cli" / "adapters" / "llama-adapter" / "predictions.csv"
    ).read_bytes()
    same = lorafair.sweep(adapter=llama_setup.adapter, **options)  # sweep() of one adapter is still a sweep
    assert isinstance(same, lorafair.SweepResult) and list(same.adapters) == ["llama-adapter"]


def test_train_with_seeds_returns_one_result_per_seed(llama_setup, tmp_path):
    common = dict(base_model=llama_setup.base, data=llama_setup.data, max_steps=1, batch_size=8, quiet=True)
    results = lorafair.train(seeds="0,1", output=tmp_path / "seeds", **common)
    assert [r.adapter for r in results] == [tmp_path / "seeds" / "seed-0", tmp_path / "seeds" / "seed-1"]
    for seed, result in enumerate(results):
        raw = json.loads((result.adapter / "lorafair_run.json").read_text(encoding="utf-8"))
        assert result.metadata.seed == raw["seed"] == seed and result.metrics == raw["metrics"]


def test_nothing_is_written_without_write_and_output_is_checked_when_given(llama_setup, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    options = dict(adapter=llama_setup.adapter, data=llama_setup.data, variants="B,A", bootstrap=0, num_samples=20)
    result = lorafair.compare(**options)
    assert list(tmp_path.iterdir()) == [] and result.report["config"]["output"] is None
    with pytest.raises(lorafair.LorafairError, match="no output folder"):
        result.write()
    assert result.write("out") == Path("out") and (tmp_path / "out" / "report.json").is_file()
    with pytest.raises(lorafair.LorafairError, match="--overwrite"):
        result.write("out")
    with pytest.raises(lorafair.LorafairError, match="--overwrite"):  # as the CLI: checked before any work
        lorafair.compare(output="out", **options)
    again = lorafair.compare(output="out", overwrite=True, **options)
    assert again.write() == Path("out")
    assert json.loads((tmp_path / "out" / "report.json").read_text())["config"]["output"] == "out"


def test_options_are_checked_like_python_arguments(llama_setup):
    with pytest.raises(TypeError, match="unexpected keyword argument 'num_sample'; did you mean 'num_samples'"):
        lorafair.compare(adapter=llama_setup.adapter, data=llama_setup.data, num_sample=5)
    with pytest.raises(lorafair.LorafairError, match=r"--batch-size 0 \(needs >= 1\)"):
        lorafair.compare(adapter=llama_setup.adapter, data=llama_setup.data, batch_size=0)
    with pytest.raises(TypeError, match="takes a TrainConfig"):
        lorafair.train(lorafair.api.commands.CompareConfig(adapter="a", data="b"))
