"""Orchestrates one fair comparison and returns the report dict (report.json is its serialisation).

    lorafair compare --adapter outputs/lora_adapter --data builtin:polarity-en --num-samples 500

Order of work, chosen so that the base weights are loaded once and peak memory stays at one model
plus the LoRA deltas: tokenise once -> load base -> install the adapter's head (A) -> one frozen pass
(A's logits and the pooled features that R and A1 reuse) -> merge the LoRA deltas in place (B) -> one pass.
"""

from __future__ import annotations

import gc
import logging
import platform
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lorafair import data as data_mod
from lorafair import distributed, modeling
from lorafair.config import CompareConfig
from lorafair.errors import LorafairError
from lorafair.inference import length_sorted_batches, softmax, tokenize
from lorafair.names import DELTAS, FROZEN_VARIANTS, VARIANT_IDS, VARIANT_NAMES

log = logging.getLogger(__name__)


def _resolve_assets(cfg: CompareConfig, base_model: str) -> tuple[str, Path]:
    """Built-in names (smollm2-135m, builtin:polarity-en) -> local folders/files; paths pass through."""
    from lorafair import assets

    return assets.resolve_model(base_model), Path(assets.resolve_data(cfg.data, cfg.split))


def resolve_device(device: str, dtype: str):
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise LorafairError(f"--device {device} asked for, but no CUDA device is available")
    if dtype == "auto":
        dtype = "bfloat16" if device.startswith("cuda") and torch.cuda.is_bf16_supported() else "float32"
    return device, getattr(torch, dtype)


def check_variants(cfg: CompareConfig) -> list[str]:
    variants = cfg.variant_list()
    unknown = [v for v in variants if v not in VARIANT_IDS]
    if unknown or not variants:
        raise LorafairError(f"unknown variant(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(VARIANT_IDS)}")
    return [v for v in VARIANT_IDS if v in variants]


def _label_names(adapter: modeling.Adapter, base_model: str, raw_labels) -> list[str]:
    """Run metadata > the base/adapter config's id2label (if not the LABEL_i default) > sorted labels in the data."""
    if adapter.label_names:
        return list(adapter.label_names)
    try:
        from transformers import AutoConfig

        id2label = AutoConfig.from_pretrained(base_model).id2label or {}
        names = [id2label[i] for i in sorted(id2label)]
        if len(names) == adapter.num_labels and names != [f"LABEL_{i}" for i in range(len(names))]:
            return [str(n) for n in names]
    except Exception:  # no config to read: fall back to the data
        pass
    return data_mod.label_names_from_values(raw_labels)


def _probe_examples(cfg, adapter, examples, label_ids, eval_idx, label_names, data_path):
    """Training data for A1 and a sentence saying where it came from; never the evaluation examples."""
    meta = (adapter.run_metadata or {}).get("train_data") or {}
    source, columns = None, {}
    if cfg.probe_data:
        source, columns = cfg.probe_data, {}
    elif meta.get("path") and Path(meta["path"]).exists():
        source = meta["path"]
        columns = {k: meta[k] for k in ("text_column", "text_pair_column", "label_column", "split") if meta.get(k)}
    if source is not None and Path(source).resolve() == Path(data_path).resolve():
        source = None  # the evaluation file itself: fall back to its part outside the evaluation sample
    if source is not None:
        probe = data_mod.load_examples(
            source, split=columns.get("split"),
            text_column=columns.get("text_column", cfg.text_column),
            text_pair_column=columns.get("text_pair_column", cfg.text_pair_column),
            label_column=columns.get("label_column", cfg.label_column))
        ids = data_mod.encode_labels(probe.labels, label_names)
        keep = data_mod.stratified_sample(ids, cfg.probe_samples, cfg.seed)
        origin = "--probe-data" if cfg.probe_data else "the adapter's recorded training data"
        return probe.subset(keep), ids[keep], f"{origin} ({source}, {len(keep)} examples)"
    keep = data_mod.split_off(label_ids, eval_idx, cfg.probe_samples, cfg.seed + 1)
    counts = np.bincount(label_ids[keep], minlength=len(label_names)) if len(keep) else np.zeros(1)
    if counts.min() < 2:  # cross-validating the probe needs two examples of every class
        return None, None, ("too little data beside the evaluation sample (need 2 per class): A1 skipped "
                            "(pass --probe-data or a smaller --num-samples)")
    return (examples.subset(keep), label_ids[keep],
            f"{len(keep)} examples of {cfg.data} kept disjoint from the evaluation sample")


@dataclass
class Comparison:
    """The report dict plus what predictions.csv is written from."""

    report: dict
    probs: dict
    labels: np.ndarray


def run_compare(cfg: CompareConfig) -> Comparison:
    """Evaluate the requested variants on identical batches and build the report dict."""
    import torch

    from lorafair import report as report_mod

    started = time.perf_counter()
    variants = check_variants(cfg)
    report_mod.check_output_dir(cfg.output, cfg.overwrite)
    adapter = modeling.read_adapter(cfg.adapter)
    base_model = cfg.base_model or adapter.base_model
    if not base_model:
        raise LorafairError("the adapter does not name its base model (base_model_name_or_path); pass --base-model")
    base_model, data_path = _resolve_assets(cfg, base_model)
    examples = data_mod.load_examples(data_path, split=cfg.split, text_column=cfg.text_column,
                                      text_pair_column=cfg.text_pair_column, label_column=cfg.label_column)
    label_names = _label_names(adapter, base_model, examples.labels)
    if len(label_names) != adapter.num_labels:
        raise LorafairError(f"the head has {adapter.num_labels} outputs but the labels are {len(label_names)}: "
                            f"{', '.join(label_names)}")
    label_ids = data_mod.encode_labels(examples.labels, label_names)
    eval_idx = data_mod.stratified_sample(label_ids, cfg.num_samples, cfg.seed)
    evaluation, y = examples.subset(eval_idx), label_ids[eval_idx]
    device, dtype = resolve_device(cfg.device, cfg.dtype)
    ctx = distributed.init(device)  # under torchrun/accelerate: each rank runs a share of the batches
    device = ctx.device(device)
    modeling.check_adapter_fits(base_model, adapter)  # fail before loading any weights
    if cfg.quiet:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

    tokenizer = modeling.load_tokenizer(adapter.path, base_model)
    encoded = tokenize(tokenizer, evaluation.texts, evaluation.text_pairs, max_length=cfg.max_length)
    batches = length_sorted_batches(encoded.lengths, cfg.batch_size)
    pass_kw = dict(pad_token_id=tokenizer.pad_token_id, padding_side=tokenizer.padding_side,
                   device=device, quiet=cfg.quiet)

    model = modeling.load_base_classifier(base_model, adapter.num_labels, dtype=dtype, device=device,
                                          label_names=label_names)
    modeling.ensure_pad_token(tokenizer, model)
    head_hash_a = modeling.install_head(model, adapter)
    head = modeling.head_module(model, adapter.head_name)
    logits, speed, passes, heads, notes = {}, {}, [], {}, []

    needs_frozen = bool(set(FROZEN_VARIANTS) & set(variants))
    if needs_frozen:
        frozen = ctx.run_pass(model, encoded, batches, head=head, desc="frozen base (A)", **pass_kw)
        passes.append({"what": "frozen base, evaluation set (serves A, A1, R)", "examples": len(y)})
        if "A" in variants:
            logits["A"], speed["A"], heads["A"] = frozen.logits, frozen.speed(len(y)), head_hash_a
        if "R" in variants:
            rand = modeling.random_head(frozen.features.shape[1], adapter.num_labels, seed=cfg.seed,
                                        std=getattr(model.config, "initializer_range", 0.02),
                                        bias="bias" in adapter.head)
            logits["R"] = _apply_head(frozen.features, rand)
            heads["R"] = modeling.tensor_sha256(rand)
        if "A1" in variants:
            probe_ex, probe_y, probe_note = _probe_examples(cfg, adapter, examples, label_ids, eval_idx,
                                                             label_names, data_path)
            notes.append(f"A1 probe data: {probe_note}")
            if probe_ex is not None:
                from lorafair.probe import fit_linear_probe

                probe_enc = tokenize(tokenizer, probe_ex.texts, probe_ex.text_pairs, max_length=cfg.max_length)
                probe_batches = length_sorted_batches(probe_enc.lengths, cfg.batch_size)
                probe_pass = ctx.run_pass(model, probe_enc, probe_batches, head=head, warmup=False,
                                          desc="frozen base (probe data)", **pass_kw)
                passes.append({"what": "frozen base, probe-training set (A1 only)", "examples": len(probe_y)})
                probe = fit_linear_probe(probe_pass.features, probe_y, adapter.num_labels, seed=cfg.seed)
                logits["A1"] = probe.logits(frozen.features)
                notes.append(f"A1 regularisation C = {probe.C:.4g} (cross-validated accuracy {probe.cv_accuracy:.3f})")
                heads["A1"] = modeling.tensor_sha256({"weight": torch.from_numpy(np.ascontiguousarray(probe.weight)),
                                                      "bias": torch.from_numpy(np.ascontiguousarray(probe.bias))})
        del frozen

    if "B" in variants:
        model = modeling.merge_lora(model, adapter)  # in place: the frozen weights are not needed any more
        heads["B"] = modeling.tensor_sha256(modeling.head_tensors(model, adapter.head_name))
        if heads["B"] != head_hash_a:
            raise RuntimeError(f"head of B ({heads['B'][:12]}) differs from the adapter's head installed in A "
                               f"({head_hash_a[:12]}): the comparison would not be fair")
        lora_pass = ctx.run_pass(model, encoded, batches, desc="LoRA merged (B)", **pass_kw)
        passes.append({"what": "LoRA merged model, evaluation set (B)", "examples": len(y)})
        logits["B"], speed["B"] = lora_pass.logits, lora_pass.speed(len(y))

    del model, head  # the weights are not needed for the report: keep them out of its peak memory
    gc.collect()
    probs = {v: softmax(logits[v]) for v in variants if v in logits}
    if not ctx.is_main:  # every rank holds the same gathered results; rank 0 alone reports
        return Comparison({}, probs, y)
    environment = {
        "torch": torch.__version__, "transformers": _version("transformers"), "peft": _version("peft"),
        "python": sys.version.split()[0], "platform": platform.platform(), "device": str(device),
        "dtype": str(dtype).replace("torch.", ""),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "world_size": ctx.world_size,
    }
    data_info = {
        "n": int(len(y)), "n_available": len(examples), "labels": label_names, "source": str(data_path),
        "label_counts": {label_names[k]: int((y == k).sum()) for k in range(len(label_names))},
        "token_ids_sha256": encoded.sha256(), "tokenize_seconds": encoded.seconds,
        "indices": [int(i) for i in eval_idx],
    }
    from lorafair.reporting import build_report

    report = build_report(cfg, variants=[v for v in variants if v in probs], y=y, probs=probs, heads=heads,
                          speed=speed, data=data_info, environment=environment,
                          names=VARIANT_NAMES[cfg.lang], deltas=DELTAS, passes=passes, notes=notes,
                          head_name=adapter.head_name)
    report["timing"] = {"total_seconds": time.perf_counter() - started}
    return Comparison(report, probs, y)


def _apply_head(features: np.ndarray, head: dict) -> np.ndarray:
    logits = features.astype(np.float64) @ head["weight"].double().numpy().T
    if "bias" in head:
        logits += head["bias"].double().numpy()
    return logits.astype(np.float32)


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None
