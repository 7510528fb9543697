"""The seed's benchmark module: model configs and per-model evaluation, backed by lorafair.

Each evaluation here loads its own model, as the seed did; `lorafair compare` (and run_full_eval.py)
is the efficient, paired way: one base load, one tokenisation, identical batches for every variant.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Dict, List

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model_evaluation.utils import (  # noqa: E402
    get_device,
    get_torch_dtype,
    load_base_model_with_lora_classifier,
    load_evaluation_data,
)

BASELINE_MODELS = {
    "qwen_base_frozen": {
        "name": "Qwen-1.5B 冻结 + LoRA分类头",
        "model_name": "Qwen/Qwen2.5-1.5B",
        "type": "qwen_frozen",
        "description": "frozen base Qwen + the head trained with LoRA (variant A)",
        "use_lora": False,
        "use_lora_classifier": True,
    },
    "qwen_lora": {
        "name": "Qwen-1.5B + LoRA微调",
        "model_name": "Qwen/Qwen2.5-1.5B",
        "type": "qwen",
        "description": "LoRA fine-tuned model with its trained head (variant B)",
        "use_lora": True,
        "use_lora_classifier": False,
    },
}


class BenchmarkEvaluator:
    """Evaluates one configured model at a time on fixed texts and integer labels."""

    def __init__(self, texts: List[str], labels: List[int], batch_size: int = 16, max_length: int = 256):
        self.texts, self.labels = list(texts), np.asarray(labels)
        self.batch_size, self.max_length = batch_size, max_length
        self.device = get_device()
        self.results: Dict[str, Any] = {}

    @classmethod
    def from_adapter(
        cls, lora_path: str, data: str | None = None, num_samples: int = 0, encoding: str = "auto", **kwargs
    ):
        """An evaluator on `data` (read with `encoding`), or (default) on the adapter's own recorded evaluation data."""
        texts, labels = load_evaluation_data(lora_path, data, num_samples, encoding=encoding)
        return cls(texts, labels, **kwargs)

    def _evaluate(self, model, tokenizer) -> Dict[str, Any]:
        from lorafair.models.inference import length_sorted_batches, run_pass, softmax, tokenize

        encoded = tokenize(tokenizer, self.texts, max_length=self.max_length)
        result = run_pass(
            model,
            encoded,
            length_sorted_batches(encoded.lengths, self.batch_size),
            pad_token_id=tokenizer.pad_token_id,
            padding_side=tokenizer.padding_side,
            device=self.device,
            quiet=True,
        )
        return self._compute_metrics(softmax(result.logits), result.speed(len(self.texts)))

    def _compute_metrics(self, probs: np.ndarray, speed: Dict[str, Any]) -> Dict[str, Any]:
        from lorafair.stats.metrics import compute_metrics, per_class_report

        values = {k: v["value"] for k, v in compute_metrics(self.labels, probs).items()}
        per_class = per_class_report(
            self.labels, probs.argmax(axis=1), probs.shape[1], [str(i) for i in range(probs.shape[1])]
        )
        values.update(
            negative_recall=per_class[0]["recall"],
            positive_recall=per_class[-1]["recall"],
            avg_inference_time_ms=1000.0 / speed["qps"] if speed["qps"] else None,
            qps=speed["qps"],
        )
        return values

    def evaluate_qwen(self, model_name: str, lora_path: str | None = None) -> Dict[str, Any]:
        """B (LoRA merged, trained head) when lora_path is given."""
        from lorafair.models import modeling

        if not lora_path:
            raise ValueError("evaluate_qwen needs lora_path: a base with a random head is not a fair baseline")
        model, tokenizer = load_base_model_with_lora_classifier(model_name, lora_path, self.device)
        model = modeling.merge_lora(model, modeling.read_adapter(lora_path))
        return self._evaluate(model, tokenizer)

    def evaluate_qwen_frozen_with_lora_classifier(self, model_name: str, lora_path: str) -> Dict[str, Any]:
        """A: the frozen base with the LoRA-trained head."""
        model, tokenizer = load_base_model_with_lora_classifier(model_name, lora_path, self.device)
        return self._evaluate(model, tokenizer)

    def run_benchmark(
        self, model_key: str, lora_path: str | None = None, model_name: str | None = None
    ) -> Dict[str, Any]:
        config = BASELINE_MODELS[model_key]
        name = model_name or config["model_name"]
        if config["type"] == "qwen_frozen":
            metrics = self.evaluate_qwen_frozen_with_lora_classifier(name, lora_path)
        else:
            metrics = self.evaluate_qwen(name, lora_path)
        result = {"key": model_key, "name": config["name"], "description": config["description"], "metrics": metrics}
        self.results[model_key] = result
        return result

    def run_all_benchmarks(self, lora_path: str, model_name: str | None = None) -> Dict[str, Any]:
        for key in BASELINE_MODELS:
            self.run_benchmark(key, lora_path, model_name)
        return self.results


def print_benchmark_report(results: Dict[str, Any]) -> None:
    print(f"\n{'model':<28} {'accuracy':<10} {'F1':<10} {'recall+':<10} {'recall-':<10} {'QPS':<10}")
    print("-" * 80)
    for result in results.values():
        m = result.get("metrics")
        if not m:
            continue
        cells = [m.get(k) for k in ("accuracy", "f1", "positive_recall", "negative_recall", "qps")]
        print(f"{result['name']:<28} " + " ".join("n/a".ljust(10) if c is None else f"{c:<10.4f}" for c in cells))


__all__ = ["BASELINE_MODELS", "BenchmarkEvaluator", "print_benchmark_report", "get_torch_dtype"]
