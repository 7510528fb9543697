"""Per-layer pooled states captured by hooks equal transformers' hidden_states, one example at a time."""

from __future__ import annotations

import weakref

import numpy as np
import pytest
import torch
import transformers
from tiny_archs import ARCHS, TEXTS, build_base

from lorafair.evaluation import analysis_pass as analysis_run
from lorafair.models import layer_states
from lorafair.models.inference import length_sorted_batches, run_pass, tokenize

HOOKED = {"qwen2", "llama", "gpt2", "bert", "distilbert", "roberta", "deberta-v2"}  # the common ones must use hooks


def _reference(model, tokenizer, pool: str) -> np.ndarray:
    """(L + 1, n, d): output_hidden_states of each example alone (no padding), at its last or first token."""
    rows = []
    with torch.inference_mode():
        for text in TEXTS:
            states = model(**tokenizer(text, return_tensors="pt"), output_hidden_states=True).hidden_states
            rows.append(np.stack([h[0, -1 if pool == "last" else 0].numpy() for h in states]))
    return np.stack(rows, axis=1)


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_layer_states_equal_hidden_states_of_each_example_alone(arch, tmp_path):
    base = build_base(arch, tmp_path / "base")
    model = getattr(transformers, ARCHS[arch][1]).from_pretrained(str(base)).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(base))
    pool = analysis_run.layer_pooling(model)
    encoded = tokenize(tokenizer, TEXTS, max_length=32)
    result = run_pass(
        model,
        encoded,
        length_sorted_batches(encoded.lengths, 4),  # padded batches: pooling must find each row's position
        pad_token_id=tokenizer.pad_token_id,
        padding_side=tokenizer.padding_side,
        quiet=True,
        layer_pool=pool,
    )
    np.testing.assert_allclose(result.layers, _reference(model, tokenizer, pool), atol=1e-5)
    if arch in HOOKED:
        assert layer_states._CHECKED[model] is True  # pooled as the layers ran, not from hidden_states


def test_hooks_that_disagree_with_hidden_states_fall_back_to_them(tmp_path, monkeypatch):
    base = build_base("llama", tmp_path / "base")
    model = transformers.AutoModelForSequenceClassification.from_pretrained(str(base)).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(base))
    monkeypatch.setattr(layer_states, "_CHECKED", weakref.WeakKeyDictionary())
    monkeypatch.setattr(layer_states.LayerPooler, "_after_layers", lambda self, *a: None)  # final norm unseen
    encoded = tokenize(tokenizer, TEXTS, max_length=32)
    result = run_pass(
        model,
        encoded,
        length_sorted_batches(encoded.lengths, 4),
        pad_token_id=tokenizer.pad_token_id,
        quiet=True,
        layer_pool="last",
    )
    assert layer_states._CHECKED[model] is False
    np.testing.assert_allclose(result.layers, _reference(model, tokenizer, "last"), atol=1e-5)
