"""`lorafair train --head-init probe`: LP-FT (Kumar et al. 2022, "Fine-tuning can distort pretrained features").

The head's output layer starts as a linear probe fitted on the frozen base's features of the training rows,
then LoRA trains as usual. A random head sends large, wrong gradients into the backbone in the first steps
(the features get bent to fit the head); a head that already reads the frozen features well asks the backbone
for less. The features are what the output layer itself receives — for decoders the last real token's final
hidden state, for BERT the pooled output, for a two-layer head (RoBERTa) the output of its first layer — taken
by `run_pass` exactly as compare takes A1's features. The probe is lorafair's A1 probe (stats/probe.py: C by
stratified CV on these rows); an output layer without a bias (decoders' `score`) gets a probe fitted without an
intercept, so the layer computes the probe exactly.
"""

from __future__ import annotations

import logging

import numpy as np

from lorafair.core.errors import LorafairError
from lorafair.models import heads, inference
from lorafair.stats.probe import fit_linear_probe

log = logging.getLogger(__name__)


def output_layer(model):
    """(name, module) of the layer that outputs the logits (heads.OUTPUT_WEIGHTS), before peft wraps it."""
    modules = dict(model.named_modules())
    for weight in heads.OUTPUT_WEIGHTS:
        name = weight.removesuffix(".weight")
        if name in modules:
            return name, modules[name]
    raise LorafairError(
        f"--head-init probe: no known output layer ({', '.join(heads.OUTPUT_WEIGHTS)}) in {type(model).__name__}"
    )


def frozen_features(model, layer, tokenizer, examples, *, max_length: int, batch_size: int) -> np.ndarray:
    """What `layer` receives for each example (pooled where the model pools), the model in eval mode."""
    encoded = inference.tokenize(tokenizer, examples.texts, examples.text_pairs, max_length=max_length)
    batches = inference.length_sorted_batches(encoded.lengths, batch_size)
    was_training = model.training
    model.eval()  # no dropout: the probe sees the features the frozen base gives
    try:
        result = inference.run_pass(
            model,
            encoded,
            batches,
            pad_token_id=tokenizer.pad_token_id,
            padding_side=tokenizer.padding_side,
            head=layer,
            warmup=False,
            quiet=True,
            desc="frozen features for the probe head",
        )
    finally:
        model.train(was_training)
    return result.features


def init_head_from_probe(model, tokenizer, examples, label_ids, *, max_length: int, batch_size: int, seed: int):
    """Fit the probe on the training rows' frozen features and copy it into the output layer; what was done."""
    import torch

    name, layer = output_layer(model)
    features = frozen_features(model, layer, tokenizer, examples, max_length=max_length, batch_size=batch_size)
    has_bias = getattr(layer, "bias", None) is not None
    probe = fit_linear_probe(features, label_ids, int(layer.weight.shape[0]), seed=seed, fit_intercept=has_bias)
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(probe.weight, dtype=layer.weight.dtype))
        if has_bias:
            layer.bias.copy_(torch.as_tensor(probe.bias, dtype=layer.bias.dtype))
    accuracy = float((probe.logits(features).argmax(axis=1) == np.asarray(label_ids)).mean())
    log.info("head %s initialised from a linear probe (C %g, training accuracy %.4f)", name, probe.C, accuracy)
    return {
        "layer": name,
        "rows": int(len(label_ids)),
        "features": int(features.shape[1]),
        "C": probe.C,
        "cv_accuracy": probe.cv_accuracy,
        "train_accuracy": accuracy,
        "intercept": has_bias,
    }
