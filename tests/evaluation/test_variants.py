"""A1 for every adapter: cross-fitted on the evaluation set when no probe data is recorded, given or left over.

Through the real CLI on the tiny Llama of conftest (a plain-peft adapter: no recorded training data). With
--num-samples 0 every row of the evaluation file is evaluated, so nothing is left beside the sample: A1 used to be
skipped there. Its out-of-fold probabilities are checked against scikit-learn's cross_val_predict on features
computed here by plain transformers, one example at a time.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from lorafair.cli import main
from lorafair.report import words
from lorafair.stats.probe import DEFAULT_CS, MAX_ITER

from conftest import toy_rows, write_csv


def _compare(setup, out, *extra) -> list[str]:
    return ["compare", "--adapter", str(setup.adapter), "--data", str(setup.data), "--output", str(out), *extra]


@pytest.fixture(scope="module")
def cross_fitted(llama_setup, tmp_path_factory):
    out = tmp_path_factory.mktemp("cross-fit") / "report"
    assert main(_compare(llama_setup, out, "--num-samples", "0", "--bootstrap", "200", "--quiet")) == 0
    return out


def _last_token_features(setup, texts) -> np.ndarray:
    """The head's input by plain transformers: the last token's final hidden state, one example at a time."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(setup.base))
    backbone = AutoModel.from_pretrained(str(setup.base)).eval()
    with torch.no_grad():
        rows = [backbone(**tokenizer(t, return_tensors="pt")).last_hidden_state[0, -1] for t in texts]
    return torch.stack(rows).double().numpy()


def test_a1_is_cross_fitted_on_the_evaluation_set_and_equals_sklearn(cross_fitted, llama_setup):
    report = json.loads((cross_fitted / "report.json").read_text(encoding="utf-8"))
    with open(llama_setup.data, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert report["data"]["n"] == len(rows) == 48  # every row evaluated: nothing beside the sample
    assert report["variants"]["A1"]["cross_fitted"] is True and "B-A1" in report["deltas"]
    (note,) = [n for n in report["notes"] if n["kind"] == "probe_cross_fitted"]
    assert (note["folds"], note["examples"]) == (5, 48)
    assert not [n for n in report["notes"] if n["kind"] in ("probe_skipped", "a1_absent")]
    assert not [p for p in report["forward_passes"] if p["kind"] == "frozen_probe"]  # no probe data was read
    indices = report["data"]["indices"]
    x = _last_token_features(llama_setup, [rows[i]["text"] for i in indices])
    y = np.array([["neg", "pos"].index(rows[i]["label"]) for i in indices])
    search = GridSearchCV(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=MAX_ITER, random_state=0)),
        {"logisticregression__C": sorted(DEFAULT_CS)},
        scoring="accuracy",
        cv=StratifiedKFold(n_splits=5, shuffle=True, random_state=0),
    )
    outer = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    expected = cross_val_predict(search, x, y, cv=outer, method="predict_proba")
    with open(cross_fitted / "predictions.csv", encoding="utf-8") as handle:
        got = np.array([[float(r["prob_A1_neg"]), float(r["prob_A1_pos"])] for r in csv.DictReader(handle)])
    # fp32 features from batched passes vs one example at a time differ in the last bits (which bits depends on
    # the CPU's kernels: 5e-8 on an AVX512 machine), so the probabilities agree to 1e-6, not to float64 precision
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    accuracy = (expected.argmax(axis=1) == y).mean()
    assert report["variants"]["A1"]["metrics"]["accuracy"]["value"] == pytest.approx(accuracy)


def test_the_cross_fit_is_stated_in_every_medium_and_language(cross_fitted, capsys):
    report = json.loads((cross_fitted / "report.json").read_text(encoding="utf-8"))
    (fits,) = [n for n in report["notes"] if n["kind"] == "probe_fold_fits"]
    assert len(fits["C"]) == len(fits["cv_accuracy"]) == 5 and set(fits["C"]) <= set(DEFAULT_CS)
    english = "A1 cross-fitted on the 48 evaluation examples"
    assert english in (cross_fitted / "report.md").read_text(encoding="utf-8")
    assert english in (cross_fitted / "report.html").read_text(encoding="utf-8")
    capsys.readouterr()
    assert main(["report", str(cross_fitted), "--lang", "zh"]) == 0
    chinese = capsys.readouterr().out
    assert "交叉拟合（5 折分层" in chinese and english not in chinese
    assert words.note_sentence(fits, "en").startswith("A1 regularisation C per fold: ")


def test_without_a1_the_report_says_so(llama_setup, tmp_path):
    """--variants without A1, and an evaluation set with too few examples of a class to cross-fit: a record each."""
    out = tmp_path / "no-a1"
    assert main(_compare(llama_setup, out, "--variants", "B,A", "--bootstrap", "0", "--quiet")) == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert [n for n in report["notes"] if n["kind"] == "a1_absent"] == [
        {"kind": "a1_absent", "reason": "not_requested"}
    ]
    assert "No linear probe (A1) in this report: not among --variants" in (out / "report.md").read_text("utf-8")
    rows = [r for r in toy_rows(20, seed=4) if r["label"] == "neg"] + toy_rows(4, seed=5)[1::2]  # 2 "pos"
    data = write_csv(rows, tmp_path / "small.csv")
    out = tmp_path / "small"
    argv = ["compare", "--adapter", str(llama_setup.adapter), "--data", str(data), "--num-samples", "0"]
    assert main([*argv, "--bootstrap", "0", "--output", str(out), "--quiet"]) == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert "A1" not in report["variants"]
    kinds = [n["kind"] for n in report["notes"]]
    assert "probe_skipped" in kinds and {"kind": "a1_absent", "reason": "no_probe_data"} in report["notes"]
