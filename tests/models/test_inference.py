"""Forward passes (models/inference.py) on tiny random Qwen2 / Llama / BERT classifiers, against independent computation.

A's logits equal the backbone's features times the saved head, B's equal a plain `PeftModel`, and a batched,
padded pass equals one example at a time, on either padding side.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from safetensors import safe_open

from lorafair.models import inference, modeling


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
        head=model.get_submodule(adapter.head_name),
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
