"""The shared trunk: layers below the lowest adapted one compute the same thing in A and in B.

An adapter whose LoRA modules all lie in layers >= k (peft's `layers_to_transform`, lorafair's own
`--lora-layers`) leaves layers 0..k-1 exactly as in the base. The frozen pass therefore records, per
example, the output of layer k-1 (real tokens only); B's pass replaces layers 0..k-1 by a lookup of that
output, so B costs (L - k) / L of a pass. Nothing is approximated: layer k sees, at every real token, the
very tensor the full LoRA model would give it; padded positions hold zeros, which the attention mask
hides from every real token (as it hides whatever a full pass leaves there).

    plan = plan_trunk(model, adapter.lora)          # how many layers are shared, and why not more
    states = TrunkStates(plan)
    run_pass(frozen_model, ..., trunk=states.recorder(frozen_model))
    run_pass(merged_model, ..., trunk=states.replayer(merged_model))
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

GIB = 2**30


@dataclass
class TrunkPlan:
    shared: int  # k: layers 0..k-1 are identical in A and B
    total: int  # L, the model's transformer layers
    path: str | None  # where they live in the model, e.g. "model.layers"
    reason: str  # why this many (or none): off, no_layers, outside, layer_0, lowest, too_large (report/words)
    detail: str | None = None  # outside: the module the adapter changes outside the layers


def find_layers(model) -> tuple[str | None, object]:
    """The model's list of transformer layers: the first ModuleList as long as config.num_hidden_layers."""
    import torch

    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    count = getattr(config, "num_hidden_layers", None)
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and count and len(module) == count:
            return name, module
    return None, None


def plan_trunk(model, lora: dict, *, enabled: bool = True) -> TrunkPlan:
    """k = the lowest layer index any LoRA tensor of `lora` ({module path.lora_X: tensor}) touches."""
    path, layers = find_layers(model)
    total = len(layers) if layers is not None else 0
    if not enabled:
        return TrunkPlan(0, total, path, "off")  # --no-shared-trunk
    if layers is None:
        return TrunkPlan(0, 0, None, "no_layers")  # the transformer layers were not found
    prefix, lowest = f"{path}.", total
    for key in lora:
        module = key.rpartition(".")[0]
        if not module.startswith(prefix):
            return TrunkPlan(0, total, path, "outside", detail=module)  # a module outside the layers
        lowest = min(lowest, int(module[len(prefix) :].split(".")[0]))
    if lowest == 0:
        return TrunkPlan(0, total, path, "layer_0")
    return TrunkPlan(lowest, total, path, "lowest")  # the lowest LoRA module is in layer `lowest`


def estimated_bytes(lengths: np.ndarray, hidden_size: int, element_size: int = 4) -> int:
    """Memory the recorded layer output of these examples takes (real tokens only)."""
    return int(np.asarray(lengths).sum()) * hidden_size * element_size


def memory_budget() -> int:
    """Recorded trunk output may take at most a quarter of the memory available now (and 4 GiB)."""
    try:
        with open("/proc/meminfo") as meminfo:
            available = next(int(line.split()[1]) * 1024 for line in meminfo if line.startswith("MemAvailable"))
    except (OSError, StopIteration, ValueError):
        available = 8 * GIB
    return min(4 * GIB, available // 4)


@dataclass
class TrunkStates:
    """Per-example output of layer k-1, filled by a recorder, read by a replayer. One per tokenised set."""

    plan: TrunkPlan
    rows: dict = field(default_factory=dict)  # example index -> (real tokens, hidden) tensor
    tuple_len: int | None = None  # the layer returns a tuple of this length (the rest None), else a tensor

    def recorder(self, model, keep=None) -> _Recorder:
        return _Recorder(self, _layers(model, self.plan), None if keep is None else {int(i) for i in keep})

    def replayer(self, model, index_map=None) -> _Replayer:
        """`index_map[i]`: the recorded example that example i of the replayed set is (None: the same)."""
        return _Replayer(self, _layers(model, self.plan), index_map)

    def to_arrays(self) -> tuple[dict, dict]:
        """(arrays, meta) for the feature cache: every row's tokens concatenated, float32 (exact for bf16 too)."""
        import torch

        examples = sorted(self.rows)
        lengths = [int(self.rows[e].shape[0]) for e in examples]
        stacked = torch.cat([self.rows[e].float() for e in examples]) if examples else torch.empty(0)
        arrays = {
            "trunk": stacked.numpy(),
            "examples": np.asarray(examples, dtype=np.int64),
            "offsets": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        }
        dtype = str(self.rows[examples[0]].dtype).replace("torch.", "") if examples else "float32"
        return arrays, {"shared": self.plan.shared, "tuple_len": self.tuple_len, "dtype": dtype}

    @classmethod
    def from_arrays(cls, plan: TrunkPlan, arrays: dict, meta: dict) -> TrunkStates:
        """The recorded states back (the cache key already names the number of shared layers)."""
        import torch

        values, offsets = torch.from_numpy(arrays["trunk"]).to(getattr(torch, meta["dtype"])), arrays["offsets"]
        rows = {int(e): values[offsets[i] : offsets[i + 1]] for i, e in enumerate(arrays["examples"])}
        return cls(plan, rows, meta.get("tuple_len"))


def _layers(model, plan: TrunkPlan):
    layers = model.get_submodule(plan.path)
    if len(layers) != plan.total:
        raise RuntimeError(f"{plan.path} has {len(layers)} layers, the trunk plan {plan.total}")
    return layers


class _Recorder:
    """Context for run_pass: a forward hook on layer k-1 keeps each example's real-token rows."""

    def __init__(self, states: TrunkStates, layers, keep: set | None):
        self.states, self.layer, self.keep = states, layers[states.plan.shared - 1], keep
        self.batch_idx = self.mask = None
        self.hook = None

    def __enter__(self):
        self.hook = self.layer.register_forward_hook(self._record)
        return self

    def __exit__(self, *exc):
        self.hook.remove()

    def batch(self, batch_idx, attention_mask) -> None:
        self.batch_idx, self.mask = np.asarray(batch_idx), attention_mask.bool()

    def _record(self, module, args, output):
        hidden = output
        if isinstance(output, tuple):
            if any(item is not None for item in output[1:]):
                raise RuntimeError("the trunk's last layer returned more than hidden states: cannot share it")
            self.states.tuple_len, hidden = len(output), output[0]
        for row, example in enumerate(self.batch_idx):
            if self.keep is None or int(example) in self.keep:
                self.states.rows[int(example)] = hidden[row][self.mask[row]].detach().to("cpu", copy=True)


class _Replayer:
    """Context for run_pass: layers 0..k-1 return the recorded output of layer k-1 instead of computing."""

    def __init__(self, states: TrunkStates, layers, index_map):
        self.states, self.skipped, self.index_map = states, list(layers[: states.plan.shared]), index_map
        self.current = None

    def __enter__(self):
        for layer in self.skipped:
            layer.forward = self._skip  # an instance attribute: nn.Module.__call__ (and its hooks) still run
        return self

    def __exit__(self, *exc):
        for layer in self.skipped:
            del layer.forward

    def batch(self, batch_idx, attention_mask) -> None:
        import torch

        mask = attention_mask.bool()
        rows = [self._row(int(example)) for example in batch_idx]
        hidden = torch.zeros((*mask.shape, rows[0].shape[-1]), dtype=rows[0].dtype, device=attention_mask.device)
        for row, values in enumerate(rows):
            hidden[row][mask[row]] = values.to(hidden.device)
        self.current = hidden

    def _row(self, example: int):
        recorded = example if self.index_map is None else int(self.index_map[example])
        try:
            return self.states.rows[recorded]
        except KeyError:
            raise RuntimeError(f"no recorded trunk output for example {recorded}") from None

    def _skip(self, *args, **kwargs):
        if self.states.tuple_len is None:
            return self.current
        return (self.current,) + (None,) * (self.states.tuple_len - 1)
