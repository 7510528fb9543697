"""Every head layout peft saves, on tiny random models of each architecture lorafair supports.

For each architecture: a plain-peft SEQ_CLS adapter whose LoRA B and *all* saved head tensors are
perturbed; A must equal the base with every saved tensor loaded by plain `load_state_dict`, B must
equal the unmerged `PeftModel`, the features must be what the head consumes (computed by hand per
architecture), one example at a time.
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from tiny_archs import ARCHS, TEXTS, build_adapter, build_base

from lorafair.core.errors import LorafairError
from lorafair.models import heads, inference, modeling


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    cache = {}

    def get(arch):
        if arch not in cache:
            root = tmp_path_factory.mktemp(arch)
            base = build_base(arch, root / "base")
            cache[arch] = (base, build_adapter(arch, base, root / "adapter"))
        return cache[arch]

    return get


def _lorafair_a(base, adapter_dir):
    adapter = modeling.read_adapter(adapter_dir)
    tokenizer = modeling.load_tokenizer(adapter_dir, base)
    model = modeling.load_base_classifier(base, adapter.num_labels, adapter=adapter)
    modeling.ensure_pad_token(tokenizer, model)
    sha = modeling.install_head(model, adapter)
    encoded = inference.tokenize(tokenizer, TEXTS, max_length=32)
    batches = inference.length_sorted_batches(encoded.lengths, 4)
    result = inference.run_pass(
        model,
        encoded,
        batches,
        pad_token_id=tokenizer.pad_token_id,
        head=modeling.head_stack(model, adapter),
        quiet=True,
    )
    return adapter, model, tokenizer, encoded, result, sha


def _plain_base_with_saved_tensors(base, adapter_dir):
    """Independent A: the base plus every non-LoRA tensor of the file, through load_state_dict."""
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(str(base)).eval()
    saved = {
        k.removeprefix("base_model.model."): v
        for k, v in load_file(str(adapter_dir / "adapter_model.safetensors")).items()
        if "lora_" not in k
    }
    _, unexpected = model.load_state_dict(saved, strict=False)
    assert not unexpected  # every saved tensor found its place
    return model, saved


@pytest.mark.parametrize("arch", list(ARCHS))
def test_a_b_and_features_for_every_architecture(arch, built):
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    base, adapter_dir = built(arch)
    adapter, model, tokenizer, encoded, result, sha = _lorafair_a(base, adapter_dir)
    reference, saved = _plain_base_with_saved_tensors(base, adapter_dir)
    assert sorted(adapter.head) == sorted(saved)
    assert heads.in_model_order(model, adapter.head_modules) == ARCHS[arch][4]
    assert sha == heads.tensor_sha256(saved)  # the hash covers every saved tensor, and only those
    with torch.no_grad():
        one_by_one = [torch.tensor([ids]) for ids in encoded.input_ids]  # no padding at all
        a_expected = torch.cat([reference(input_ids=ids).logits for ids in one_by_one])
        feats_expected = torch.stack([ARCHS[arch][5](reference, ids) for ids in one_by_one])
    torch.testing.assert_close(torch.from_numpy(result.logits), a_expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(torch.from_numpy(result.features), feats_expected, atol=1e-4, rtol=1e-4)
    stack = heads.stack_modules(model, adapter.head_modules)
    heads.check_features_reproduce_head(model, stack, result.features, result.logits, result.feature_pooling)

    merged = modeling.merge_lora(model, adapter)
    assert heads.tensor_sha256(modeling.head_tensors(merged, adapter)) == sha  # B runs exactly A's head
    ours_b = inference.run_pass(
        merged,
        encoded,
        inference.length_sorted_batches(encoded.lengths, 4),
        pad_token_id=tokenizer.pad_token_id,
        quiet=True,
    ).logits
    peft_model = PeftModel.from_pretrained(
        AutoModelForSequenceClassification.from_pretrained(str(base)), str(adapter_dir)
    ).eval()
    with torch.no_grad():
        b_expected = torch.cat([peft_model(input_ids=ids).logits for ids in one_by_one])
    torch.testing.assert_close(torch.from_numpy(ours_b), b_expected, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(b_expected, a_expected, atol=1e-3)  # the LoRA matters: B == A would be vacuous


@pytest.mark.parametrize("arch", ["distilbert", "roberta", "gpt2"])
def test_random_head_is_the_whole_stack_freshly_initialised(arch, built):
    base, adapter_dir = built(arch)
    adapter, model, _, _, result, _ = _lorafair_a(base, adapter_dir)
    stack = heads.stack_modules(model, adapter.head_modules)
    fresh = modeling.random_head(model, adapter, seed=3)
    assert len(fresh) == len(stack) == len(ARCHS[arch][4])
    again = modeling.random_head(model, adapter, seed=3)
    other = modeling.random_head(model, adapter, seed=4)
    for new, same, diff, name in zip(fresh, again, other, stack):
        installed = dict(model.get_submodule(name).named_parameters())
        for pname, param in new.named_parameters():
            torch.testing.assert_close(param, dict(same.named_parameters())[pname])  # seeded
            if param.dim() == 2:  # _init_weights: normal(0, initializer_range), not the trained head
                assert not torch.allclose(param, dict(diff.named_parameters())[pname])
                assert not torch.allclose(param, installed[pname].float())
                assert param.std().item() == pytest.approx(model.config.initializer_range, rel=0.35)
            else:
                assert torch.all(param == 0)  # biases start at zero
    with torch.no_grad():
        logits = heads.apply_head(
            model.config.model_type, fresh, torch.from_numpy(result.features), result.feature_pooling
        )
    assert logits.shape == (len(TEXTS), 2)


def test_saved_tensor_that_does_not_fit_is_one_line_naming_it(built, tmp_path):
    import shutil

    from safetensors.torch import save_file

    base, adapter_dir = built("distilbert")
    broken = tmp_path / "broken"
    shutil.copytree(adapter_dir, broken)
    tensors = load_file(str(broken / "adapter_model.safetensors"))
    tensors["base_model.model.pre_classifier.weight"] = torch.zeros(16, 32)
    save_file(tensors, str(broken / "adapter_model.safetensors"))
    adapter = modeling.read_adapter(broken)
    with pytest.raises(LorafairError, match=r"'pre_classifier.weight' has shape \(16, 32\)") as info:
        modeling.check_adapter_fits(base, adapter)
    assert "\n" not in str(info.value)

    del tensors["base_model.model.pre_classifier.weight"]  # a partial head: bias saved, weight not
    save_file(tensors, str(broken / "adapter_model.safetensors"))
    with pytest.raises(LorafairError, match="without 'pre_classifier.weight'"):
        modeling.check_adapter_fits(base, modeling.read_adapter(broken))


def test_lora_for_another_base_names_the_tensor(built):
    base, _ = built("llama")
    _, gpt2_adapter = built("gpt2")
    with pytest.raises(LorafairError, match="no linear module 'transformer.h.0.attn.c_attn'"):
        modeling.check_adapter_fits(base, modeling.read_adapter(gpt2_adapter))


def test_base_weights_the_adapter_did_not_save_are_refused(tmp_path):
    """A DeBERTa backbone checkpoint has no `pooler`: it is random at load and peft did not save it."""
    import transformers

    built_dir = build_base("deberta-v2", tmp_path / "full")
    backbone = transformers.DebertaV2Model.from_pretrained(str(built_dir))  # the checkpoint a user starts from
    backbone.save_pretrained(str(tmp_path / "backbone"))
    transformers.AutoTokenizer.from_pretrained(str(built_dir)).save_pretrained(str(tmp_path / "backbone"))
    adapter = modeling.read_adapter(build_adapter("deberta-v2", tmp_path / "backbone", tmp_path / "adapter"))
    with pytest.raises(LorafairError, match=r"no weights for 'pooler\.dense\.(bias|weight)'.*modules_to_save"):
        modeling.load_base_classifier(tmp_path / "backbone", 2, adapter=adapter)
    modeling.load_base_classifier(built_dir, 2, adapter=adapter)  # the full checkpoint has its pooler: fine


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_zero_head_init_zeroes_only_the_output_layer(arch, built):
    from transformers import AutoModelForSequenceClassification

    base, _ = built(arch)
    model = AutoModelForSequenceClassification.from_pretrained(str(base)).eval()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    output = heads.zero_output_layer(model)
    after = dict(model.named_parameters())
    zeroed = {n for n in after if n.startswith(output + ".")}
    assert zeroed and all(not after[n].any() for n in zeroed)
    # everything else, hidden head layers included (RoBERTa's classifier.dense, DistilBERT's pre_classifier)
    assert all(torch.equal(after[n], before[n]) for n in after if n not in zeroed)
    ids = torch.tensor([[3, 4, 5, 6]])
    with torch.no_grad():
        assert not model(input_ids=ids).logits.any()  # every logit starts at exactly 0


def test_zero_head_init_without_a_known_output_layer_is_a_user_error():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    with pytest.raises(LorafairError, match="--head-init zero: no known output layer"):
        heads.zero_output_layer(model)
