"""The shared trunk: B run from the frozen pass's layer-k output equals the full LoRA model.

Each tiny model has 4 layers and a plain-peft adapter on layers 2-3 only (`layers_to_transform`). The
reference is independent of lorafair's passes: the unmerged PeftModel, one example at a time, unpadded.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers
from tiny_archs import ARCHS, DECODERS, TEXTS

from lorafair.models import modeling, trunk
from lorafair.models.inference import length_sorted_batches, run_pass, tokenize

from conftest import make_top_layer_adapter, word_tokenizer

FOUR = {"num_hidden_layers": 4, "n_layer": 4, "n_layers": 4}
CASES = ["qwen2", "llama", "gpt2", "bert", "distilbert", "deberta-v2"]


def _layer_key(config_kwargs: dict) -> dict:
    return {k: 4 for k in FOUR if k in config_kwargs}


def _build(arch: str, tmp_path, padding_side: str = "right"):
    from peft import LoraConfig, TaskType, get_peft_model

    config_cls, model_cls, kwargs, targets, *_ = ARCHS[arch]
    tokenizer = word_tokenizer("decoder" if arch in DECODERS else "bert")
    tokenizer.padding_side = padding_side
    config = getattr(transformers, config_cls)(
        vocab_size=len(tokenizer),
        num_labels=2,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        eos_token_id=None,
        **{**kwargs, **_layer_key(kwargs)},
    )
    torch.manual_seed(0)
    base = getattr(transformers, model_cls)(config).eval()
    base.save_pretrained(str(tmp_path / "base"))
    tokenizer.save_pretrained(str(tmp_path / "base"))
    torch.manual_seed(1)
    peft_model = get_peft_model(
        getattr(transformers, model_cls).from_pretrained(str(tmp_path / "base")),
        LoraConfig(task_type=TaskType.SEQ_CLS, r=4, lora_alpha=8, target_modules=targets, layers_to_transform=[2, 3]),
    )
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.3)
    peft_model.peft_config["default"].base_model_name_or_path = str(tmp_path / "base")
    peft_model.save_pretrained(str(tmp_path / "adapter"))
    return tokenizer, tmp_path / "base", tmp_path / "adapter"


def _one_at_a_time(adapter_dir, model_cls, tokenizer) -> np.ndarray:
    from peft import PeftModel

    model = getattr(transformers, model_cls).from_pretrained(str(adapter_dir.parent / "base"))
    peft_model = PeftModel.from_pretrained(model, str(adapter_dir)).eval()
    with torch.inference_mode():
        return np.stack(
            [peft_model(**tokenizer(text, return_tensors="pt")).logits[0].float().numpy() for text in TEXTS]
        )


@pytest.mark.parametrize("arch,padding_side", [(a, "right") for a in CASES] + [("qwen2", "left"), ("llama", "left")])
def test_shared_trunk_equals_the_full_lora_model(arch, padding_side, tmp_path):
    tokenizer, base_dir, adapter_dir = _build(arch, tmp_path, padding_side)
    adapter = modeling.read_adapter(adapter_dir)
    model = getattr(transformers, ARCHS[arch][1]).from_pretrained(str(base_dir)).eval()
    plan = trunk.plan_trunk(model, adapter.lora)
    assert (plan.shared, plan.total) == (2, 4)

    encoded = tokenize(tokenizer, TEXTS, max_length=32)
    batches = length_sorted_batches(encoded.lengths, 4)  # mixed lengths: padding inside every batch
    kw = dict(pad_token_id=tokenizer.pad_token_id, padding_side=padding_side, quiet=True)
    states = trunk.TrunkStates(plan)
    modeling.install_head(model, adapter)
    run_pass(model, encoded, batches, trunk=states.recorder(model), **kw)
    assert sorted(states.rows) == list(range(len(TEXTS)))

    merged = modeling.merge_lora(model, adapter)
    full = run_pass(merged, encoded, batches, **kw)
    shared = run_pass(merged, encoded, batches, trunk=states.replayer(merged), **kw)
    reference = _one_at_a_time(adapter_dir, ARCHS[arch][1], tokenizer)
    np.testing.assert_allclose(shared.logits, full.logits, atol=1e-5, rtol=0)
    np.testing.assert_allclose(shared.logits, reference, atol=1e-5, rtol=0)
    assert np.abs(reference - _frozen_logits(base_dir, arch, adapter, encoded, batches, kw)).max() > 1e-4
    # the layers really were skipped: their forward is restored afterwards, and a replay without records fails
    assert "forward" not in vars(merged.get_submodule(plan.path)[0])
    with pytest.raises(RuntimeError, match="no recorded trunk output"):
        run_pass(merged, encoded, batches, trunk=trunk.TrunkStates(plan).replayer(merged), **kw)


def _frozen_logits(base_dir, arch, adapter, encoded, batches, kw) -> np.ndarray:
    """A: the LoRA changes the logits, so equality above is not the frozen model agreeing with itself."""
    model = getattr(transformers, ARCHS[arch][1]).from_pretrained(str(base_dir)).eval()
    modeling.install_head(model, adapter)
    return run_pass(model, encoded, batches, **kw).logits


def test_replay_of_a_subset_maps_to_the_recorded_examples(tmp_path):
    """The analysis replays a subset of the probe set: index_map points each row at its recorded example."""
    tokenizer, base_dir, adapter_dir = _build("qwen2", tmp_path)
    adapter = modeling.read_adapter(adapter_dir)
    model = transformers.Qwen2ForSequenceClassification.from_pretrained(str(base_dir)).eval()
    modeling.install_head(model, adapter)
    plan = trunk.plan_trunk(model, adapter.lora)
    kw = dict(pad_token_id=tokenizer.pad_token_id, quiet=True)
    encoded = tokenize(tokenizer, TEXTS, max_length=32)
    keep = np.array([1, 4, 5])
    states = trunk.TrunkStates(plan)
    run_pass(model, encoded, length_sorted_batches(encoded.lengths, 4), trunk=states.recorder(model, keep), **kw)
    assert sorted(states.rows) == [1, 4, 5]  # only what will be replayed is kept
    merged = modeling.merge_lora(model, adapter)
    subset = tokenize(tokenizer, [TEXTS[i] for i in keep], max_length=32)
    sub_batches = length_sorted_batches(subset.lengths, 2)
    shared = run_pass(merged, subset, sub_batches, trunk=states.replayer(merged, keep), **kw)
    full = run_pass(merged, subset, sub_batches, **kw)
    np.testing.assert_allclose(shared.logits, full.logits, atol=1e-5, rtol=0)


def test_plan_trunk_shares_nothing_when_lora_touches_layer_0_or_the_embeddings(tmp_path):
    _, base_dir, adapter_dir = _build("llama", tmp_path)
    model = transformers.LlamaForSequenceClassification.from_pretrained(str(base_dir))
    lora = modeling.read_adapter(adapter_dir).lora
    assert trunk.plan_trunk(model, lora).path == "model.layers"
    low = {**lora, "model.layers.0.self_attn.q_proj.lora_A": torch.zeros(1)}
    assert trunk.plan_trunk(model, low).shared == 0
    embedding = {**lora, "model.embed_tokens.lora_embedding_A": torch.zeros(1)}
    plan = trunk.plan_trunk(model, embedding)
    assert plan.shared == 0 and plan.reason == "outside" and plan.detail == "model.embed_tokens"
    assert trunk.plan_trunk(model, lora, enabled=False).shared == 0
    assert trunk.estimated_bytes(np.array([3, 5]), 32) == 8 * 32 * 4


def test_compare_with_shared_trunk_reports_what_the_full_pass_gives(llama_setup, tmp_path):
    import csv
    import json

    from lorafair.cli import main

    adapter = make_top_layer_adapter(llama_setup.base, tmp_path / "adapter")
    reports, probs = {}, {}
    for name, extra in (("shared", []), ("full", ["--no-shared-trunk"])):
        out = tmp_path / name
        argv = ["compare", "--adapter", str(adapter), "--data", str(llama_setup.data), "--num-samples", "24"]
        assert main([*argv, "--bootstrap", "0", "--output", str(out), "--quiet", *extra]) == 0
        reports[name] = json.loads((out / "report.json").read_text(encoding="utf-8"))
        with open(out / "predictions.csv", encoding="utf-8") as handle:
            probs[name] = np.array(
                [[float(v) for k, v in row.items() if k.startswith("prob_B")] for row in csv.DictReader(handle)]
            )
    shared = [p.get("shared_layers") for p in reports["shared"]["forward_passes"] if p["kind"] == "lora_eval"]
    assert shared == [1], shared  # the evaluation set's LoRA pass ran layer 1 only
    assert all("shared_layers" not in p or p["shared_layers"] == 0 for p in reports["full"]["forward_passes"])
    assert probs["shared"].size and np.abs(probs["shared"] - probs["full"]).max() < 1e-6
    assert (
        reports["shared"]["fidelity"]["merged_vs_unmerged_max_abs_logit_diff"] < 1e-5
    )  # against the unmerged PeftModel
    cka = [[r["cka"] for r in reports[name]["analysis"]["layers"]] for name in ("shared", "full")]
    np.testing.assert_allclose(cka[0], cka[1], atol=1e-6)
    probe = [[r["probe_accuracy"]["B"] for r in reports[name]["analysis"]["layers"]] for name in ("shared", "full")]
    assert probe[0] == probe[1]
