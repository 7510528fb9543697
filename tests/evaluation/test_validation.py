"""Validated input, the positive class, dropped/truncated rows and merge fidelity, through the real CLI.

The model is a tiny GPT-2 (LoRA on the Conv1D `c_attn`, head `score`; its predictions are mixed, which
the pos-label checks need) and, for the head section, a DistilBERT (head = `pre_classifier` + `classifier`),
both from tiny_archs; numbers are checked against sklearn and against counts made here.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from tiny_archs import build_adapter, build_base

from lorafair.cli import main
from lorafair.evaluation.fidelity import check_batches, measure
from lorafair.models import modeling
from lorafair.report import words
from lorafair.stats import paired as stats

from conftest import toy_rows, write_csv


def _setup(root, arch):
    base = build_base(arch, root / "base")
    adapter = build_adapter(arch, base, root / "adapter")
    rows = toy_rows(60, seed=5)
    rows[7]["text"] = "   "  # dropped: no text
    rows[11]["label"] = ""  # dropped: no label
    rows[13]["text"] = ""
    rows[20]["text"] = " ".join(["the movie was very good and"] * 3)  # 18 words: truncated at --max-length 12
    data = write_csv(rows, root / "data.csv")
    return base, adapter, data, rows


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return _setup(tmp_path_factory.mktemp("gpt2"), "gpt2")


@pytest.fixture(scope="module")
def distilbert(tmp_path_factory):
    return _setup(tmp_path_factory.mktemp("distilbert"), "distilbert")


def _cli(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _compare(tiny, out, *extra):
    _, adapter, data, _ = tiny
    return ["compare", "--adapter", str(adapter), "--data", str(data), "--output", str(out), "--quiet", *extra]


@pytest.mark.parametrize(
    "option,value,message",
    [
        ("--batch-size", "0", "--batch-size 0 (needs >= 1)"),
        ("--max-length", "1", "--max-length 1 (needs >= 2)"),
        ("--num-samples", "-5", "--num-samples -5 (needs >= 0)"),
        ("--bootstrap", "-1", "--bootstrap -1 (needs >= 0)"),
        ("--alpha", "2", "--alpha 2.0 (needs 0 < alpha < 1)"),
        ("--alpha", "0", "--alpha 0.0 (needs 0 < alpha < 1)"),
        ("--probe-samples", "1", "--probe-samples 1 (needs >= 2)"),
    ],
)
@pytest.mark.parametrize("command", ["compare", "quick"])
def test_each_rule_is_one_line_and_exit_2_before_anything_loads(command, option, value, message, tmp_path, capsys):
    # the adapter does not even exist: the option is refused before anything is read or loaded
    code, _, err = _cli(
        [
            command,
            "--adapter",
            str(tmp_path / "none"),
            "--data",
            "x.csv",
            option,
            value,
            "--output",
            str(tmp_path / "out"),
        ],
        capsys,
    )
    assert code == 2
    assert err.strip().count("\n") == 0 and message in err
    assert not (tmp_path / "out").exists()


def test_train_and_seed_wrappers_share_the_validation(tmp_path, capsys):
    from model_evaluation import run_full_eval

    code, _, err = _cli(["train", "--base-model", "m", "--data", "d.csv", "--max-length", "1"], capsys)
    assert code == 2 and "--max-length 1 (needs >= 2)" in err and err.strip().count("\n") == 0
    code = run_full_eval.main(["--model_path", str(tmp_path / "none"), "--batch_size", "0"])
    assert code == 2 and "--batch-size 0 (needs >= 1)" in capsys.readouterr().err


def test_unknown_pos_label_fails_before_the_model_loads(tiny, tmp_path, capsys, monkeypatch):
    def no_loading(*args, **kwargs):
        raise AssertionError("the model was loaded before --pos-label was checked")

    monkeypatch.setattr(modeling, "load_base_classifier", no_loading)
    for value in ("5", "great", "-1"):
        code, _, err = _cli(_compare(tiny, tmp_path / value, "--pos-label", value), capsys)
        assert code == 2, err
        assert f"--pos-label {value}: no such label; the labels are 0=neg, 1=pos" in err
        assert err.strip().count("\n") == 0


@pytest.fixture(scope="module")
def runs(tiny, tmp_path_factory):
    """One compare per way of naming the positive class (and the default), all variants, 400 resamples."""
    out = {}
    for name, extra in (("default", []), ("id0", ["--pos-label", "0"]), ("name0", ["--pos-label", "neg"])):
        folder = tmp_path_factory.mktemp(name) / "out"
        code = main(_compare(tiny, folder, "--num-samples", "0", "--max-length", "12", "--bootstrap", "400", *extra))
        assert code == 0
        report = json.loads((folder / "report.json").read_text())
        with open(folder / "predictions.csv", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        out[name] = (report, rows)
    return out


def _y_probs(report, rows, variant):
    labels = report["data"]["labels"]
    y = np.array([labels.index(r["label"]) for r in rows])
    probs = np.array([[float(r[f"prob_{variant}_{label}"]) for label in labels] for r in rows])
    return y, probs


@pytest.mark.parametrize("run", ["id0", "name0"])
def test_pos_label_0_everywhere_against_sklearn(runs, run):
    from sklearn import metrics as skm

    report, rows = runs[run]
    assert report["data"]["positive_label"] == "neg" and report["data"]["positive_label_id"] == 0
    for variant, block in report["variants"].items():
        y, probs = _y_probs(report, rows, variant)
        pred = probs.argmax(axis=1)
        expected = {
            "f1": skm.f1_score(y, pred, pos_label=0, zero_division=0),
            "precision": skm.precision_score(y, pred, pos_label=0, zero_division=0),
            "recall": skm.recall_score(y, pred, pos_label=0, zero_division=0),
            "auc_roc": skm.roc_auc_score(y == 0, probs[:, 0]),
        }
        for metric, value in expected.items():
            entry = block["metrics"][metric]
            assert entry["value"] == pytest.approx(value, abs=1e-9), (variant, metric)
            lo, hi = entry["ci"]
            assert lo <= entry["value"] <= hi, (variant, metric)  # the CI belongs to the same class
    # the CIs are those of class 0: the same resamples scored for class 0, not class 1
    ys, probs = _y_probs(report, rows, "B")
    probs_by = {v: _y_probs(report, rows, v)[1] for v in report["variants"]}
    pairs = [(new, ref) for new, ref in (("B", "A"), ("B", "A1"), ("A1", "A")) if new in probs_by and ref in probs_by]
    boot = stats.paired_bootstrap(ys, probs_by, pairs, n_resamples=400, seed=0, pos_label=0)
    for variant in report["variants"]:
        np.testing.assert_allclose(
            report["variants"][variant]["metrics"]["f1"]["ci"], boot["variants"][variant]["f1"], atol=1e-6
        )
    np.testing.assert_allclose(report["deltas"]["B-A"]["recall"]["ci"], boot["deltas"]["B-A"]["recall"], atol=1e-6)
    assert any("F1 (positive: neg)" in line for line in report["conclusion"])


def test_pos_label_by_name_equals_by_id_and_default_is_id_1(runs):
    by_id, by_name, default = runs["id0"][0], runs["name0"][0], runs["default"][0]
    assert by_id["deltas"] == by_name["deltas"] and by_id["conclusion"] == by_name["conclusion"]
    for variant, block in by_id["variants"].items():  # all but the timings
        assert block["metrics"] == by_name["variants"][variant]["metrics"]
    assert default["data"]["positive_label"] == "pos" and default["data"]["positive_label_id"] == 1
    assert default["variants"]["B"]["metrics"]["f1"] != by_id["variants"]["B"]["metrics"]["f1"]


def test_dropped_and_truncated_rows_against_counts_made_here(runs, tiny):
    _, _, _, rows = tiny
    report = runs["default"][0]
    dropped = sum(1 for r in rows if not str(r["text"]).strip() or not str(r["label"]).strip())
    kept = [r for r in rows if str(r["text"]).strip() and str(r["label"]).strip()]
    truncated = sum(1 for r in kept if len(r["text"].split()) > 12)  # word-level, no special tokens
    assert dropped == 3 and truncated >= 1
    data = report["data"]
    assert data["dropped_rows"] == dropped and data["n"] == len(kept)
    assert data["truncated"] == truncated
    assert data["truncated_share"] == pytest.approx(truncated / len(kept))
    from lorafair.report.render import render_console

    console = render_console(report, "en")  # the notes are rendered from report["data"], in any language
    assert f"{dropped} rows dropped while loading the data (empty text or label)" in console
    assert f"{truncated} examples ({100 * truncated / len(kept):.1f}%) truncated to --max-length" in console


def test_head_section_lists_every_saved_module_and_tensor(runs, distilbert, tmp_path, capsys):
    gpt2 = runs["default"][0]["head"]
    assert gpt2["modules"] == ["score"] and gpt2["tensors"] == ["score.weight"]
    assert gpt2["features"]["pooling"] == "last_non_pad" and gpt2["features"]["module"] == "score"
    assert (
        words.features_sentence(gpt2["features"], "en")
        == "last non-pad token of the last hidden state (input of score)"
    )
    out = tmp_path / "out"
    code, _, err = _cli(_compare(distilbert, out, "--variants", "B,A,R", "--bootstrap", "0"), capsys)
    assert code == 0, err
    report = json.loads((out / "report.json").read_text())
    head = report["head"]
    assert head["modules"] == ["pre_classifier", "classifier"]
    assert head["tensors"] == ["classifier.bias", "classifier.weight", "pre_classifier.bias", "pre_classifier.weight"]
    assert head["sha256"] == report["variants"]["A"]["head_sha256"] == report["variants"]["B"]["head_sha256"]
    assert head["features"]["model_type"] == "distilbert" and head["features"]["pooling"] == "vector"
    assert words.features_sentence(head["features"], "en") == (
        "the first token ([CLS]) of the last hidden state (input of pre_classifier)"
    )
    assert report["variants"]["R"]["head_sha256"] != head["sha256"]


def test_fidelity_of_the_fp32_merge(runs):
    report = runs["default"][0]
    fid = report["fidelity"]
    assert fid["checked_examples"] == min(64, report["data"]["n"])
    assert fid["prediction_flips"] == 0 and fid["merged_vs_unmerged_max_abs_logit_diff"] < 1e-4
    assert fid["merge_dtype"] == "float32" and fid["model_dtype"] == "float32"
    assert not any("unmerged" in line for line in report["checks"])


def test_a_broken_merge_is_measured_and_flagged(tiny, tmp_path, capsys, monkeypatch):
    """B 'merged' without its LoRA deltas: fidelity must see it against the unmerged model, as a check line."""

    def merge_that_forgets_lora(peft_model, adapter):
        return peft_model.unload().eval()  # unwraps without merging: B becomes A

    monkeypatch.setattr(modeling, "merge_attached", merge_that_forgets_lora)
    out = tmp_path / "out"
    code, _, err = _cli(_compare(tiny, out, "--variants", "B,A", "--bootstrap", "0", "--num-samples", "0"), capsys)
    assert code == 0, err
    report = json.loads((out / "report.json").read_text())
    fid = report["fidelity"]
    assert fid["prediction_flips"] > 0 and fid["merged_vs_unmerged_max_abs_logit_diff"] > 1e-2
    assert any(f"on {fid['prediction_flips']} of {fid['checked_examples']} checked" in c for c in report["checks"])


def test_bf16_merge_is_done_in_fp32_and_the_head_keeps_one_dtype(tiny):
    from safetensors.torch import load_file

    base, adapter_dir, _, _ = tiny
    adapter = modeling.read_adapter(adapter_dir)
    model = modeling.load_base_classifier(base, 2, dtype=torch.bfloat16, adapter=adapter)
    modeling.ensure_pad_token(modeling.load_tokenizer(adapter_dir, base), model)
    sha_a = modeling.install_head(model, adapter)
    name = "transformer.h.0.attn.c_attn"  # GPT-2's Conv1D: weight (in, out), LoRA delta transposed
    weight = model.get_submodule(name).weight.detach().clone()
    saved = load_file(str(adapter_dir / "adapter_model.safetensors"))
    lora_a, lora_b = (saved[f"base_model.model.{name}.lora_{k}.weight"].float() for k in "AB")
    expected = (weight.float() + (lora_b @ lora_a).T * (8 / 4)).to(torch.bfloat16)  # lora_alpha / r, rounded once
    merged = modeling.merge_lora(model, adapter)
    assert torch.equal(merged.get_submodule(name).weight, expected)
    assert all(p.dtype == torch.bfloat16 for p in modeling.head_tensors(merged, adapter).values())
    assert modeling.tensor_sha256(modeling.head_tensors(merged, adapter)) == sha_a


def test_fidelity_helpers_by_hand():
    batches = [np.arange(0, 30), np.arange(30, 60), np.arange(60, 90), np.arange(90, 100)]
    chosen = check_batches(batches, limit=64)
    assert [list(b) for b in chosen] == [list(range(90, 100)), list(range(60, 90)), list(range(30, 54))]
    unmerged = np.array([[0.0, 1.0], [2.0, 1.0], [0.5, 0.4]])
    merged = np.array([[0.0, 1.1], [0.9, 1.0], [0.5, 0.4]])
    fid = measure(unmerged, merged, merge_dtype="float32", model_dtype="bfloat16")
    assert fid["prediction_flips"] == 1 and fid["checked_examples"] == 3
    assert fid["merged_vs_unmerged_max_abs_logit_diff"] == pytest.approx(1.1)
