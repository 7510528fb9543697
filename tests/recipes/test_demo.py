"""`lorafair demo`: the wiring on a tiny random Llama and toy data; the real fast preset is a `slow` test.

HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q tests/recipes/test_demo.py             # wiring, seconds
HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q -m slow tests/recipes/test_demo.py     # real MiniLM, a few minutes
"""

from __future__ import annotations

import dataclasses
import json

import pytest

torch = pytest.importorskip("torch")

from report_checks import assert_outputs_hold_the_report, assert_tables_hold_the_report  # noqa: E402

from lorafair.cli import main  # noqa: E402
from lorafair.models.modeling import read_adapter  # noqa: E402
from lorafair.recipes import demo  # noqa: E402

from conftest import toy_rows, write_csv  # noqa: E402


@pytest.fixture
def tiny_preset(llama_setup, monkeypatch, tmp_path):
    """The default preset pointed at the tiny Llama and toy CSVs: train 48 rows, validation 24, test 40."""
    splits = {
        name: str(write_csv(toy_rows(n, seed=seed), tmp_path / f"{name}.csv"))
        for name, n, seed in (("train", 48, 11), ("validation", 24, 12), ("test", 40, 13))
    }
    preset = dataclasses.replace(
        demo.PRESETS["default"],
        base_model=str(llama_setup.base),
        train_data=splits["train"],
        eval_data=splits["validation"],
        test_data=splits["test"],
        lora_layers=1,
        max_train_samples=32,
        batch_size=8,
        learning_rate=5e-3,
        max_length=32,
        probe_samples=30,
        bootstrap=200,
        head_init="zero",  # as the Qwen presets
        ood_data=str(write_csv([{"text": r["text"]} for r in toy_rows(30, seed=14)], tmp_path / "ood.csv")),
        ood_samples=20,  # of 30: the demo's out-of-domain text, without builtin:oanc-en's download
    )
    monkeypatch.setitem(demo.PRESETS, "default", preset)
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models gain nothing from threads; one stays fast on a busy machine
    yield preset
    torch.set_num_threads(before)


def _run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_demo_trains_compares_and_writes_both_folders(tiny_preset, tmp_path, capsys):
    out = tmp_path / "demo"
    code, stdout, err = _run(["demo", "--output", str(out), "--quiet"], capsys)
    assert code == 0, err

    adapter = read_adapter(out / demo.ADAPTER_DIR)
    run = adapter.run_metadata
    assert run.config["lora_layers"] == 1 and run.layers_to_transform == [1]  # top layer of 2
    assert {key.split(".layers.")[1].split(".")[0] for key in adapter.lora} == {"1"}
    assert run.train_data.n == 32 and run.train_data.subsample_of == 48
    assert run.config["eval_data"] == tiny_preset.eval_data and "accuracy" in run.eval_metrics
    assert run.config["head_init"] == "zero"  # the preset's choice reaches training

    report_dir = out / demo.REPORT_DIR
    report = assert_outputs_hold_the_report(report_dir)  # report.md, .html and predictions.csv hold its numbers
    assert list(report["variants"]) == ["B", "A", "A1", "R"]
    assert report["data"]["n"] == 40  # --num-samples 500 of 40 rows: all of them
    assert report["data"]["source"] == tiny_preset.test_data
    assert [(p["kind"], p["examples"]) for p in report["forward_passes"]] == [
        ("frozen_eval", 40),
        ("frozen_probe", 30),
        ("ood_frozen", 20),
        ("lora_unmerged", 40),
        ("lora_eval", 40),
        ("ood_lora", 20),
    ]  # probe: 30 of the training file; fidelity: 40; out-of-domain text: 20 of 30
    beyond = report["beyond_task"]  # the demo shows what LoRA changed beyond the task
    assert beyond["data"]["source"] == tiny_preset.ood_data and beyond["data"]["n"] == 20
    assert len(beyond["layers"]) == 3 and beyond["reason"]["reason"] == "no_lm_head"  # saved as a classifier
    assert report["config"]["probe_samples"] == 30 and report["config"]["bootstrap"] == 200

    assert "Summary" in stdout and "Gain analysis" in stdout  # the seed-style console tables
    assert "What LoRA changed beyond the task" in stdout
    assert_tables_hold_the_report(stdout, report)  # ... holding report.json's numbers
    assert f"adapter written to {out / demo.ADAPTER_DIR}/" in stdout
    assert f"reports written to {report_dir}/" in stdout
    (timing,) = [line for line in stdout.splitlines() if line.startswith("demo wall time ")]
    validation = f"validation accuracy {run.eval_metrics['accuracy']:.3f} in {run.eval_metrics['runtime']:.0f} s"
    assert validation in timing and f"fit {run.train_metrics['train_runtime']:.0f} s" in timing
    seconds = {p["kind"]: p["seconds"] for p in report["forward_passes"]}
    for variant, kind in (("B", "lora_eval"), ("A", "frozen_eval")):  # the evaluation passes, as recorded
        assert f"{variant} pass {seconds[kind]:.0f} s" in timing


def test_existing_output_needs_overwrite(tiny_preset, tmp_path, capsys):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "keep.txt").write_text("not the demo's")
    code, stdout, err = _run(["demo", "--output", str(out)], capsys)
    assert code == 2 and stdout == ""
    assert err.count("\n") == 1 and "--overwrite" in err and "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]  # nothing trained, nothing written

    code, _, err = _run(["demo", "--output", str(out), "--overwrite", "--quiet", "--lang", "zh"], capsys)
    assert code == 0, err
    report = json.loads((out / demo.REPORT_DIR / "report.json").read_text(encoding="utf-8"))
    assert report["config"]["lang"] == "zh"
    code, _, err = _run(["demo", "--output", str(out), "--overwrite", "--quiet"], capsys)  # replaces a finished demo
    assert code == 0, err


def test_unknown_preset_is_a_user_error():
    from lorafair.core.errors import LorafairError

    with pytest.raises(LorafairError, match="unknown demo preset"):
        demo.run_demo(preset="huge", output="unused", overwrite=False, quiet=True, lang="en")


def test_presets_compare_on_the_test_split_and_tune_on_validation():
    for name, preset in demo.PRESETS.items():
        assert preset.train_data.endswith(":train") and preset.test_data.endswith(":test")
        assert preset.num_samples == 500
        # the Qwen presets were tuned on validation beforehand and skip the validation pass (time budget)
        assert preset.eval_data is None if name.startswith("qwen") else preset.eval_data.endswith(":validation")
        # out-of-domain text in the language of the task's data: news for the Chinese reviews, prose otherwise
        assert preset.ood_data == ("builtin:news-zh" if name.startswith("qwen") else "builtin:oanc-en")
        assert preset.ood_samples == 200


@pytest.mark.slow
def test_fast_preset_end_to_end_reaches_the_accuracy_target(tmp_path, capsys):
    """The real MiniLM-L6 on the built-in polarity data: B's accuracy on the 500 test sentences >= 0.75."""
    out = tmp_path / "demo"
    code, stdout, err = _run(["demo", "--preset", "fast", "--output", str(out), "--quiet"], capsys)
    assert code == 0, err
    report = json.loads((out / demo.REPORT_DIR / "report.json").read_text(encoding="utf-8"))
    assert report["data"]["n"] == 500 and list(report["variants"]) == ["B", "A", "A1", "R"]
    assert report["variants"]["B"]["metrics"]["accuracy"]["value"] >= 0.75
    assert "Summary" in stdout
