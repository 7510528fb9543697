"""The fair comparison on tiny random Qwen2 / Llama / BERT classifiers, checked against independent computation."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from safetensors import safe_open

from lorafair.cli import main
from lorafair.models import inference, modeling
from lorafair.report import words


def _texts(setup) -> list[str]:
    with open(setup.data, encoding="utf-8") as handle:
        return [row["text"] for row in csv.DictReader(handle)][:12]


def _saved_head(adapter_dir) -> dict:
    """The head straight from the safetensors file, bypassing lorafair's reader."""
    head = {}
    with safe_open(str(adapter_dir / "adapter_model.safetensors"), "pt") as handle:
        for key in handle.keys():
            if "lora_" not in key:
                head[key.rsplit(".", 1)[1]] = handle.get_tensor(key)
    return head


def _frozen_a(setup, padding_side="right", batch_size=5):
    adapter = modeling.read_adapter(setup.adapter)
    tokenizer = modeling.load_tokenizer(setup.adapter, setup.base)
    model = modeling.load_base_classifier(setup.base, adapter.num_labels)
    modeling.ensure_pad_token(tokenizer, model)
    modeling.install_head(model, adapter)
    encoded = inference.tokenize(tokenizer, _texts(setup), max_length=64)
    batches = inference.length_sorted_batches(encoded.lengths, batch_size)
    result = inference.run_pass(
        model,
        encoded,
        batches,
        pad_token_id=tokenizer.pad_token_id,
        padding_side=padding_side,
        head=modeling.head_module(model, adapter.head_name),
        quiet=True,
    )
    return model, tokenizer, encoded, result


def test_a_logits_equal_frozen_features_times_head(any_setup):
    from transformers import AutoModel

    _, tokenizer, encoded, result = _frozen_a(any_setup)
    backbone = AutoModel.from_pretrained(str(any_setup.base)).eval()
    head = _saved_head(any_setup.adapter)
    expected = []
    with torch.no_grad():
        for ids in encoded.input_ids:  # one at a time: no padding at all
            out = backbone(input_ids=torch.tensor([ids]))
            feature = out.pooler_output[0] if any_setup.arch == "bert" else out.last_hidden_state[0, -1]
            expected.append(feature)
    features = torch.stack(expected)
    logits = features @ head["weight"].T + head.get("bias", 0)
    torch.testing.assert_close(torch.from_numpy(result.features), features, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(torch.from_numpy(result.logits), logits, atol=1e-5, rtol=1e-4)


def test_b_logits_equal_peft_model(any_setup):
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    model, tokenizer, encoded, _ = _frozen_a(any_setup)
    merged = modeling.merge_lora(model, modeling.read_adapter(any_setup.adapter))
    batches = inference.length_sorted_batches(encoded.lengths, 4)
    ours = inference.run_pass(merged, encoded, batches, pad_token_id=tokenizer.pad_token_id, quiet=True).logits

    base = AutoModelForSequenceClassification.from_pretrained(str(any_setup.base), num_labels=any_setup.num_labels)
    base.config.pad_token_id = tokenizer.pad_token_id
    reference = PeftModel.from_pretrained(base, str(any_setup.adapter)).eval()
    with torch.no_grad():
        expected = torch.cat([reference(input_ids=torch.tensor([ids])).logits for ids in encoded.input_ids])
    torch.testing.assert_close(torch.from_numpy(ours), expected, atol=1e-4, rtol=1e-4)
    # and the LoRA really matters here, so the check above is not vacuous
    assert not torch.allclose(torch.from_numpy(_frozen_a(any_setup)[3].logits), expected, atol=1e-3)


@pytest.mark.parametrize(
    "arch,padding_side",
    [("qwen2", "right"), ("qwen2", "left"), ("llama", "right"), ("llama", "left"), ("bert", "right")],
)  # BERT pools [CLS]: right only
def test_batched_equals_one_at_a_time(request, arch, padding_side):
    setup = request.getfixturevalue(f"{arch}_setup")
    _, _, _, batched = _frozen_a(setup, padding_side=padding_side, batch_size=6)
    _, _, _, single = _frozen_a(setup, padding_side=padding_side, batch_size=1)
    np.testing.assert_allclose(batched.logits, single.logits, atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(batched.features, single.features, atol=1e-5, rtol=1e-4)


def _run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_zero_lora_gives_a_equal_b(llama_setup, tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = _run(
        [
            "compare",
            "--adapter",
            str(llama_setup.zero_adapter),
            "--data",
            str(llama_setup.data),
            "--output",
            str(out),
            "--variants",
            "B,A",
            "--bootstrap",
            "200",
            "--quiet",
        ],
        capsys,
    )
    assert code == 0, err
    report = json.loads((out / "report.json").read_text())
    for metric, entry in report["deltas"]["B-A"].items():
        if entry["value"] is not None:
            assert entry["value"] == 0.0, metric
            assert entry["ci"] == [0.0, 0.0], metric
    assert report["variants"]["A"]["head_sha256"] == report["variants"]["B"]["head_sha256"]
    rows = list(csv.DictReader(open(out / "predictions.csv")))
    assert all(r["prob_A_pos"] == r["prob_B_pos"] for r in rows)
    assert any("no significant difference" in line for line in report["conclusion"])


@pytest.fixture(scope="module")
def qwen2_report(qwen2_setup, tmp_path_factory):
    out = tmp_path_factory.mktemp("qwen2-compare") / "out"
    code = main(
        [
            "compare",
            "--adapter",
            str(qwen2_setup.adapter),
            "--data",
            str(qwen2_setup.data),
            "--num-samples",
            "30",
            "--output",
            str(out),
            "--bootstrap",
            "300",
            "--quiet",
        ]
    )
    assert code == 0
    return out


def test_report_numbers_equal_sklearn_on_predictions_csv(qwen2_report):
    from sklearn import metrics as skm

    report = json.loads((qwen2_report / "report.json").read_text())
    rows = list(csv.DictReader(open(qwen2_report / "predictions.csv")))
    labels = report["data"]["labels"]
    y = np.array([labels.index(r["label"]) for r in rows])
    assert len(rows) == report["data"]["n"] == 30
    assert set(report["variants"]) == {"B", "A", "A1", "R"}
    for variant, block in report["variants"].items():
        probs = np.array([[float(r[f"prob_{variant}_{name}"]) for name in labels] for r in rows])
        pred = probs.argmax(axis=1)
        assert [labels[p] for p in pred] == [r[f"pred_{variant}"] for r in rows]
        got = {k: v["value"] for k, v in block["metrics"].items()}
        assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
        assert got["f1"] == pytest.approx(skm.f1_score(y, pred, zero_division=0))
        assert got["recall"] == pytest.approx(skm.recall_score(y, pred))
        assert got["auc_roc"] == pytest.approx(skm.roc_auc_score(y, probs[:, 1]))
        assert got["log_loss"] == pytest.approx(skm.log_loss(y, probs, labels=[0, 1]), rel=1e-6)
        assert block["confusion_matrix"] == skm.confusion_matrix(y, pred).tolist()
        ci = block["metrics"]["accuracy"]["ci"]
        assert ci[0] <= got["accuracy"] <= ci[1]
    delta = report["deltas"]["B-A"]["accuracy"]
    assert delta["value"] == pytest.approx(
        report["variants"]["B"]["metrics"]["accuracy"]["value"]
        - report["variants"]["A"]["metrics"]["accuracy"]["value"]
    )
    assert delta["test"] == "mcnemar" and 0 <= delta["p_value"] <= 1
    assert report["deltas"]["B-A"]["auc_roc"]["test"] == "delong"
    assert report["head"]["A_equals_B"] is True
    assert len(report["data"]["token_ids_sha256"]) == 64
    assert [p["examples"] for p in report["forward_passes"]] == [30, 18, 30, 30]  # frozen, probe, fidelity, B
    for name in ("report.md", "report.html"):
        assert (qwen2_report / name).stat().st_size > 0


def test_report_subcommand_rerenders(qwen2_report, capsys):
    code, out, _ = _run(["report", str(qwen2_report), "--format", "md"], capsys)
    assert code == 0 and "| accuracy |" in out


def test_chinese_console_report(llama_setup, tmp_path, capsys):
    code, out, err = _run(
        [
            "compare",
            "--adapter",
            str(llama_setup.adapter),
            "--data",
            str(llama_setup.data),
            "--output",
            str(tmp_path / "zh"),
            "--variants",
            "B,A",
            "--bootstrap",
            "100",
            "--lang",
            "zh",
        ],
        capsys,
    )
    assert code == 0, err
    assert "结果汇总" in out and "冻结 + LoRA分类头" in out and "速度对比" in out


def test_probe_never_trains_on_evaluation_examples(llama_setup, tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = _run(
        [
            "compare",
            "--adapter",
            str(llama_setup.adapter),
            "--data",
            str(llama_setup.data),
            "--probe-data",
            str(llama_setup.data),
            "--num-samples",
            "30",
            "--variants",
            "A,A1",
            "--bootstrap",
            "0",
            "--output",
            str(out),
            "--quiet",
        ],
        capsys,
    )
    assert code == 0, err
    report = json.loads((out / "report.json").read_text())
    (probe,) = [n for n in report["notes"] if n["kind"] == "probe_eval_rest"]
    assert probe["examples"] == 18 and "kept disjoint from the evaluation sample" in words.note_sentence(probe, "en")
    assert [p["examples"] for p in report["forward_passes"]] == [30, 18]
    assert "ci" not in report["variants"]["A1"]["metrics"]["accuracy"]  # --bootstrap 0: no CIs


def test_bf16_on_cpu_runs_end_to_end_and_stays_near_fp32(llama_setup, tmp_path, capsys):
    """--dtype bfloat16 on the CPU: every variant, the report says bf16, B and A predict like fp32."""
    reports, probs = {}, {}
    for dtype in ("float32", "bfloat16"):
        out = tmp_path / dtype
        code, _, _ = _run(
            [
                "compare",
                "--adapter",
                str(llama_setup.adapter),
                "--data",
                str(llama_setup.data),
                "--num-samples",
                "24",
                "--bootstrap",
                "0",
                "--device",
                "cpu",
                "--dtype",
                dtype,
                "--no-analysis",
                "--output",
                str(out),
            ],
            capsys,
        )
        assert code == 0
        reports[dtype] = json.loads((out / "report.json").read_text(encoding="utf-8"))
        with open(out / "predictions.csv", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        probs[dtype] = {v: np.array([float(r[f"prob_{v}_pos"]) for r in rows]) for v in ("A", "B", "A1", "R")}
    assert reports["bfloat16"]["environment"]["dtype"] == "bfloat16"
    assert reports["bfloat16"]["fidelity"]["model_dtype"] == "bfloat16"
    assert reports["bfloat16"]["fidelity"]["merge_dtype"] == "float32"
    for variant in ("A", "B"):
        diff = np.abs(probs["bfloat16"][variant] - probs["float32"][variant])
        assert 0 < diff.max() < 0.05, (variant, diff.max())  # really computed in bf16, and close to fp32
