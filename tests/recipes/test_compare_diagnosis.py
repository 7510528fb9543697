"""`lorafair compare` on the tiny Llama writes report["training"] from the adapter's lorafair_run.json and the
diagnosis section, in the console, report.md and report.html, and `lorafair report OUT --lang zh` rewords it."""

from __future__ import annotations

import json
import shutil

import numpy as np
from report_checks import html_text
from scipy.stats import theilslopes

from lorafair.cli import main
from lorafair.report import words


def _with_run_record(adapter, folder, steps: int = 60):
    """A copy of the adapter with a lorafair_run.json whose loss still falls steeply at the end."""
    shutil.copytree(adapter, folder)
    x = np.arange(1, steps + 1)
    losses = 0.7 * np.exp(-x / 40) + 0.001 * np.sin(x)  # falling, with wiggles smaller than the fall
    history = [{"loss": float(v), "step": int(s), "epoch": s / 20, "learning_rate": 1e-4} for s, v in zip(x, losses)]
    history.append({"train_runtime": 3.0, "train_loss": float(losses.mean()), "step": steps, "epoch": 3.0})
    record = {"label_names": ["neg", "pos"], "global_step": steps, "log_history": history}
    (folder / "lorafair_run.json").write_text(json.dumps(record), encoding="utf-8")
    return folder, x, losses


def test_compare_diagnoses_and_report_rewords_it(llama_setup, tmp_path, capsys):
    adapter, x, losses = _with_run_record(llama_setup.adapter, tmp_path / "adapter")
    out = tmp_path / "out"
    argv = ["compare", "--adapter", str(adapter), "--data", str(llama_setup.data), "--output", str(out)]
    assert main([*argv, "--bootstrap", "100", "--batch-size", "8", "--max-length", "32"]) == 0
    console = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))

    training = report["training"]
    assert training["steps"] == 60 and training["logged_losses"] == 60 and training["epochs"] == 3.0
    assert training["first_loss"] == losses[0] and training["last_loss"] == losses[-1]
    window = x > 54  # the last tenth of 60 steps
    assert training["trend"]["points"] == 6
    assert training["trend"]["slope"] == theilslopes(losses[window], x[window]).slope
    assert training["trend"]["p_value"] == 1 / 720  # six points in falling order: 1 of 6! orderings is as extreme
    longer = next(r for r in report["diagnosis"] if r["kind"] == "train_longer")
    assert longer["slope"] < 0 and longer["relative_drop"] >= 0.01
    assert "seed_range" not in {r["kind"] for r in report["check_records"]}

    lines = words.diagnosis_lines(report, "en")
    assert lines[0].startswith("Training (lorafair_run.json): 60 steps, 3 epochs")
    assert "======== Diagnosis ========" in console and all(f"- {line}\n" in console for line in lines)
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "## Diagnosis" in md and all(f"- {line}".replace("|", "\\|") in md for line in lines)
    page, _ = html_text((out / "report.html").read_text(encoding="utf-8"))
    assert "Diagnosis" in page and all(line in page for line in lines)

    assert main(["report", str(out), "--lang", "zh"]) == 0
    chinese = capsys.readouterr().out
    zh_lines = words.diagnosis_lines(report, "zh")
    assert "======== 诊断 ========" in chinese and all(f"- {line}\n" in chinese for line in zh_lines)
    assert zh_lines[0].startswith("训练（lorafair_run.json）：60 步，3 轮")
