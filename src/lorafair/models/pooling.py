"""Where a classifier reads each example: the positions and pooled vectors every pass shares.

A leaf of `models`: forward passes (inference), layer hooks (layer_states) and the trunk all pool here.
"""

from __future__ import annotations


def last_non_pad_index(input_ids, pad_token_id):
    """The position transformers' decoder classifiers pool: the rightmost token that is not padding."""
    import torch

    positions = torch.arange(input_ids.shape[-1], device=input_ids.device, dtype=torch.int32)
    return (positions * (input_ids != pad_token_id).to(torch.int32)).argmax(-1)


def pool_rows(hidden, rows, positions):
    return hidden[rows, positions] if positions is not None else hidden[:, 0]


def pool_head_input(module, value, input_ids, pad_token_id):
    """The features a head consumes, pooled where it pools, and the name of that pooling.

    A vector per example is already pooled by the model (BERT's pooler, DistilBERT's [CLS] row).
    A sequence into a position-wise `nn.Linear` (decoders' `score`) is pooled like the logits: at the
    last non-pad token. A sequence into any other head module (RoBERTa/ELECTRA `classifier`) is pooled
    by that module at position 0. `heads.check_features_reproduce_head` verifies the rule on every run.
    """
    import torch

    if value.dim() == 2:
        return value, "vector"
    if isinstance(module, torch.nn.Linear):
        rows = torch.arange(value.shape[0], device=value.device)
        return value[rows, last_non_pad_index(input_ids, pad_token_id)], "last_non_pad"
    return value[:, 0], "first"


def pool_hidden_states(hidden_states, input_ids, pad_token_id: int, pool: str):
    """(L + 1, batch, d): every layer's hidden state at one position per row.

    "last": the last non-pad token, where decoder classifiers pool; "first": position 0 ([CLS]), where
    encoder heads read (before any pooler of their own).
    """
    import torch

    if pool == "first":
        return torch.stack([h[:, 0] for h in hidden_states])
    if pool != "last":
        raise ValueError(f"layer_pool must be 'last' or 'first', got {pool!r}")
    rows = torch.arange(input_ids.shape[0], device=input_ids.device)
    positions = last_non_pad_index(input_ids, pad_token_id)
    return torch.stack([h[rows, positions] for h in hidden_states])  # pool first: no (L + 1) x seq copy
