"""The seed's evaluation procedure, implemented literally: the baseline `speedup_vs_seed_procedure` divides by.

    python benchmarks/seed_procedure.py --base-model DIR --adapter DIR --data subset.jsonl --output seed.json

What the seed did, step by step, and what lorafair does instead (for the record, not to fix here):
  1. load the base classifier, wrap it with `PeftModel.from_pretrained`, `merge_and_unload()` -> B
     (lorafair: one base load serves A first, then is merged in place for B);
  2. load a clean base again and copy the merged model's head into it -> A (a second full load);
  3. tokenise every batch padded to `max_length`, for each model separately, in file order
     (lorafair: tokenise once, length-sorted batches padded to their longest member);
  4. evaluate each model in turn under `torch.no_grad()` and compute its metrics with scikit-learn.
Only transformers, peft, torch and scikit-learn are used here, so nothing of lorafair is measured twice.
"""

from __future__ import annotations

import argparse
import json
import resource
import time


def evaluate(model, tokenizer, texts, labels, *, batch_size: int, max_length: int) -> dict:
    import numpy as np
    import torch
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

    probs = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(
                texts[start : start + batch_size],
                padding="max_length",
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            probs.append(torch.softmax(model(**batch).logits.float(), dim=-1).numpy())
    probs = np.concatenate(probs)
    pred = probs.argmax(axis=1)
    return {
        "accuracy": accuracy_score(labels, pred),
        "f1": f1_score(labels, pred),
        "precision": precision_score(labels, pred, zero_division=0),
        "recall": recall_score(labels, pred),
        "auc_roc": roc_auc_score(labels, probs[:, 1]),
        "pred": pred.tolist(),
    }


def own_peak_rss() -> int:
    """This process's own peak (VmHWM); ru_maxrss would carry the launching parent's high-water mark."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-model", required=True)
    parser.add_argument("--adapter", required=True)
    parser.add_argument("--data", required=True, help="JSONL with text and label (label names)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    started = time.perf_counter()

    import torch
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    rows = [json.loads(line) for line in open(args.data, encoding="utf-8")]
    names = sorted({r["label"] for r in rows})
    texts, labels = [r["text"] for r in rows], [names.index(r["label"]) for r in rows]
    tokenizer = AutoTokenizer.from_pretrained(args.adapter)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token

    def load_base():
        model = AutoModelForSequenceClassification.from_pretrained(
            args.base_model, num_labels=len(names), dtype=torch.float32
        )
        model.config.pad_token_id = tokenizer.pad_token_id
        return model

    lora_model = PeftModel.from_pretrained(load_base(), args.adapter).merge_and_unload().eval()  # B
    frozen = load_base().eval()  # A: a clean base again ...
    frozen.score.load_state_dict(lora_model.score.state_dict())  # ... with the trained head copied in
    results = {}
    for name, model in (("B", lora_model), ("A", frozen)):
        start = time.perf_counter()
        results[name] = evaluate(
            model, tokenizer, texts, labels, batch_size=args.batch_size, max_length=args.max_length
        )
        results[name]["seconds"] = time.perf_counter() - start
    results["total_seconds"] = time.perf_counter() - started
    results["peak_rss_bytes"] = own_peak_rss()
    with open(args.output, "w", encoding="utf-8") as handle:
        json.dump(results, handle)


if __name__ == "__main__":
    main()
