"""Layer-wise analysis maths (CKA, cosine, per-layer probes) against independent numpy/sklearn code."""

from __future__ import annotations

import base64
import io
import re

import matplotlib.image as mpimg
import numpy as np
import pytest
from scipy.stats import ortho_group

from lorafair.report import words
from lorafair.stats import representations as analysis
from lorafair.stats.probe import fit_linear_probe

IMG = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def _hsic_cka(x, y):
    """CKA written the textbook way: tr(K H L H) / sqrt(tr(K H K H) tr(L H L H)), K = X Xᵀ, H = I - 11ᵀ/n."""
    n = x.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    k, l_ = x @ x.T, y @ y.T
    return np.trace(k @ h @ l_ @ h) / np.sqrt(np.trace(k @ h @ k @ h) * np.trace(l_ @ h @ l_ @ h))


@pytest.mark.parametrize("n,d", [(40, 8), (12, 30)])  # both code paths: d x d and n x n Gram forms
def test_cka_equals_the_hsic_formula(n, d):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, d))
    y = x @ rng.normal(size=(d, d)) + rng.normal(size=(n, d))
    assert analysis.linear_cka(x, y) == pytest.approx(_hsic_cka(x, y), rel=1e-10)
    assert 0 < analysis.linear_cka(x, y) < 1


def test_cka_of_identical_features_is_exactly_one():
    x = np.random.default_rng(1).normal(size=(30, 16)).astype(np.float32)
    assert analysis.linear_cka(x, x.copy()) == 1.0


def test_cka_is_invariant_to_orthogonal_transforms_and_isotropic_scaling():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(50, 10))
    q = ortho_group.rvs(10, random_state=3)
    assert analysis.linear_cka(x, 3.7 * x @ q) == pytest.approx(1.0, abs=1e-12)
    y = rng.normal(size=(50, 10))
    assert analysis.linear_cka(x @ q, 0.2 * y) == pytest.approx(analysis.linear_cka(x, y), rel=1e-10)
    # but not to an anisotropic scaling: CKA does see it
    assert analysis.linear_cka(x, x * np.array([10.0] + [0.1] * 9)) < 0.9


def test_cka_is_undefined_without_variance():
    x = np.ones((5, 3))
    assert analysis.linear_cka(x, x) is None
    assert analysis.linear_cka(x, np.random.default_rng(0).normal(size=(5, 3))) is None


def test_mean_cosine_equals_a_loop():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(20, 6)), rng.normal(size=(20, 6))
    expected = np.mean([a @ b / np.linalg.norm(a) / np.linalg.norm(b) for a, b in zip(x, y)])
    assert analysis.mean_cosine(x, y) == pytest.approx(expected, rel=1e-12)
    assert analysis.mean_cosine(x, x.copy()) == 1.0


def _separable(n, d, seed):
    direction = np.random.default_rng(0).normal(size=d)  # the same signal in training and evaluation data
    y = np.arange(n) % 2
    x = np.random.default_rng(seed).normal(size=(n, d)) + 0.5 * y[:, None] * direction
    return x, y


def test_last_layer_probe_with_a1_data_and_c_equals_a1_accuracy():
    train_x, train_y = _separable(120, 12, 5)
    eval_x, eval_y = _separable(80, 12, 6)
    a1 = fit_linear_probe(train_x, train_y, 2, seed=0)
    a1_accuracy = float(np.mean(a1.logits(eval_x).argmax(axis=1) == eval_y))
    ours = analysis.probe_accuracy(train_x, train_y, eval_x, eval_y, C=a1.C, seed=0)
    assert ours == a1_accuracy
    assert 0.5 < ours < 1.0  # the task is decodable but not trivially: the equality above says something


def test_layer_records_shape_ranges_and_unchanged_layers():
    rng = np.random.default_rng(7)
    eval_a = rng.normal(size=(3, 40, 5)).astype(np.float32)
    eval_b = eval_a.copy()
    eval_b[2] = eval_b[2] @ rng.normal(size=(5, 5)).astype(np.float32)  # only the last layer changes
    train = rng.normal(size=(3, 30, 5)).astype(np.float32)
    probe = {"train_a": train, "train_b": train, "train_y": np.arange(30) % 2, "eval_y": np.arange(40) % 2, "C": 1.0}
    records = analysis.layer_records(eval_a, eval_b, probe=probe)
    assert [r["layer"] for r in records] == [0, 1, 2]
    assert [r["cka"] for r in records[:2]] == [1.0, 1.0] and records[2]["cka"] < 1.0
    assert [r["cosine"] for r in records[:2]] == [1.0, 1.0]
    for r in records:
        assert all(0.0 <= acc <= 1.0 for acc in r["probe_accuracy"].values())
    assert records[0]["probe_accuracy"]["A"] == records[0]["probe_accuracy"]["B"]  # same features, same C


def test_summarise_picks_first_changed_layer_best_gain_and_top_modules():
    layers = [
        {"layer": 0, "cka": 1.0, "probe_accuracy": {"A": 0.5, "B": 0.5}},
        {"layer": 1, "cka": 0.995, "probe_accuracy": {"A": 0.6, "B": 0.7}},
        {"layer": 2, "cka": 0.9, "probe_accuracy": {"A": 0.6, "B": 0.9}},
        {"layer": 3, "cka": 0.5, "probe_accuracy": {"A": 0.7, "B": 0.8}},
    ]
    weights = [
        {"module": m, "delta_norm_ratio": r, "intruders": i}
        for m, r, i in (("a", 0.1, 1), ("b", 0.3, 0), ("c", 0.2, None), ("d", 0.05, 2))
    ]
    summary = analysis.summarise(layers, weights)
    assert summary["first_layer_cka_below"]["layer"] == 2
    assert summary["largest_probe_gain"]["layer"] == 2
    assert summary["largest_probe_gain"]["gain"] == pytest.approx(0.3)
    assert [m["module"] for m in summary["top_modules_by_delta_norm_ratio"]] == ["b", "c", "a"]
    assert summary["total_intruders"] == 3 and summary["modules_with_intruders_counted"] == 3


def test_renderer_formats_the_summary_and_draws_the_three_plots():
    from lorafair.report import analysis_sections as render_analysis

    layers = [
        {"layer": i, "cka": c, "cosine": 0.9 + 0.01 * i, "probe_accuracy": {"A": 0.6, "B": 0.6 + 0.1 * i}}
        for i, c in enumerate([1.0, 0.995, 0.8])
    ]
    weights = [
        {
            "module": f"model.layers.{i}.self_attn.{k}",
            "layer": i,
            "kind": f"self_attn.{k}",
            "delta_norm_ratio": 0.01 * (i + 1) + (0.005 if k == "q_proj" else 0),
            "intruders": i,
        }
        for i in range(3)
        for k in ("q_proj", "v_proj")
    ]
    report = {
        "config": {"lang": "en"},
        "variants": {"B": {"metrics": {"accuracy": {"value": 0.85}}}},
        "analysis": {
            "layers": layers,
            "weights": weights,
            "summary": analysis.summarise(layers, weights),
            "notes": ["what was computed"],
        },
    }
    assert words.table("en", "analysis")["heading"] == "Where LoRA changed the features"
    assert words.table("zh", "analysis")["heading"] == "LoRA 在哪里改变了特征"
    body = "\n".join(words.analysis_lines(report, "en"))
    assert "layer 2 (0 = embeddings, 2 = last; CKA 0.8000" in body
    assert "layer 2 (+20.0 pp: A 0.600 -> B 0.800)" in body
    assert "model.layers.2.self_attn.q_proj (0.0350), model.layers.2.self_attn.v_proj (0.0300)" in body
    assert ": 6 in 6 modules." in body  # 0 + 0 + 1 + 1 + 2 + 2
    page = render_analysis.html_section(report)
    images = [base64.b64decode(data, validate=True) for data in IMG.findall(page)]
    assert len(images) == 3  # similarity, probes, heatmap
    for png in images:
        image = mpimg.imread(io.BytesIO(png), format="png")
        assert image.shape[0] > 100 and image.shape[1] > 100  # a drawn figure, not an empty placeholder
        assert float(image[..., :3].std()) > 0.02  # not a blank canvas
    assert "<li>what was computed</li>" in page  # a schema-1 note (a sentence) is shown as it is
    assert words.analysis_lines({"config": {}, "analysis": None}, "en") == []
    assert render_analysis.html_section({"config": {}}) == ""
