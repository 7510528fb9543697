"""Tiny random classifiers of every architecture lorafair supports, with adapters saved by plain peft.

Used by test_heads.py (one per architecture) and test_validation.py (the CLI on a DistilBERT, whose head
is two saved modules). Word-level tokenizers from conftest; nothing is downloaded.
"""

from __future__ import annotations

import torch

from conftest import word_tokenizer

TEXTS = [
    "the movie was good",
    "bad plot",
    "a very nice and lovely story it was",
    "awful",
    "the acting was quite dull",
    "film and story and plot were superb",
]
DEC = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
ENC = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=64)


def _decoder_last_token(model, ids):
    return getattr(model, model.base_model_prefix)(input_ids=ids).last_hidden_state[0, -1]


def _first_token(model, ids):
    return getattr(model, model.base_model_prefix)(input_ids=ids).last_hidden_state[0, 0]


# arch: (config class, model class, config kwargs, LoRA targets, saved head modules, features by hand)
ARCHS = {
    "qwen2": (
        "Qwen2Config",
        "Qwen2ForSequenceClassification",
        DEC,
        ["q_proj", "v_proj"],
        ["score"],
        _decoder_last_token,
    ),
    "qwen3": (
        "Qwen3Config",
        "Qwen3ForSequenceClassification",
        {**DEC, "head_dim": 8},
        ["q_proj", "v_proj"],
        ["score"],
        _decoder_last_token,
    ),
    "llama": (
        "LlamaConfig",
        "LlamaForSequenceClassification",
        DEC,
        ["q_proj", "o_proj"],
        ["score"],
        _decoder_last_token,
    ),
    "mistral": (
        "MistralConfig",
        "MistralForSequenceClassification",
        DEC,
        ["q_proj", "v_proj"],
        ["score"],
        _decoder_last_token,
    ),
    "gemma": (
        "GemmaConfig",
        "GemmaForSequenceClassification",
        {**DEC, "head_dim": 8},
        ["q_proj", "v_proj"],
        ["score"],
        _decoder_last_token,
    ),
    "gemma2": (
        "Gemma2Config",
        "Gemma2ForSequenceClassification",
        {**DEC, "head_dim": 8},
        ["q_proj", "v_proj"],
        ["score"],
        _decoder_last_token,
    ),
    "phi3": (
        "Phi3Config",
        "Phi3ForSequenceClassification",
        DEC,
        ["qkv_proj", "o_proj"],
        ["score"],
        _decoder_last_token,
    ),
    "gpt2": (
        "GPT2Config",
        "GPT2ForSequenceClassification",
        dict(n_embd=32, n_layer=2, n_head=4, n_positions=64),
        ["c_attn"],
        ["score"],
        _decoder_last_token,
    ),  # c_attn is a Conv1D
    "bert": (
        "BertConfig",
        "BertForSequenceClassification",
        ENC,
        ["query", "value"],
        ["classifier"],
        lambda m, ids: m.bert(input_ids=ids).pooler_output[0],
    ),
    "distilbert": (
        "DistilBertConfig",
        "DistilBertForSequenceClassification",
        dict(dim=32, hidden_dim=64, n_layers=2, n_heads=4, max_position_embeddings=64),
        ["q_lin", "v_lin"],
        ["pre_classifier", "classifier"],
        _first_token,
    ),
    "roberta": (
        "RobertaConfig",
        "RobertaForSequenceClassification",
        ENC,
        ["query", "value"],
        ["classifier"],
        _first_token,
    ),
    "xlm-roberta": (
        "XLMRobertaConfig",
        "XLMRobertaForSequenceClassification",
        ENC,
        ["query", "value"],
        ["classifier"],
        _first_token,
    ),
    "electra": (
        "ElectraConfig",
        "ElectraForSequenceClassification",
        {**ENC, "embedding_size": 16},
        ["query", "value"],
        ["classifier"],
        _first_token,
    ),
    "deberta-v2": (
        "DebertaV2Config",
        "DebertaV2ForSequenceClassification",
        ENC,
        ["query_proj", "value_proj"],
        ["classifier"],
        lambda m, ids: m.pooler(m.deberta(input_ids=ids).last_hidden_state)[0],
    ),
    "modernbert": (
        "ModernBertConfig",
        "ModernBertForSequenceClassification",
        ENC,
        ["Wqkv", "Wo"],
        ["classifier"],
        lambda m, ids: m.head(m.model(input_ids=ids).last_hidden_state[:, 0])[0],
    ),
}
DECODERS = {"qwen2", "qwen3", "llama", "mistral", "gemma", "gemma2", "phi3", "gpt2"}


def build_base(arch: str, folder, num_labels: int = 2):
    """A tiny random classifier of `arch` with a word-level tokenizer, saved like a hub checkpoint."""
    import transformers

    config_cls, model_cls, kwargs, *_ = ARCHS[arch]
    tokenizer = word_tokenizer("decoder" if arch in DECODERS else "bert")
    ids = dict(pad_token_id=tokenizer.pad_token_id, bos_token_id=None, eos_token_id=None)
    if arch == "modernbert":
        ids.update(cls_token_id=tokenizer.cls_token_id, sep_token_id=tokenizer.sep_token_id)
    config = getattr(transformers, config_cls)(vocab_size=len(tokenizer), num_labels=num_labels, **ids, **kwargs)
    torch.manual_seed(0)
    model = getattr(transformers, model_cls)(config)
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def build_adapter(arch: str, base, folder, *, seed: int = 1):
    """Plain peft: random LoRA B and every saved head tensor perturbed, so A != base head and B != A."""
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(seed)
    model = get_peft_model(
        AutoModelForSequenceClassification.from_pretrained(str(base)),
        LoraConfig(task_type=TaskType.SEQ_CLS, r=4, lora_alpha=8, target_modules=ARCHS[arch][3]),
    )
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "modules_to_save" in name or "lora_B" in name:
                param.add_(torch.randn_like(param) * 0.3)
    model.peft_config["default"].base_model_name_or_path = str(base)
    model.save_pretrained(str(folder))
    return folder
