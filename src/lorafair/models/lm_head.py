"""The base's next-token distributions with and without LoRA, through the base checkpoint's language-model head.

A decoder classifier (LlamaForSequenceClassification, Qwen2ForSequenceClassification, ...) feeds its head the
final hidden states (after the final norm) that the causal LM of the same base feeds its `lm_head`. So at every
token, the base's next-token distribution is softmax(h_A · Wᵀ) and the LoRA backbone's is softmax(h_B · Wᵀ), with
the same W: the base checkpoint's `lm_head.weight` (its `embed_tokens` when the embeddings are tied), read from
the weight files with safetensors' `safe_open`; no second model is loaded.

    head, skipped = find_lm_head(base_model, model)        # LmHead (not read yet), or None and a reason record
    capture = FinalStates(head_module)                      # run_pass(..., trunk=Together(recorder, capture))
    kl, nll_a, nll_b = next_token_figures(capture_a.rows, capture_b.rows, token_ids, head.load())

Only the final hidden states (tokens x d) are kept between the two passes, never logits: vocab x tokens
(49k for SmolLM2, 152k for Qwen2.5) is made a few hundred tokens at a time, in float64 after the matmul.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CHUNK_ELEMENTS = 2**22  # logits per chunk (tokens x vocab): 32 MB in float64, a few such arrays alive at once
LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "logits_scaling")  # applied after lm_head by some


@dataclass
class LmHead:
    """Where the base's LM head lives: the tensor's name and file (read by `load`), and whether it is tied."""

    key: str
    file: Path
    tied: bool
    bias_key: str | None = None

    def load(self) -> tuple:
        """(weight (vocab x d), bias or None), as stored."""
        from safetensors import safe_open

        with safe_open(str(self.file), framework="pt") as handle:
            bias = handle.get_tensor(self.bias_key) if self.bias_key else None
            return handle.get_tensor(self.key), bias


def _skip(reason: str, detail=None) -> tuple[None, dict]:
    return None, {"kind": "lm_skipped", "reason": reason, "detail": detail}


def find_lm_head(base_model, model) -> tuple[LmHead | None, dict | None]:
    """The base checkpoint's LM head for `model` (a loaded decoder classifier of that base), or why there is none.

    Reasons: logit_transform (the causal LM changes logits after lm_head), no_safetensors (no local
    .safetensors files), no_lm_head (neither lm_head.weight nor tied embeddings), shape (not vocab x hidden).
    """
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    for name in LOGIT_TRANSFORMS:
        if getattr(config, name, None) not in (None, 1, 1.0):
            return _skip("logit_transform", name)
    tensors = safetensors_keys(base_model)
    if not tensors:
        return _skip("no_safetensors")
    tied = bool(getattr(config, "tie_word_embeddings", False))
    names = ["lm_head.weight"] + (embedding_names(model) if tied else [])
    key = next((name for name in names if name in tensors), None)
    if key is None:
        return _skip("no_lm_head", "tied" if tied else None)
    shape = _shape(tensors[key], key)
    if len(shape) != 2 or shape[1] != config.hidden_size or shape[0] < config.vocab_size:
        return _skip("shape", list(shape))
    bias = "lm_head.bias" if key == "lm_head.weight" and "lm_head.bias" in tensors else None
    return LmHead(key, tensors[key], key != "lm_head.weight", bias), None


def embedding_names(model) -> list[str]:
    """Checkpoint names the input embedding may have: its name in `model`, without and with the base prefix."""
    embedding = model.get_input_embeddings()
    name = next((f"{n}.weight" for n, m in model.named_modules() if m is embedding), None)
    if name is None:
        return []
    prefix = f"{getattr(model, 'base_model_prefix', '')}."
    return [name, name.removeprefix(prefix)] if name.startswith(prefix) else [name, prefix + name]


def safetensors_keys(base_model) -> dict[str, Path]:
    """{tensor name: file} over the base's .safetensors files (headers only); {} when there are none locally."""
    folder = _local_folder(base_model)
    if folder is None:
        return {}
    from safetensors import safe_open

    keys = {}
    for file in sorted(folder.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as handle:
            keys.update(dict.fromkeys(handle.keys(), file))
    return keys


def _local_folder(base_model) -> Path | None:
    folder = Path(str(base_model))
    if folder.is_dir():
        return folder
    try:  # a hub id: its snapshot in the local HF cache, never a download
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(str(base_model), local_files_only=True, allow_patterns=["*.safetensors"]))
    except Exception:  # not cached, not a repo id: the KL is skipped with its reason
        return None


def _shape(file: Path, key: str) -> tuple:
    from safetensors import safe_open

    with safe_open(str(file), framework="pt") as handle:
        return tuple(handle.get_slice(key).get_shape())


class FinalStates:
    """Context for run_pass: a forward pre-hook on the head's first module keeps each example's real-token rows.

    The head of a decoder classifier receives the final hidden states (batch, seq, d); `rows[example]` is the
    (real tokens, d) part of its row, on the CPU, in token order.
    """

    def __init__(self, module):
        self.module, self.rows = module, {}
        self.hook = self.batch_idx = self.mask = None

    def __enter__(self):
        self.hook = self.module.register_forward_pre_hook(self._keep, with_kwargs=True)
        return self

    def __exit__(self, *exc):
        self.hook.remove()

    def batch(self, batch_idx, attention_mask) -> None:
        self.batch_idx, self.mask = np.asarray(batch_idx), attention_mask.bool()

    def _keep(self, module, args, kwargs):
        hidden = args[0] if args else next(iter(kwargs.values()))
        if hidden.dim() != 3:
            raise RuntimeError(f"the head received {tuple(hidden.shape)}, not (batch, tokens, hidden) states")
        for row, example in enumerate(self.batch_idx):
            self.rows[int(example)] = hidden[row][self.mask[row]].detach().to("cpu", copy=True)


class Together:
    """Several per-batch contexts (trunk recorder or replayer, FinalStates) as run_pass's one `trunk` argument."""

    def __init__(self, *parts):
        self.parts = [part for part in parts if part is not None]
        self.stack = contextlib.ExitStack()

    def __enter__(self):
        for part in self.parts:
            self.stack.enter_context(part)
        return self

    def __exit__(self, *exc):
        return self.stack.__exit__(*exc)

    def batch(self, batch_idx, attention_mask) -> None:
        for part in self.parts:
            part.batch(batch_idx, attention_mask)


def next_token_figures(rows_a: dict, rows_b: dict, token_ids: list, weight, bias=None, *, device="cpu", dtype=None):
    """(KL(A || B), NLL under A, NLL under B) per predicted token: float64 arrays over every position of every
    example that has a next token (example order, then token order).

    rows_a, rows_b: example -> (tokens, d) final hidden states of A and B; token_ids: each example's ids.
    dtype: the logits' matmul runs in the dtype the compare runs its models in (float32 unless given), as the
    causal LM computes them: in bf16 it is most of this step's time in fp32 (vocabulary x hidden per token).
    """
    import torch

    order = range(len(token_ids))
    states_a = torch.cat([rows_a[i][:-1] for i in order])
    states_b = torch.cat([rows_b[i][:-1] for i in order])
    targets = torch.tensor([t for i in order for t in token_ids[i][1:]], dtype=torch.long)
    weight = weight.to(device=device, dtype=dtype or torch.float32)
    bias = None if bias is None else bias.to(device=device, dtype=torch.float32)
    step = max(1, CHUNK_ELEMENTS // weight.shape[0])
    parts = [
        _chunk_figures(states_a[s : s + step], states_b[s : s + step], targets[s : s + step], weight, bias, device)
        for s in range(0, len(targets), step)
    ]
    if not parts:
        return tuple(np.empty(0) for _ in range(3))
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(3))


def _chunk_figures(states_a, states_b, targets, weight, bias, device):
    import torch

    with torch.inference_mode():
        log_a = _log_probs(states_a, weight, bias, device)
        log_b = _log_probs(states_b, weight, bias, device)
        kl = (log_a.exp() * (log_a - log_b)).sum(-1)
        index = targets.to(device)[:, None]
        nll_a, nll_b = -log_a.gather(1, index)[:, 0], -log_b.gather(1, index)[:, 0]
    return tuple(t.cpu().numpy() for t in (kl, nll_a, nll_b))


def _log_probs(states, weight, bias, device):
    """float64 log-softmax of the logits h · Wᵀ (+ b) computed in the weight's dtype, as the causal LM computes
    its logits."""
    import torch

    logits = (states.to(device=device, dtype=weight.dtype) @ weight.T).float()
    if bias is not None:
        logits = logits + bias
    return torch.log_softmax(logits.double(), dim=-1)
