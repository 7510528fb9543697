"""Every layer's hidden state pooled at one position per example, captured while the model runs.

`output_hidden_states=True` keeps all L + 1 full (batch, seq, d) states of a batch alive until the forward
ends: 25 x 16 x 128 x 896 fp32 = 183 MiB on Qwen2.5-0.5B, 0.7 GiB on the 1.5B at 256 tokens — the largest
transient of the analysis passes. Hooks pool each state as soon as it exists, so a layer leaves only
(batch, d) behind:

    hidden_states[0]      the input of layer 0 (embeddings, with whatever the model adds before layer 0)
    hidden_states[1..L]   the output of layer 0..L-1
    hidden_states[L]      replaced by the output of the first module outside the layers that runs after the
                          last layer and keeps its shape (the final norm: Llama's `norm`, GPT-2's `ln_f`)

Which tensors a model reports as its hidden states is its own business, so the first use per model
runs two examples with `output_hidden_states=True` beside the hooks and keeps the hooks only when every
pooled state is identical; otherwise that model uses `output_hidden_states` (exact, just larger).
"""

from __future__ import annotations

import logging
import weakref

from lorafair.models.pooling import last_non_pad_index, pool_rows

log = logging.getLogger(__name__)

# model -> do the hooks reproduce its output_hidden_states exactly? (per model object: its config decides
# what it reports; weak, so a freed model's answer cannot be taken for a new one at the same address)
_CHECKED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class LayerPooler:
    """Context for run_pass: `batch(...)` before each forward, `states()` after it -> (L + 1, batch, d)."""

    def __init__(self, model, pool: str):
        from lorafair.models.trunk import find_layers

        if pool not in ("last", "first"):
            raise ValueError(f"layer_pool must be 'last' or 'first', got {pool!r}")
        self.model, self.pool = model, pool
        self.path, self.layers = find_layers(model)
        self.hooks: list = []
        self.pooled: list = []
        self.rows = self.positions = None
        self.after_last = False  # the last layer ran: the next same-shape output outside the layers is the final norm
        self.final_shape = None

    @property
    def usable(self) -> bool:
        return self.layers is not None and len(self.layers) > 0

    def __enter__(self):
        import torch

        if not self.usable:
            return self
        inside = {id(m) for m in self.layers.modules()}
        self.hooks.append(self.layers[0].register_forward_pre_hook(self._first_input, with_kwargs=True))
        for index, layer in enumerate(self.layers):
            self.hooks.append(layer.register_forward_hook(self._layer_output(index)))
        for module in self.model.modules():
            if id(module) not in inside and not isinstance(module, torch.nn.ModuleList):
                self.hooks.append(module.register_forward_hook(self._after_layers))
        return self

    def __exit__(self, *exc):
        for hook in self.hooks:
            hook.remove()
        self.hooks.clear()

    def batch(self, input_ids, pad_token_id: int) -> None:
        import torch

        self.pooled, self.after_last, self.final_shape = [None] * (len(self.layers) + 1), False, None
        if self.pool == "last":
            self.rows = torch.arange(input_ids.shape[0], device=input_ids.device)
            self.positions = last_non_pad_index(input_ids, pad_token_id)
        else:
            self.rows = self.positions = None

    def states(self):
        import torch

        if any(p is None for p in self.pooled):
            raise RuntimeError("a layer's hidden state was not captured")
        return torch.stack(self.pooled)

    def _keep(self, index: int, hidden) -> None:
        self.pooled[index] = pool_rows(hidden, self.rows, self.positions).detach()

    def _first_input(self, module, args, kwargs):
        hidden = args[0] if args else kwargs.get("hidden_states")
        if hidden is not None:
            self._keep(0, hidden)

    def _layer_output(self, index: int):
        last = index == len(self.layers) - 1

        def hook(module, args, output):
            hidden = output[0] if isinstance(output, tuple) else output
            self._keep(index + 1, hidden)
            if last:
                self.after_last, self.final_shape = True, tuple(hidden.shape)

        return hook

    def _after_layers(self, module, args, output):
        import torch

        if self.after_last and isinstance(output, torch.Tensor) and tuple(output.shape) == self.final_shape:
            self._keep(len(self.layers), output)
            self.after_last = False  # only the first such module: the final norm, not what follows it


def hooks_match(model, run_both) -> bool:
    """Whether the hooks reproduce `output_hidden_states` for this model (checked once per model object).

    `run_both()` runs two examples with the pooler active and `output_hidden_states=True` and returns
    (hook states, states pooled from out.hidden_states).
    """
    if model not in _CHECKED:
        import torch

        hooked, reference = run_both()
        same = hooked is not None and hooked.shape == reference.shape and bool(torch.equal(hooked, reference))
        _CHECKED[model] = same
        if not same:
            log.debug(
                "%s: layer hooks differ from output_hidden_states; using output_hidden_states", type(model).__name__
            )
    return _CHECKED[model]
