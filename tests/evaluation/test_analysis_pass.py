"""The analysis inside `lorafair compare` on tiny random models, against hidden states computed one at a time."""

from __future__ import annotations

import base64
import csv
import io
import json
import re

import matplotlib.image as mpimg
import numpy as np
import pytest
import torch

from lorafair.cli import main
from lorafair.report import words

from conftest import make_top_layer_adapter


def _compare(setup, out, *extra, adapter=None):
    code = main(
        [
            "compare",
            "--adapter",
            str(adapter or setup.adapter),
            "--data",
            str(setup.data),
            "--num-samples",
            "24",
            "--bootstrap",
            "0",
            "--output",
            str(out),
            "--quiet",
            *extra,
        ]
    )
    assert code == 0
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


def _hsic_cka(x, y):
    n = x.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    k, l_ = x @ x.T, y @ y.T
    return np.trace(k @ h @ l_ @ h) / np.sqrt(np.trace(k @ h @ k @ h) * np.trace(l_ @ h @ l_ @ h))


def _layers_one_at_a_time(model, tokenizer, texts, first_token: bool) -> np.ndarray:
    """(L + 1, n, d): hidden_states[l] of each text alone (no padding), at [CLS] or at its last token."""
    rows = []
    with torch.no_grad():
        for text in texts:
            ids = tokenizer(text, truncation=True, max_length=256)["input_ids"]
            states = model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states
            rows.append(np.stack([h[0, 0 if first_token else -1].double().numpy() for h in states]))
    return np.stack(rows, axis=1)


def _eval_texts(setup, report) -> list[str]:
    with open(setup.data, encoding="utf-8") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)]
    return [texts[i] for i in report["data"]["indices"]]


@pytest.mark.parametrize("arch", ["qwen2", "llama", "bert"])
def test_layer_cka_and_cosine_equal_a_direct_computation(arch, request, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    setup = request.getfixturevalue(f"{arch}_setup")
    report = _compare(setup, tmp_path / "out")
    layers = report["analysis"]["layers"]
    tokenizer = AutoTokenizer.from_pretrained(str(setup.base))
    texts = _eval_texts(setup, report)
    base = AutoModelForSequenceClassification.from_pretrained(str(setup.base), num_labels=setup.num_labels).eval()
    frozen = _layers_one_at_a_time(base, tokenizer, texts, first_token=arch == "bert")
    lora = PeftModel.from_pretrained(base, str(setup.adapter)).eval()  # unmerged: independent of lorafair's merge
    tuned = _layers_one_at_a_time(lora, tokenizer, texts, first_token=arch == "bert")
    assert [r["layer"] for r in layers] == list(range(frozen.shape[0]))
    for record, a, b in zip(layers, frozen, tuned):
        cosine = np.mean([x @ y / np.linalg.norm(x) / np.linalg.norm(y) for x, y in zip(a, b)])
        assert record["cosine"] == pytest.approx(cosine, abs=1e-4)
        if record["layer"] == 0 and arch == "bert":
            assert record["cka"] is None  # every [CLS] embedding is the same vector: no variance, CKA undefined
        elif record["layer"] == 0:
            assert record["cka"] == 1.0  # embeddings: LoRA on attention/MLP cannot touch them
        else:
            assert record["cka"] == pytest.approx(_hsic_cka(a, b), abs=1e-4)
    assert layers[-1]["cka"] < 0.999  # the random LoRA really moves the top features
    for record in layers:
        assert all(0.0 <= acc <= 1.0 for acc in record["probe_accuracy"].values())
    assert report["analysis"]["pooling"] == ("first" if arch == "bert" else "last")


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_last_layer_a_probe_equals_a1(arch, request, tmp_path):
    setup = request.getfixturevalue(f"{arch}_setup")
    report = _compare(setup, tmp_path / "out")
    a1 = report["variants"]["A1"]["metrics"]["accuracy"]["value"]
    assert report["analysis"]["layers"][-1]["probe_accuracy"]["A"] == a1
    (probes,) = [n for n in report["analysis"]["notes"] if n["kind"] == "analysis_probes"]
    assert probes["examples"] == probes["probe_examples"]  # all of A1's probe examples: the last A probe is A1
    assert "all of A1's probe examples" in words.analysis_note_sentence(probes, "en")


def test_zero_lora_gives_cka_one_everywhere_and_zero_ratios(llama_setup, tmp_path):
    report = _compare(llama_setup, tmp_path / "out", adapter=llama_setup.zero_adapter)
    block = report["analysis"]
    assert [r["cka"] for r in block["layers"]] == [1.0] * len(block["layers"])
    assert [r["cosine"] for r in block["layers"]] == [1.0] * len(block["layers"])
    assert all(r["probe_accuracy"]["A"] == r["probe_accuracy"]["B"] for r in block["layers"])
    assert len(block["weights"]) == 2 * 4  # 2 layers x q/k/v/o
    assert all(w["delta_norm_ratio"] == 0.0 and w["intruders"] == 0 for w in block["weights"])
    assert block["summary"]["first_layer_cka_below"]["layer"] is None


def test_lora_on_the_top_layer_only_leaves_lower_layers_at_cka_one(llama_setup, tmp_path):
    adapter = make_top_layer_adapter(llama_setup.base, tmp_path / "top-adapter")
    report = _compare(llama_setup, tmp_path / "out", adapter=adapter)
    layers = report["analysis"]["layers"]
    assert [r["cka"] for r in layers[:2]] == [1.0, 1.0]  # hidden_states[0], [1]: below the adapted layer 1
    assert layers[2]["cka"] < 0.999
    assert report["analysis"]["summary"]["first_layer_cka_below"]["layer"] == 2
    assert sorted({w["layer"] for w in report["analysis"]["weights"]}) == [1]


def test_no_analysis_flag_and_renderers(llama_setup, tmp_path, capsys):
    off = _compare(llama_setup, tmp_path / "off", "--no-analysis")
    assert "analysis" not in off
    report = _compare(llama_setup, tmp_path / "on", "--lang", "zh")
    html = (tmp_path / "on" / "report.html").read_text(encoding="utf-8")
    assert "LoRA 在哪里改变了特征" in html
    images = [base64.b64decode(data, validate=True) for data in re.findall(r'base64,([A-Za-z0-9+/=]+)"', html)]
    assert len(images) == 4 + 3  # forest, ROC, reliability, confusion; similarity, probes, heatmap
    for png in images:
        image = mpimg.imread(io.BytesIO(png), format="png")
        assert image.shape[0] > 100 and image.shape[1] > 100
        assert float(image[..., :3].std()) > 0.02  # something is drawn on it
    markdown = (tmp_path / "on" / "report.md").read_text(encoding="utf-8")
    assert "## LoRA 在哪里改变了特征" in markdown
    capsys.readouterr()
    assert main(["report", str(tmp_path / "on")]) == 0
    console = capsys.readouterr().out
    top = report["analysis"]["summary"]["top_modules_by_delta_norm_ratio"][0]["module"]
    assert "LoRA 在哪里改变了特征" in console and top in console
