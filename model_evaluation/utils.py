"""The seed's helpers, now backed by lorafair (one base load, head copied from the adapter's tensors).

from model_evaluation.utils import load_base_model_with_lora_classifier
model, tokenizer = load_base_model_with_lora_classifier("Qwen/Qwen2.5-1.5B", "outputs/lora_adapter")
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, List, Tuple

from lorafair.core import atomic
from lorafair.core.errors import LorafairError
from lorafair.models import modeling


def get_device(device: str = "auto") -> str:
    import torch

    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def get_torch_dtype(device: str | None = None):
    """bf16 on a CUDA device that supports it, fp32 otherwise (CPU kernels are fastest and exact in fp32)."""
    import torch

    device = device or get_device()
    if str(device).startswith("cuda") and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def load_base_model_with_lora_classifier(
    base_model_name: str = "Qwen/Qwen2.5-1.5B",
    lora_path: str | None = None,
    device: str = "auto",
) -> Tuple[Any, Any]:
    """Frozen base model + the classification head trained with LoRA (the seed's `qwen_base_frozen`).

    The head tensors are read straight from `adapter_model.safetensors` and copied into a plain base
    model: the backbone is untouched, the head is byte-identical to the LoRA model's. Eval mode, no grad.
    """
    if not lora_path:
        raise LorafairError("lora_path is required: the trained head is read from the LoRA adapter folder")
    adapter = modeling.read_adapter(lora_path)
    base_model_name = _resolve_model(base_model_name or adapter.base_model)
    device = get_device(device)
    tokenizer = modeling.load_tokenizer(adapter.path, base_model_name)
    model = modeling.load_base_classifier(
        base_model_name,
        adapter.num_labels,
        dtype=get_torch_dtype(device),
        device=device,
        label_names=adapter.label_names,
    )
    modeling.ensure_pad_token(tokenizer, model)
    modeling.install_head(model, adapter)
    return model, tokenizer


def _resolve_model(name: str) -> str:
    from lorafair.assets import builtin as assets

    return assets.resolve_model(name)


def get_predictions_with_confidence(model, tokenizer, texts, batch_size: int = 16, max_length: int = 256):
    """Predicted label ids and the probability of each prediction, batched the lorafair way."""
    from lorafair.models.inference import length_sorted_batches, run_pass, softmax, tokenize

    encoded = tokenize(tokenizer, texts, max_length=max_length)
    result = run_pass(
        model,
        encoded,
        length_sorted_batches(encoded.lengths, batch_size),
        pad_token_id=tokenizer.pad_token_id,
        padding_side=tokenizer.padding_side,
        device=next(model.parameters()).device,
        quiet=True,
    )
    probs = softmax(result.logits)
    predictions = probs.argmax(axis=1)
    return predictions.tolist(), probs[range(len(predictions)), predictions].tolist()


def load_evaluation_data(
    lora_path: str, data: str | None = None, num_samples: int = 0, seed: int = 0, encoding: str = "auto"
) -> Tuple[List[str], List[int]]:
    """Texts and label ids to evaluate the adapter at `lora_path` on.

    `data` (a file, folder or builtin:NAME) if given, else the adapter's own recorded evaluation data (its
    test split or held-out part, never its training rows); `num_samples` > 0 takes a seeded stratified sample.
    `encoding` is that of `data` (CSV/TSV/JSON/JSONL); the adapter's own data is read as `lorafair train` recorded.
    """
    from lorafair.assets import builtin as assets
    from lorafair.data.adapter_data import EvalData, announce_default_eval_data
    from lorafair.data.examples import encode_labels, label_names_from_values, load_examples, stratified_sample

    chosen = EvalData(data, "--data", encoding=encoding) if data else announce_default_eval_data(lora_path)
    examples = load_examples(
        assets.resolve_data(chosen.data, chosen.split),
        split=chosen.split,
        encoding=chosen.encoding or "auto",
        **chosen.columns,
    )
    label_names = modeling.read_adapter(lora_path).label_names or label_names_from_values(examples.labels)
    ids = encode_labels(examples.labels, label_names)
    keep = stratified_sample(ids, num_samples, seed)
    return [examples.texts[i] for i in keep], [int(ids[i]) for i in keep]


def save_json(data: Any, path: str | os.PathLike) -> None:
    atomic.write_json(path, data, trailing_newline=False)


def ensure_output_dir(path: str | os.PathLike) -> Path:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    return path
