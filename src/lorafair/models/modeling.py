"""Backbones, heads and adapters: everything that builds the compared variants.

The variants share one set of base weights (loaded once):
  A  = the plain base classifier with the head tensors copied in from the adapter,
  B  = the same model after peft loads the adapter and `merge_and_unload()` folds the LoRA deltas in.
A is never built with `PeftModel.disable_adapter()`: peft then runs the *original* (random) head
through `ModulesToSaveWrapper`, which is exactly the unfair comparison lorafair exists to avoid.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from lorafair.core.errors import LorafairError
from lorafair.data import run_metadata as lorafair_run
from lorafair.models import heads

log = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
PICKLED_WEIGHTS = "adapter_model.bin"  # peft's torch.save format: never read (unpickling can run code)
SEQ_CLS = "SEQ_CLS"  # the only peft task_type lorafair compares
HEAD_NAMES = heads.SEQ_CLS_HEADS  # peft's SEQ_CLS modules_to_save: decoders' `score`, encoders' `classifier`
tensor_sha256 = heads.tensor_sha256


@dataclass
class Adapter:
    """What a saved SEQ_CLS LoRA adapter holds, read without touching any model."""

    path: Path
    config: dict
    head_modules: list[str]  # every module peft saved outside LoRA, e.g. ["pre_classifier", "classifier"]
    head: dict  # {"classifier.dense.weight": Tensor, ...}: every saved non-LoRA tensor, exactly as saved
    lora: dict  # LoRA tensors keyed by module path inside the base model, e.g. "model.layers.0.self_attn.q_proj.lora_A"
    run_metadata: lorafair_run.RunMetadata | None = None  # its lorafair_run.json (None: a plain peft adapter)
    base_model: str | None = None
    label_names: list[str] | None = field(default=None)

    @property
    def num_labels(self) -> int:
        return heads.num_labels_of(self.head)

    @property
    def head_name(self) -> str:
        """The module that outputs the logits (`score` / `classifier`), last of the saved head modules."""
        named = [m for m in self.head_modules if m.rpartition(".")[2] in HEAD_NAMES]
        return (named or self.head_modules)[-1]


def read_adapter(path: str | Path) -> Adapter:
    """Validate an adapter folder and read its head and LoRA tensors (errors say what should be there).

    Only `adapter_model.safetensors` is ever read: a pickled `adapter_model.bin` can run code when loaded.
    """
    path = Path(path)
    if not path.is_dir():
        raise LorafairError(f"adapter folder not found: '{path}' (expected the folder written by save_pretrained)")
    config = _read_adapter_config(path)
    _check_task_type(path, config)
    weights_file = _safetensors_file(path)

    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(weights_file))
    except (SafetensorError, OSError, ValueError) as exc:
        raise LorafairError(f"could not read '{weights_file}': {exc}") from exc

    targets = list(dict.fromkeys([*(config.get("modules_to_save") or []), *HEAD_NAMES]))
    head, head_modules, lora = heads.split_saved_tensors(tensors, targets)
    if not any(t.dim() == 2 for t in head.values()):
        raise LorafairError(
            f"adapter '{path}' saved no classification head (task_type={config.get('task_type')}, "
            f"modules_to_save={config.get('modules_to_save')}): train with LoraConfig(task_type='SEQ_CLS') "
            "so peft saves 'score'/'classifier'"
        )
    metadata = lorafair_run.read(path)
    label_names = metadata.label_names if metadata else None
    return Adapter(path, config, head_modules, head, lora, metadata, config.get("base_model_name_or_path"), label_names)


def _read_json_object(file: Path) -> dict:
    try:
        value = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LorafairError(f"could not read '{file}': {exc}".splitlines()[0]) from exc
    if not isinstance(value, dict):
        raise LorafairError(f"'{file}' holds a JSON {type(value).__name__}, not an object")
    return value


def _read_adapter_config(path: Path) -> dict:
    config_file = path / ADAPTER_CONFIG
    if not config_file.is_file():
        raise LorafairError(
            f"'{ADAPTER_CONFIG}' missing in '{path}': an adapter folder needs {ADAPTER_CONFIG} and "
            f"{ADAPTER_WEIGHTS} (save with model.save_pretrained(dir) after training)"
        )
    return _read_json_object(config_file)


def _check_task_type(path: Path, config: dict) -> None:
    """Only SEQ_CLS adapters (or older ones with no task_type, checked for a saved head afterwards) compare.

    peft loads e.g. a CAUSAL_LM adapter as PeftModelForCausalLM, which fails deep inside on a classifier;
    and such an adapter trained no classification head, so there is nothing to put on A, B or R.
    """
    task_type = config.get("task_type")
    if task_type and task_type != SEQ_CLS:
        raise LorafairError(
            f"adapter '{path}' has task_type {task_type}, not {SEQ_CLS} (sequence classification): lorafair "
            f"compares {SEQ_CLS} adapters, whose trained classification head peft saves, and can do nothing with "
            f'a {task_type} adapter: it has no trained head to compare; retrain with LoraConfig(task_type="{SEQ_CLS}") '
            "or `lorafair train`"
        )


def _safetensors_file(path: Path) -> Path:
    """adapter_model.safetensors; a lone adapter_model.bin is refused (never unpickled), a stray one ignored."""
    weights_file, pickle_file = path / ADAPTER_WEIGHTS, path / PICKLED_WEIGHTS
    if weights_file.is_file():
        if pickle_file.exists():
            log.info("'%s' is ignored: lorafair reads %s only and never unpickles", pickle_file, ADAPTER_WEIGHTS)
        return weights_file
    if pickle_file.exists():
        raise LorafairError(
            f"'{path}' holds {PICKLED_WEIGHTS} but no {ADAPTER_WEIGHTS}: lorafair reads only safetensors and never "
            f"unpickles a .bin (loading a pickle can run code); if you trust it, convert it once: load it with peft "
            f"(PeftModel.from_pretrained(base, dir)) and save_pretrained(dir, safe_serialization=True)"
        )
    raise LorafairError(
        f"'{ADAPTER_WEIGHTS}' missing in '{path}': an adapter folder needs {ADAPTER_CONFIG} and "
        f"{ADAPTER_WEIGHTS} (save with model.save_pretrained(dir) after training)"
    )


def head_stack(model, adapter: Adapter) -> list:
    """The head modules the features go into (those of the saved modules outside the backbone), in model order."""
    return [model.get_submodule(name) for name in heads.stack_modules(model, adapter.head_modules)]


def head_tensors(model, adapter_or_modules) -> dict:
    """Every parameter of the adapter's saved modules in `model`, keyed as the adapter names them."""
    modules = adapter_or_modules.head_modules if isinstance(adapter_or_modules, Adapter) else [adapter_or_modules]
    return heads.head_tensors(model, modules)


def load_tokenizer(source: str | Path, fallback: str | Path | None = None):
    """The adapter's saved tokenizer if it has one, else the base model's; pad token always set."""
    from transformers import AutoTokenizer

    tried = [s for s in (source, fallback) if s is not None]
    last_error = None
    for candidate in tried:
        if Path(candidate).is_dir() and not any(Path(candidate).glob("tokenizer*")):
            continue
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(candidate))
            break
        except Exception as exc:  # transformers raises OSError/ValueError/HF errors for a missing model
            last_error = exc
    else:
        raise LorafairError(f"no tokenizer found in {' or '.join(map(str, tried))}: {last_error}".splitlines()[0])
    ensure_pad_token(tokenizer)
    return tokenizer


def ensure_pad_token(tokenizer, model=None) -> None:
    """Decoders ship without a pad token; reuse EOS (Qwen2.5: <|endoftext|>) and tell the model config.

    The sequence classifier pools the last non-pad token, so config.pad_token_id must match the tokenizer.
    """
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise LorafairError("the tokenizer has neither a pad nor an EOS token; set one before evaluating")
        tokenizer.pad_token = tokenizer.eos_token
    if model is not None:
        model.config.pad_token_id = tokenizer.pad_token_id
        text_config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
        text_config.pad_token_id = tokenizer.pad_token_id


def base_config(base_model: str | Path, num_labels: int):
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(str(base_model))
    except Exception as exc:
        raise LorafairError(f"could not load base model '{base_model}': {exc}".splitlines()[0]) from exc
    config.num_labels = num_labels
    return config


def check_adapter_fits(base_model: str | Path, adapter: Adapter) -> None:
    """Shape-check every head and LoRA tensor on a weightless (meta) copy of the base, before loading weights."""
    import torch
    from transformers import AutoModelForSequenceClassification

    with torch.device("meta"):
        skeleton = AutoModelForSequenceClassification.from_config(base_config(base_model, adapter.num_labels))
    heads.check_head_fits(skeleton, adapter.head, adapter.head_modules)
    check_lora_shapes(skeleton, adapter)


def load_base_classifier(
    base_model: str | Path,
    num_labels: int,
    *,
    dtype=None,
    device="cpu",
    label_names=None,
    adapter: Adapter | None = None,
):
    """The base model as AutoModelForSequenceClassification (its new head is replaced right after)."""
    model, _ = load_base_classifier_and_head_change(
        base_model, num_labels, dtype=dtype, device=device, label_names=label_names, adapter=adapter
    )
    return model


def load_base_classifier_and_head_change(
    base_model: str | Path,
    num_labels: int,
    *,
    dtype=None,
    device="cpu",
    label_names=None,
    adapter: Adapter | None = None,
):
    """The base classifier with `num_labels` outputs, and what happened to the base's own head.

    The second value is {"base_labels": K, "labels": M} when the base was saved as a K-label classifier and
    its head was replaced by a new M-label one, else None. Any other tensor whose shape differs
    from the checkpoint's is an error. With `adapter`: every weight the base checkpoint lacks or whose shape it
    does not match must be one the adapter saved; otherwise B here would not be the model that was trained
    (e.g. DeBERTa's `pooler`).
    """
    import torch
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    config = base_config(base_model, num_labels)
    if label_names:
        config.id2label = dict(enumerate(label_names))
        config.label2id = {name: i for i, name in enumerate(label_names)}
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "newly initialized score weights" is expected: we replace them
    try:
        model, info = AutoModelForSequenceClassification.from_pretrained(
            str(base_model),
            config=config,
            dtype=dtype or torch.float32,
            output_loading_info=True,
            ignore_mismatched_sizes=True,  # a head for another label count; _replaced_head refuses anything else
        )
    finally:
        hf_logging.set_verbosity(verbosity)
    replaced = _replaced_head(info.get("mismatched_keys") or (), num_labels, adapter)
    if adapter is not None:
        uncovered = sorted(set(info.get("missing_keys") or ()) - set(adapter.head))
        if uncovered:
            raise LorafairError(
                f"the base model has no weights for '{uncovered[0]}' ({len(uncovered)} tensor(s) initialised at "
                "random) and the adapter did not save them: the trained model cannot be rebuilt (add "
                f"'{uncovered[0].split('.')[0]}' to modules_to_save when training)"
            )
    return model.to(device).eval().requires_grad_(False), replaced


def _replaced_head(mismatched, num_labels: int, adapter: Adapter | None) -> dict | None:
    """Check the tensors the base checkpoint holds in another shape: only the classification head may differ.

    `mismatched` holds transformers' (name, shape in the checkpoint, shape in the model) triples.
    """
    if not mismatched:
        return None
    for name, saved, expected in sorted(mismatched, key=lambda item: item[0]):
        part_of_head = name in adapter.head if adapter is not None else heads.owning_module(name, HEAD_NAMES)
        if not part_of_head:
            raise LorafairError(
                f"the base checkpoint's tensor '{name}' has shape {tuple(saved)} where its config gives "
                f"{tuple(expected)}: only the classification head may differ (the weights do not match config.json)"
            )
    saved_shapes = {name: tuple(saved) for name, saved, _ in mismatched}
    output = next((n for n in heads.OUTPUT_WEIGHTS if n in saved_shapes), None)
    matrices = [shape for shape in saved_shapes.values() if len(shape) == 2] or list(saved_shapes.values())
    base_labels = saved_shapes[output][0] if output else min(shape[0] for shape in matrices)
    replaced = {"base_labels": int(base_labels), "labels": int(num_labels)}
    if adapter is None:
        log.info(
            "the base model's %d-label head (%s) was replaced by a new %d-label head",
            base_labels,
            ", ".join(sorted(saved_shapes)),
            num_labels,
        )
    else:
        log.debug("the base model's %d-label head is not used: the adapter's %d-label head is", base_labels, num_labels)
    return replaced


def install_head(model, adapter: Adapter) -> str:
    """Copy every tensor the adapter saved outside LoRA into the model; return the SHA-256 of what is installed."""
    return heads.install_head(model, adapter.head, adapter.head_modules)


def _in_out_features(module) -> tuple[int, int] | None:
    """(in, out) of a layer LoRA can adapt: nn.Linear, or GPT-2's Conv1D (weight stored as (in, out))."""
    if hasattr(module, "in_features") and hasattr(module, "out_features"):
        return int(module.in_features), int(module.out_features)
    if type(module).__name__ == "Conv1D" and hasattr(module, "nf"):
        return int(module.weight.shape[0]), int(module.nf)
    return None


def check_lora_shapes(model, adapter: Adapter) -> None:
    """Fail with the tensor's name when a LoRA matrix does not fit the base (an adapter for another model)."""
    modules = dict(model.named_modules())
    for key, tensor in adapter.lora.items():
        target_path, _, kind = key.rpartition(".")
        if kind not in ("lora_A", "lora_B"):
            continue  # embedding / DoRA tensors: peft checks those itself
        target = modules.get(target_path)
        sizes = _in_out_features(target) if target is not None else None
        if sizes is None:
            raise LorafairError(
                f"adapter is for another base: the base model has no linear module '{target_path}' ({key})"
            )
        expected = (tensor.shape[0], sizes[0]) if kind == "lora_A" else (sizes[1], tensor.shape[1])
        if tuple(tensor.shape) != tuple(expected):
            raise LorafairError(
                f"adapter is for another base: '{key}' has shape {tuple(tensor.shape)}, the base model needs {expected}"
            )


def attach_lora(model, adapter: Adapter):
    """The unmerged LoRA model: peft's PeftModel on `model` (in place), as it was trained."""
    from peft import PeftModel

    check_lora_shapes(model, adapter)
    with warnings.catch_warnings(), _safetensors_only(adapter) as folder:
        # peft 0.21 still calls transformers' deprecated is_gradient_checkpointing
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        peft_model = PeftModel.from_pretrained(model, str(folder), is_trainable=False)
    return peft_model.eval()


@contextmanager
def _safetensors_only(adapter: Adapter):
    """A temporary folder holding only the adapter's config and safetensors file, for peft to load from.

    peft's `load_peft_weights` takes adapter_model.safetensors when present but falls back to torch.load of
    adapter_model.bin (and to the hub) when not, and has no option to forbid that. Given a folder with no
    .bin in it, peft can never unpickle one, whatever happens to the adapter folder meanwhile.
    """
    with tempfile.TemporaryDirectory(prefix="lorafair-adapter-") as folder:
        for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS):
            source, target = (adapter.path / name).resolve(), Path(folder) / name
            try:
                target.symlink_to(source)
            except OSError:  # no symlinks here (e.g. Windows without the privilege): copy instead
                shutil.copyfile(source, target)
        yield Path(folder)


def merge_attached(peft_model, adapter: Adapter):
    """B for timing: fold the LoRA deltas into the weights; returns the plain merged model.

    In bf16/fp16 each adapted layer is merged in fp32 and cast back once (W + BA rounded once, not
    twice), and the head gets the backbone's dtype again, so A and B run their head in the same dtype.
    """
    import torch
    from peft.tuners.tuners_utils import BaseTunerLayer

    dtype = next(peft_model.get_base_model().parameters()).dtype
    half = dtype in (torch.bfloat16, torch.float16)
    for module in peft_model.modules():
        if isinstance(module, BaseTunerLayer) and not module.merged:
            base_layer = module.get_base_layer()
            if half:
                base_layer.to(torch.float32)
            module.merge()
            if half:
                base_layer.to(dtype)
    merged = peft_model.unload()  # the layers are merged already: unload only unwraps them
    heads.cast_head(merged, adapter.head_modules, dtype)
    return merged.eval().requires_grad_(False)


def merge_lora(model, adapter: Adapter):
    """B: load the adapter onto `model` (in place) and merge it, giving a plain model for fair timing."""
    return merge_attached(attach_lora(model, adapter), adapter)


def random_head(model, adapter: Adapter, *, seed: int) -> list:
    """R's head: the whole head stack freshly initialised with the model's own `_init_weights` (seeded), on CPU."""
    return heads.fresh_head(model, heads.stack_modules(model, adapter.head_modules), seed=seed)


@contextmanager
def upcast_to_fp32(model):
    """Run `model` in fp32 inside the block, then give every parameter and buffer its own dtype back.

    bf16 and fp16 values are exactly representable in fp32, so the round trip leaves the weights bit-identical.
    """
    import torch

    tensors = [*model.parameters(), *model.buffers()]
    dtypes = [t.dtype for t in tensors]
    for t in tensors:
        if t.is_floating_point():
            t.data = t.data.to(torch.float32)
    try:
        yield model
    finally:
        for t, dtype in zip(tensors, dtypes):
            t.data = t.data.to(dtype)
