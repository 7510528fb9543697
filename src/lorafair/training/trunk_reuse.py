"""`--trunk-reuse`: with LoRA in the top layers only, compute the frozen layers once per example, not per step.

`lorafair train --lora-layers N` adapts layers k..L-1 (k = L - N); layers 0..k-1 and the embeddings never
change while training, so their output at every training example is the same in every step, epoch and
`--seeds` run. It is recorded once (inference mode, the training's dtype: fp32, or bf16 autocast under
--precision bf16), at real tokens only, and each training step replays it into layer k (models/trunk.py's
replayer: layers 0..k-1 return the recorded tensor instead of computing), so a step runs the embeddings
(a lookup), layers k.. and the head.

Exactness: a skipped layer draws no random numbers only if it applies no dropout in training. Qwen2 and
Llama apply none (attention_dropout 0): the top layers and the head then run the same operations in the same
order on the same values and draw the same random numbers (LoRA dropout included), so the loss curve and
the adapter equal a run without reuse up to float summation order. BERT-like models drop out in the
embeddings and every layer: `auto` leaves reuse off there, `on` forces it (training then sees the lower
layers without dropout: not the same training; lorafair_run.json says so).

Memory: the states take examples x tokens x hidden x 4 bytes; above a bound (models/trunk.memory_budget,
or $LORAFAIR_TRAIN_TRUNK_BYTES) they are spilled to a np.memmap in a temp folder beside OUTPUT, removed
when the run (or the `--seeds` runs sharing it) ends. States that fit are also kept in the feature cache
(models/trunk_cache.py), keyed so that `compare`'s A1 pass over the adapter's training rows replays them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from lorafair.models import feature_cache, trunk, trunk_cache
from lorafair.models.inference import Encoded, length_sorted_batches

log = logging.getLogger(__name__)

INDEX = "trunk_index"  # the extra column of each training row: which recorded example it is
BYTES_ENV = "LORAFAIR_TRAIN_TRUNK_BYTES"  # bound on the in-memory states; beyond it they go to disk
# config attributes of functional dropout (no nn.Dropout module to find) that would act in the frozen layers
_CONFIG_DROPOUT = ("attention_dropout", "attention_probs_dropout_prob")

_shared_runs: dict | None = None  # key -> _Recorded, while `shared_between_runs` is active (--seeds)


@dataclass
class Summary:
    """What lorafair_run.json's `trunk_reuse` says: what was done and why."""

    mode: str  # the option: auto | on | off
    used: bool = False
    reason: str = "off"  # off | all_layers | no_layers | left_padding | frozen_dropout (auto: off) | forced | exact
    exact: bool | None = None  # used: whether the training equals one without reuse
    shared_layers: int = 0  # k: layers computed once
    total_layers: int = 0
    dropout: list[str] = field(default_factory=list)  # the dropout in the frozen part (reason frozen_dropout/forced)
    source: str | None = None  # computed | earlier_run (--seeds) | feature_cache
    storage: str | None = None  # memory | disk (np.memmap: the states exceed `bound_bytes`)
    bytes: int = 0
    bound_bytes: int = 0
    cache: str | None = None  # stored | too_large | write_failed | unusable | loaded
    seconds: float = 0.0  # recording them

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Recorded:
    states: trunk.TrunkStates
    storage: str
    folder: Path | None  # the spill folder, removed on close
    pooled: trunk_cache.LowerLayers | None = None  # layers 0..k-2 pooled, for compare's layer-wise analysis
    nbytes: int = 0  # the states' size (fp32)


@contextlib.contextmanager
def shared_between_runs():
    """Runs inside share recorded states of equal key (the `--seeds` runs: same data, split, base, max length)."""
    global _shared_runs
    previous, _shared_runs = _shared_runs, {}
    try:
        yield
    finally:
        for recorded in _shared_runs.values():
            _remove(recorded.folder)
        _shared_runs = previous


def memory_bound() -> int:
    try:
        return int(os.environ[BYTES_ENV])
    except (KeyError, ValueError):
        return trunk.memory_budget()


def frozen_dropout(model, path: str, shared: int) -> list[str]:
    """Dropout acting below layer `shared` in training: nn.Dropout modules registered before the layers or in
    layers 0..shared-1 (embeddings, lower layers), and the config's functional attention dropout."""
    import torch

    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    found = [f"{name}={getattr(config, name)}" for name in _CONFIG_DROPOUT if float(getattr(config, name, 0) or 0) > 0]
    below = tuple(f"{path}.{i}." for i in range(shared))
    for name, module in model.named_modules():
        if name == path:  # modules registered after the layers (final norm, pooler, head) run above them
            break
        if isinstance(module, torch.nn.Dropout) and module.p > 0 and (name.startswith(below) or f"{path}." not in name):
            found.append(f"{name}(p={module.p})")
    return found


def decide(mode: str, model, layers: list[int] | None, padding_side: str) -> Summary:
    """Whether to reuse the frozen layers' output (model: the LoRA-wrapped model being trained)."""
    summary = Summary(mode)
    path, module_list = trunk.find_layers(model)
    summary.total_layers = len(module_list) if module_list is not None else 0
    if mode == "off":
        return summary
    if not layers:
        summary.reason = "all_layers"  # LoRA in every layer: nothing stays frozen
        return summary
    if module_list is None:
        summary.reason = "no_layers"
        return summary
    summary.shared_layers = layers[0]
    if padding_side == "left":  # training batches start at varying positions: the recorded states would not match
        summary.reason = "left_padding"
        return summary
    summary.dropout = frozen_dropout(model, path, layers[0])
    if summary.dropout and mode == "auto":
        summary.reason = "frozen_dropout"
        return summary
    summary.used, summary.exact = True, not summary.dropout
    summary.reason = "forced" if summary.dropout else "exact"
    return summary


class _Rows(Mapping):
    """Example -> its recorded (tokens, hidden) tensor, read from one array (in memory or a np.memmap)."""

    def __init__(self, values: np.ndarray, offsets: np.ndarray, dtype):
        self.values, self.offsets, self.dtype = values, offsets, dtype

    def __getitem__(self, example: int):
        import torch

        if not 0 <= example < len(self.offsets) - 1:
            raise KeyError(example)
        start, end = self.offsets[example], self.offsets[example + 1]
        return torch.from_numpy(np.array(self.values[start:end])).to(self.dtype)

    def __iter__(self):
        return iter(range(len(self.offsets) - 1))

    def __len__(self) -> int:
        return len(self.offsets) - 1


class _Stop(Exception):
    """Raised by the hook on layer k-1: the layers above are not needed while recording."""


def _pad(rows: list[dict], batch, pad_token_id: int, device):
    """Right-padded tensors of one batch, as the training collator builds them (no position ids)."""
    import torch

    width = max(len(rows[i]["input_ids"]) for i in batch)
    inputs = {}
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        if key not in rows[batch[0]] and key != "attention_mask":
            continue
        fill = pad_token_id if key == "input_ids" else 0
        tensor = torch.full((len(batch), width), fill, dtype=torch.long)
        for row, i in enumerate(batch):
            values = rows[i][key] if key in rows[i] else [1] * len(rows[i]["input_ids"])
            tensor[row, : len(values)] = torch.tensor(values, dtype=torch.long)
        inputs[key] = tensor.to(device)
    return inputs


def record(model, rows: list[dict], summary: Summary, *, pad_token_id: int, batch_size: int, bf16: bool, spill_in):
    """Run embeddings and layers 0..k-1 once over `rows`; the recorded output of layer k-1 (a `_Recorded`), and
    the outputs of layers 0..k-2 pooled as compare's layer-wise analysis pools them (first / last non-pad)."""
    plan = trunk.TrunkPlan(summary.shared_layers, summary.total_layers, trunk.find_layers(model)[0], "lowest")
    lengths = np.fromiter((len(r["input_ids"]) for r in rows), dtype=np.int64, count=len(rows))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    hidden = int(_text_config(model).hidden_size)
    summary.bytes, summary.bound_bytes = trunk.estimated_bytes(lengths, hidden), memory_bound()
    folder = None
    if summary.bytes > summary.bound_bytes:
        folder = Path(tempfile.mkdtemp(prefix=".lorafair-trunk-", dir=_spill_parent(spill_in)))
        values = np.lib.format.open_memmap(folder / "states.npy", "w+", np.float32, (int(offsets[-1]), hidden))
    else:
        values = np.empty((int(offsets[-1]), hidden), dtype=np.float32)
    pooled = trunk_cache.LowerLayers.empty(len(rows), plan.shared - 1, hidden, pad_token_id)
    recorder = _Capture(plan, values, offsets, pooled, _last_non_pad(rows, pad_token_id))
    layers = model.get_submodule(plan.path)
    hooks = [layer.register_forward_hook(recorder.lower(i)) for i, layer in enumerate(layers[: plan.shared - 1])]
    hooks.append(layers[plan.shared - 1].register_forward_hook(recorder.top))
    try:
        _run_lower_layers(model, rows, lengths, batch_size, bf16, recorder, pad_token_id)
    finally:
        for hook in hooks:
            hook.remove()
    recorder.states.rows = _Rows(values, offsets, recorder.dtype)
    return _Recorded(recorder.states, "disk" if folder else "memory", folder, pooled, summary.bytes)


def _last_non_pad(rows: list[dict], pad_token_id: int) -> np.ndarray:
    """Per example, the position compare's "last" pooling takes: the rightmost token that is not padding."""
    positions = np.zeros(len(rows), dtype=np.int64)
    for i, row in enumerate(rows):
        real = np.flatnonzero(np.asarray(row["input_ids"]) != pad_token_id)
        positions[i] = real[-1] if len(real) else 0
    return positions


class _Capture:
    """Forward hooks of the recording pass (the batch's rows and mask set before each forward)."""

    def __init__(self, plan, values, offsets, pooled, last_positions):
        import torch

        self.states, self.values, self.offsets, self.pooled = trunk.TrunkStates(plan), values, offsets, pooled
        self.last_positions, self.dtype = last_positions, torch.float32
        self.batch = self.mask = None

    def lower(self, index: int):
        def hook(module, args, output):
            hidden = output[0] if isinstance(output, tuple) else output
            for row, example in enumerate(self.batch):
                self.pooled.first[example, index] = hidden[row, 0].float().cpu().numpy()
                self.pooled.last[example, index] = hidden[row, self.last_positions[example]].float().cpu().numpy()

        return hook

    def top(self, module, args, output):
        if isinstance(output, tuple):
            self.states.tuple_len, output = len(output), output[0]
        self.dtype = output.dtype
        for row, example in enumerate(self.batch):
            start, end = self.offsets[example], self.offsets[example + 1]
            self.values[start:end] = output[row][self.mask[row]].float().cpu().numpy()
        raise _Stop


def _run_lower_layers(model, rows, lengths, batch_size: int, bf16: bool, capture: _Capture, pad_token_id: int) -> None:
    import torch

    was_training = model.training
    model.eval()  # no dropout anywhere (the recorded layers apply none where reuse is exact)
    device = next(model.parameters()).device
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    try:
        with torch.inference_mode(), autocast:
            for batch in length_sorted_batches(lengths, batch_size):
                inputs = _pad(rows, batch, pad_token_id, device)
                capture.batch, capture.mask = batch, inputs["attention_mask"].bool()
                with contextlib.suppress(_Stop):
                    model(**inputs)
    finally:
        model.train(was_training)


def _text_config(model):
    return model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config


def _spill_parent(output) -> Path:
    parent = Path(output).resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    return parent


def _remove(folder: Path | None) -> None:
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


class TrunkReuse:
    """One training run's reuse: decided, recorded (or shared/loaded), attached to the Trainer, summarised."""

    def __init__(self, summary: Summary, recorded: _Recorded | None = None, owned: bool = False):
        self.summary, self.recorded, self.owned = summary, recorded, owned

    def trainer_class(self):
        from transformers import Trainer

        return replay_trainer_class() if self.recorded is not None else Trainer

    def attach(self, trainer, model) -> None:
        if self.recorded is not None:
            trainer.trunk_replayer = self.recorded.states.replayer(model)

    def close(self) -> None:
        if self.owned and self.recorded is not None:
            _remove(self.recorded.folder)


def start(
    config, model, layers, tokenizer, train_rows: list[dict], *, base_folder, head_name, bf16: bool
) -> TrunkReuse:
    """Decide; when reusing, get the states (an earlier --seeds run's, the cache's, or record them) and add each
    training row's index (column INDEX) so the Trainer's batches say which recorded examples they hold."""
    summary = decide(config.trunk_reuse, model, layers, tokenizer.padding_side)
    if not summary.used:
        _log_summary(summary)
        return TrunkReuse(summary)
    started = time.perf_counter()
    key, index = _keys(model, train_rows, summary, base_folder, head_name, bf16)
    recorded, owned = _shared_runs.get(key) if _shared_runs is not None else None, False
    summary.source = "earlier_run" if recorded is not None else None
    if recorded is None:
        recorded = _from_cache(key, model, summary)
    if recorded is None:
        recorded = record(
            model,
            train_rows,
            summary,
            pad_token_id=tokenizer.pad_token_id,
            batch_size=config.batch_size,
            bf16=bf16,
            spill_in=config.output,
        )
        summary.source, summary.storage = "computed", recorded.storage
        summary.cache = _to_cache(key, index, recorded, train_rows)
    if _shared_runs is not None:
        _shared_runs[key] = recorded
    else:
        owned = True
    for i, row in enumerate(train_rows):
        row[INDEX] = i
    summary.storage, summary.bytes, summary.bound_bytes = recorded.storage, recorded.nbytes, memory_bound()
    summary.seconds = round(time.perf_counter() - started, 3)
    _log_summary(summary)
    return TrunkReuse(summary, recorded, owned)


def _keys(model, rows: list[dict], summary: Summary, base_folder, head_name, bf16: bool) -> tuple[str, str]:
    """(the states' key, the index key compare looks a subset of the rows up by): models/trunk_cache.py."""
    plain = model.get_base_model() if hasattr(model, "get_base_model") else model
    ids = Encoded([r["input_ids"] for r in rows], None)
    types = _token_types(rows)
    parts = dict(
        base=trunk_cache.weights_key(_PlainNames(plain), [head_name] if head_name else [], base_folder, {}),
        model_type=getattr(plain.config, "model_type", ""),
        shared=summary.shared_layers,
        # bf16 autocast (fp32 weights) computes otherwise than a model run in plain bf16: a name of its own
        dtype="autocast:torch.bfloat16" if bf16 else str(next(model.parameters()).dtype),
        device=str(next(model.parameters()).device),
    )
    key = trunk_cache.states_key(**parts, token_ids=ids.sha256(), token_types=trunk_cache.types_sha(types))
    return key, trunk_cache.index_key(**parts)


def _token_types(rows: list[dict]) -> list | None:
    return [r["token_type_ids"] for r in rows] if rows and "token_type_ids" in rows[0] else None


class _PlainNames:
    """The LoRA-wrapped classifier's parameters under the names of the plain base (what compare fingerprints)."""

    def __init__(self, model):
        self.model = model

    def named_parameters(self):
        for name, param in self.model.named_parameters():
            if "lora_" in name or ".modules_to_save." in name:
                continue
            yield name.replace(".base_layer.", ".").replace(".original_module.", "."), param


def _from_cache(key: str, model, summary: Summary) -> _Recorded | None:
    if feature_cache.unusable():
        return None
    plan = trunk.TrunkPlan(summary.shared_layers, summary.total_layers, trunk.find_layers(model)[0], "lowest")
    found = trunk_cache.load(key, plan)
    if found is None:
        return None
    summary.source, summary.cache = "feature_cache", "loaded"
    nbytes = sum(int(found.states.rows[e].numel()) * 4 for e in found.states.rows)
    return _Recorded(found.states, "memory", None, found.pooled, nbytes)


def _to_cache(key: str, index: str, recorded: _Recorded, rows: list[dict]) -> str:
    if recorded.storage == "disk":
        return "too_large"  # storing would read them all into memory
    if feature_cache.unusable():
        return "unusable"
    digests = trunk_cache.row_digests([r["input_ids"] for r in rows], _token_types(rows))
    try:
        stored = trunk_cache.store(key, recorded.states, recorded.pooled, digests=digests, index=index)
        return "stored" if stored is not None else "too_large"
    except OSError as error:
        log.warning("feature cache: the recorded trunk states could not be stored (%s)", error)
        return "write_failed"


def _log_summary(summary: Summary) -> None:
    if summary.used:
        log.info(
            "trunk reuse: layers 0-%d computed once per example (%s, %.1f MiB in %s, %s)%s",
            summary.shared_layers - 1,
            summary.source,
            summary.bytes / 2**20,
            summary.storage,
            "exact" if summary.exact else "NOT exact: the frozen layers apply dropout in training",
            f"; dropout: {', '.join(summary.dropout)}" if summary.dropout else "",
        )
    else:
        log.info(
            "trunk reuse off (%s)", summary.reason + (f": {', '.join(summary.dropout)}" if summary.dropout else "")
        )


def replay_trainer_class():
    """A transformers Trainer whose training steps replay the recorded states (built here: transformers is
    imported only when training)."""
    from transformers import Trainer

    class TrunkReplayTrainer(Trainer):
        trunk_replayer = None

        def compute_loss(self, model, inputs, *args, **kwargs):
            index = inputs.pop(INDEX, None)
            if index is None or self.trunk_replayer is None:  # evaluation rows: a whole forward
                return super().compute_loss(model, inputs, *args, **kwargs)
            self.trunk_replayer.batch(index.tolist(), inputs["attention_mask"])
            with self.trunk_replayer:
                return super().compute_loss(model, inputs, *args, **kwargs)

    return TrunkReplayTrainer
