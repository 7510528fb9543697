"""The fair comparison on tiny random Qwen2 / Llama / BERT classifiers, checked against independent computation."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from report_checks import assert_outputs_hold_the_report, assert_tables_hold_the_report, html_text

from lorafair.cli import main
from lorafair.report import words

from conftest import toy_rows, write_csv


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
    assert assert_outputs_hold_the_report(qwen2_report) == report  # report.md, report.html hold these numbers


def test_report_subcommand_rerenders(qwen2_report, capsys):
    report = json.loads((qwen2_report / "report.json").read_text())
    code, out, _ = _run(["report", str(qwen2_report), "--format", "md"], capsys)
    assert code == 0 and "| accuracy |" in out
    assert_tables_hold_the_report(out, report)
    assert out == (qwen2_report / "report.md").read_text(encoding="utf-8")  # the same file, re-rendered
    code, out, _ = _run(["report", str(qwen2_report / "report.json"), "--lang", "zh"], capsys)
    assert code == 0 and "结果汇总" in out
    zh = json.loads(json.dumps(report))
    for variant, block in zh["variants"].items():  # the console names the variants in the language asked for
        block["name"] = {
            "B": "LoRA微调",
            "A": "冻结 + LoRA分类头",
            "A1": "冻结 + 线性探针",
            "R": "基础模型 + 随机分类头",
        }[variant]
    assert_tables_hold_the_report(out, zh)


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
    report = json.loads((tmp_path / "zh" / "report.json").read_text(encoding="utf-8"))
    assert_tables_hold_the_report(out, report)  # the console's numbers are report.json's
    speed = report["variants"]["B"]["speed"]
    b_row = next(
        line
        for line in out.splitlines()[out.splitlines().index("======== 速度对比 ========") :]
        if line.startswith("LoRA微调")
    )
    assert f"{speed['qps']:.1f}" in b_row.split()
    assert out.endswith(
        f"reports written to {tmp_path / 'zh'}/ (report.json, report.md, report.html, predictions.csv, flips.csv)\n"
    )


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


@pytest.fixture
def held_out_adapter(llama_setup, tmp_path, monkeypatch):
    """`lorafair train` holding out a quarter of a 48-row file (12 rows), and a private lorafair cache."""
    monkeypatch.setenv("LORAFAIR_CACHE", str(tmp_path / "cache"))
    data = write_csv(toy_rows(48, seed=21), tmp_path / "train.csv")
    argv = ["train", "--base-model", str(llama_setup.base), "--data", str(data), "--eval-fraction", "0.25"]
    assert main([*argv, "--max-steps", "1", "--batch-size", "8", "--output", str(tmp_path / "adapter"), "--quiet"]) == 0
    return tmp_path / "adapter", data


def test_held_out_evaluation_names_the_training_file_and_rows(held_out_adapter, tmp_path, capsys):
    """quick without --data evaluates on the held-out rows (written to a cache file); the report names the
    training file they came from and which of its rows they are."""
    adapter, data = held_out_adapter
    out = tmp_path / "quick"
    code, console, err = _run(["quick", "--adapter", str(adapter), "--num-samples", "8", "--output", str(out)], capsys)
    assert code == 0, err
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    recorded = json.loads((adapter / "lorafair_run.json").read_text(encoding="utf-8"))["eval_data"]["indices"]
    held = report["data"]["held_out"]
    assert held["from"] == str(data) and held["path"] == str(data.resolve())
    assert held["rows"] == sorted(recorded) and held["n"] == 12 and report["data"]["n"] == 8
    assert report["data"]["source"] != str(data) and report["data"]["source"].endswith("eval.jsonl")
    with open(data, encoding="utf-8") as handle:
        original = list(csv.DictReader(handle))
    cached = [json.loads(line) for line in open(report["data"]["source"], encoding="utf-8")]
    assert len(held["evaluated_rows"]) == 8
    for position, row in zip(report["data"]["indices"], held["evaluated_rows"]):
        assert cached[position]["text"] == original[row]["text"] and cached[position]["label"] == original[row]["label"]
    assert "task_checks" in report and report["task_checks"] == []  # its own task: nothing to flag
    _assert_held_out_rows_shown(out, console, data, sorted(recorded), report["data"]["indices"], capsys)

    other = tmp_path / "other"
    code, _, err = _run(
        [
            "compare",
            "--adapter",
            str(adapter),
            "--data",
            str(data),
            "--variants",
            "B,A",
            "--bootstrap",
            "0",
            "--output",
            str(other),
            "--quiet",
        ],
        capsys,
    )
    assert code == 0, err
    report = json.loads((other / "report.json").read_text(encoding="utf-8"))
    assert "held_out" not in report["data"]  # the training file itself: no held-out part named
    assert [r["kind"] for r in report["task_checks"]] == ["training_rows"]


def _assert_held_out_rows_shown(out, console, data, held, indices, capsys):
    """Console (as quick printed it), report.md and report.html, and in Chinese: the evaluation rows are named as
    rows of the training file, with the rows of the cache file mapped back (row j of eval.jsonl = held[j])."""
    rows = ", ".join(str(held[i]) for i in sorted(indices))  # held is sorted, so these are in file order
    english = f"{len(indices)} of the {len(held)} rows held out of {data} when the adapter was trained (rows {rows}, "
    english += "counted from 0)"
    chinese = f"训练适配器时从 {data} 留出的 {len(held)} 行中的 {len(indices)} 行（行号 {rows}，从 0 起）"
    assert f"- evaluation rows: {english}\n" in console
    assert f"- evaluation rows: {english}\n" in (out / "report.md").read_text(encoding="utf-8")
    text, _ = html_text((out / "report.html").read_text(encoding="utf-8"))
    assert f"evaluation rows {english}" in text
    for fmt, where in (
        ("console", f"- 评估行：{chinese}\n"),
        ("md", f"- 评估行：{chinese}\n"),
        ("html", f"评估行 {chinese}"),
    ):
        code, page, _ = _run(["report", str(out), "--format", fmt, "--lang", "zh"], capsys)
        assert code == 0 and where in (html_text(page)[0] if fmt == "html" else page), fmt


def test_which_examples_changed_through_the_cli_in_both_languages(qwen2_report, capsys):
    """The tiny model's run: flips.csv beside predictions.csv, the flips tables in console, Markdown and HTML."""
    report = json.loads((qwen2_report / "report.json").read_text(encoding="utf-8"))
    predictions = list(csv.DictReader(open(qwen2_report / "predictions.csv", encoding="utf-8")))
    flipped = list(csv.DictReader(open(qwen2_report / "flips.csv", encoding="utf-8")))
    for key, pair in report["flips"]["pairs"].items():
        ref = pair["reference"]
        by_hand = {r["index"] for r in predictions if (r["pred_B"] == r["label"]) != (r[f"pred_{ref}"] == r["label"])}
        assert {r["index"] for r in flipped if r["pair"] == key} == by_hand
        t = pair["table"]
        assert t["only_new_right"] + t["only_reference_right"] == len(by_hand) and t["n"] == len(predictions)
    by_length = report["flips"]["slices"]["by_length"]
    assert sum(r["n"] for r in by_length) == len(predictions) and by_length[0]["min_tokens"] >= 1
    for lang, heading in (("en", "Which examples changed"), ("zh", "哪些样本发生了变化")):
        code, out, _ = _run(["report", str(qwen2_report), "--lang", lang], capsys)
        assert code == 0 and f"======== {heading} ========" in out
        assert words.table(lang, "flips")["nfr"] in out
        code, md, _ = _run(["report", str(qwen2_report), "--lang", lang, "--format", "md"], capsys)
        assert code == 0 and f"## {heading}" in md and words.table(lang, "flips")["prf"] in md
        code, page, _ = _run(["report", str(qwen2_report), "--lang", lang, "--format", "html"], capsys)
        assert code == 0 and '<section id="flips">' in page and heading in html_text(page)[0]
