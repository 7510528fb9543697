"""The seed's entry points, run as its README shows, on a tiny model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from report_checks import assert_outputs_hold_the_report, assert_tables_hold_the_report

ROOT = Path(__file__).resolve().parents[2]


def _script(args, cwd):
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT / "src"))
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_run_full_eval_script(llama_setup, tmp_path):
    proc = _script(
        [
            str(ROOT / "model_evaluation" / "run_full_eval.py"),
            "--model_path",
            str(llama_setup.adapter),
            "--base_model",
            str(llama_setup.base),
            "--batch_size",
            "16",
            "--max_length",
            "256",
            "--data",
            str(llama_setup.data),
            "--num_samples",
            "30",
            "--output_dir",
            str(tmp_path / "eval"),
            "--lang",
            "en",
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Gain analysis" in proc.stdout and "Speed comparison" in proc.stdout
    (run,) = (tmp_path / "eval").iterdir()
    report = assert_outputs_hold_the_report(run)
    assert set(report["variants"]) == {"B", "A", "A1", "R"} and report["config"]["batch_size"] == 16
    assert report["config"]["max_length"] == 256 and report["data"]["n"] == 30
    assert_tables_hold_the_report(proc.stdout, report)  # the console's numbers are report.json's
    speed = proc.stdout[proc.stdout.index("======== Speed comparison") :].splitlines()
    for variant in ("B", "A"):
        block = report["variants"][variant]
        row = next(line for line in speed if line.startswith(block["name"] + "  "))
        assert row.split()[len(block["name"].split())] == f"{block['speed']['qps']:.1f}"


def test_fair_comparison_script(llama_setup, tmp_path):
    proc = _script(
        [
            str(ROOT / "test_fair_comparison.py"),
            "--model_path",
            str(llama_setup.adapter),
            "--batch_size",
            "8",
            "--data",
            str(llama_setup.data),
            "--output_dir",
            str(tmp_path / "fc"),
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (run,) = (tmp_path / "fc").iterdir()
    report = assert_outputs_hold_the_report(run)
    assert set(report["variants"]) == {"B", "A"} and report["config"]["batch_size"] == 8
    assert_tables_hold_the_report(proc.stdout, report)


def test_fair_comparison_bad_path_is_one_line(tmp_path):
    proc = _script([str(ROOT / "test_fair_comparison.py"), "--model_path", str(tmp_path / "missing")], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"lorafair: error: adapter folder not found: '{tmp_path / 'missing'}' "
        "(expected the folder written by save_pretrained)"
    ]


def test_load_base_model_with_lora_classifier(llama_setup):
    sys.path.insert(0, str(ROOT))
    from safetensors.torch import load_file

    from model_evaluation.utils import load_base_model_with_lora_classifier

    model, tokenizer = load_base_model_with_lora_classifier(str(llama_setup.base), str(llama_setup.adapter), "cpu")
    saved = load_file(str(llama_setup.adapter / "adapter_model.safetensors"))
    assert torch.equal(model.score.weight, saved["base_model.model.score.weight"])
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    from transformers import AutoModelForSequenceClassification

    clean = AutoModelForSequenceClassification.from_pretrained(str(llama_setup.base))  # backbone must be untouched
    for name, param in clean.model.named_parameters():
        assert torch.equal(param, dict(model.model.named_parameters())[name]), name
    assert tokenizer.pad_token_id == model.config.pad_token_id


def _one_at_a_time_probs(model, tokenizer, texts) -> np.ndarray:
    """Softmax of each text run alone (no padding): the reference the batched evaluator must match."""
    with torch.no_grad():
        rows = [torch.softmax(model(**tokenizer(t, return_tensors="pt")).logits[0].double(), -1) for t in texts]
    return torch.stack(rows).numpy()


def test_benchmark_module_frozen_and_lora(llama_setup):
    sys.path.insert(0, str(ROOT))
    import csv

    from peft import PeftModel
    from safetensors.torch import load_file
    from sklearn.metrics import accuracy_score, f1_score, log_loss
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from model_evaluation.benchmark import BASELINE_MODELS, BenchmarkEvaluator

    rows = list(csv.DictReader(open(llama_setup.data)))
    texts, labels = [r["text"] for r in rows], [int(r["label"] == "pos") for r in rows]
    evaluator = BenchmarkEvaluator(texts, labels, batch_size=8)
    frozen = evaluator.run_benchmark("qwen_base_frozen", str(llama_setup.adapter), model_name=str(llama_setup.base))
    lora = evaluator.run_benchmark("qwen_lora", str(llama_setup.adapter), model_name=str(llama_setup.base))
    assert "qwen_base_frozen" in BASELINE_MODELS

    # independent references: A = a clean base with the saved head tensors copied in; B = plain peft
    tokenizer = AutoTokenizer.from_pretrained(str(llama_setup.base))
    base = AutoModelForSequenceClassification.from_pretrained(str(llama_setup.base)).eval()
    saved = load_file(str(llama_setup.adapter / "adapter_model.safetensors"))
    with torch.no_grad():
        base.score.weight.copy_(saved["base_model.model.score.weight"])
    expected_a = _one_at_a_time_probs(base, tokenizer, texts)
    peft_b = PeftModel.from_pretrained(
        AutoModelForSequenceClassification.from_pretrained(str(llama_setup.base)), str(llama_setup.adapter)
    ).eval()
    expected_b = _one_at_a_time_probs(peft_b, tokenizer, texts)
    for result, probs in ((frozen, expected_a), (lora, expected_b)):
        got, pred = result["metrics"], probs.argmax(axis=1)
        assert got["accuracy"] == pytest.approx(accuracy_score(labels, pred), abs=1e-12)
        assert got["f1"] == pytest.approx(f1_score(labels, pred), abs=1e-12)
        assert got["log_loss"] == pytest.approx(log_loss(labels, probs), rel=1e-4)
        assert got["qps"] > 0
    quality = ("accuracy", "f1", "auc_roc", "log_loss", "brier")  # QPS differs anyway: compare what LoRA changed
    assert {m: frozen["metrics"][m] for m in quality} != {m: lora["metrics"][m] for m in quality}
    assert frozen["metrics"]["log_loss"] != pytest.approx(lora["metrics"]["log_loss"], rel=1e-3)
