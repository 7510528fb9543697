"""The feature cache's weights key: built from the base's files (no parameter data read), installed tensors from memory."""

from __future__ import annotations

import pytest

from lorafair.models import weights_fingerprint as wf


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, pad_token_id=0
    )
    folder = tmp_path_factory.mktemp("fingerprint-base")
    LlamaForSequenceClassification(config).save_pretrained(str(folder))
    return folder, config


def _load(folder):
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(str(folder))


def test_a_folder_base_is_keyed_without_reading_any_parameter(tiny_base, tmp_path):
    import torch
    from transformers import LlamaForSequenceClassification

    folder, config = tiny_base
    with torch.device("meta"):  # no data at all: reading a parameter would raise
        ghost = LlamaForSequenceClassification(config)
    memo = tmp_path / "memo.json"
    key = wf.of_base(ghost, ["score"], folder, {"score.weight": None}, memo)
    assert key == wf.of_base(_load(folder), ["score"], folder, {}, memo)  # the head is not part of it
    assert memo.is_file()


def test_a_changed_weight_file_or_installed_trunk_tensor_changes_the_key(tiny_base, tmp_path):
    import torch

    folder, _ = tiny_base
    model = _load(folder)
    memo = tmp_path / "memo.json"
    installed = {"model.embed_tokens.weight": None}  # an adapter that saved the embeddings
    key = wf.of_base(model, ["score"], folder, installed, memo)
    with torch.no_grad():
        model.model.embed_tokens.weight[1, 0] += 1e-3
    assert wf.of_base(model, ["score"], folder, installed, memo) != key
    changed = tmp_path / "changed"
    reloaded = _load(folder)
    with torch.no_grad():
        reloaded.model.layers[0].mlp.down_proj.weight[0, 0] += 1e-3
    reloaded.save_pretrained(str(changed))
    assert wf.of_base(reloaded, ["score"], changed, {}, memo) != wf.of_base(_load(folder), ["score"], folder, {}, memo)


def test_without_weight_files_the_in_memory_fingerprint_is_used(tiny_base, tmp_path):
    import torch

    model = _load(tiny_base[0])
    key = wf.of_base(model, ["score"], tmp_path, {}, None)  # an empty folder (e.g. a hub id resolved elsewhere)
    assert key == wf.in_memory(model, ["score"])
    with torch.no_grad():
        model.score.weight.add_(1.0)  # the head stack is left out
    assert wf.in_memory(model, ["score"]) == key
    with torch.no_grad():
        model.model.norm.weight.add_(1.0)
    assert wf.in_memory(model, ["score"]) != key


def test_moments_accumulate_over_chunks_exactly(monkeypatch):
    import numpy as np
    import torch

    monkeypatch.setattr(wf, "CHUNK", 7)
    values = torch.randn(10, 9)
    total, squares = wf.moments(values)
    reference = values.double().numpy()
    assert total == pytest.approx(float(np.sum(reference)), abs=1e-12)
    assert squares == pytest.approx(float(np.sum(reference**2)), rel=1e-12)
