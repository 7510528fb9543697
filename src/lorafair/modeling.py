"""Backbones, heads and adapters: everything that builds the compared variants.

The variants share one set of base weights (loaded once):
  A  = the plain base classifier with the head tensors copied in from the adapter,
  B  = the same model after peft loads the adapter and `merge_and_unload()` folds the LoRA deltas in.
A is never built with `PeftModel.disable_adapter()`: peft then runs the *original* (random) head
through `ModulesToSaveWrapper`, which is exactly the unfair comparison lorafair exists to avoid.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from lorafair.errors import LorafairError

log = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
RUN_METADATA = "lorafair_run.json"
HEAD_NAMES = ("score", "classifier")  # peft's SEQ_CLS modules_to_save: decoders / BERT family
_PREFIX = "base_model.model."


@dataclass
class Adapter:
    """What a saved SEQ_CLS LoRA adapter holds, read without touching any model."""

    path: Path
    config: dict
    head_name: str
    head: dict  # {"weight": Tensor (K, d), "bias": Tensor (K,)?} exactly as saved
    lora: dict  # LoRA tensors keyed by module path inside the base model, e.g. "model.layers.0.self_attn.q_proj.lora_A"
    run_metadata: dict | None = None
    base_model: str | None = None
    label_names: list[str] | None = field(default=None)

    @property
    def num_labels(self) -> int:
        return int(self.head["weight"].shape[0])


def read_adapter(path: str | Path) -> Adapter:
    """Validate an adapter folder and read its head and LoRA tensors (errors say what should be there)."""
    path = Path(path)
    if not path.is_dir():
        raise LorafairError(f"adapter folder not found: '{path}' (expected the folder written by save_pretrained)")
    config_file, weights_file = path / ADAPTER_CONFIG, path / ADAPTER_WEIGHTS
    for needed in (config_file, weights_file):
        if not needed.is_file():
            raise LorafairError(
                f"'{needed.name}' missing in '{path}': an adapter folder needs {ADAPTER_CONFIG} and "
                f"{ADAPTER_WEIGHTS} (save with model.save_pretrained(dir) after training)"
            )
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LorafairError(f"could not read '{config_file}': {exc}") from exc

    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(weights_file))
    except (SafetensorError, OSError, ValueError) as exc:
        raise LorafairError(f"could not read '{weights_file}': {exc}") from exc

    head_candidates = list(config.get("modules_to_save") or [])
    head_name, head, lora = None, {}, {}
    for key, value in tensors.items():
        name = key[len(_PREFIX):] if key.startswith(_PREFIX) else key
        name = name.replace("modules_to_save.default.", "").replace(".default.", ".")
        module, _, param = name.rpartition(".")
        if ".lora_" in f".{module}" or module.endswith(("lora_A", "lora_B")):
            lora[module] = value
        elif module in HEAD_NAMES or module in head_candidates:
            if head_name not in (None, module):
                raise LorafairError(f"adapter '{path}' holds two heads ('{head_name}' and '{module}'); expected one")
            head_name = module
            head[param] = value
    if head_name is None or "weight" not in head:
        raise LorafairError(
            f"adapter '{path}' saved no classification head (task_type={config.get('task_type')}, "
            f"modules_to_save={config.get('modules_to_save')}): train with LoraConfig(task_type='SEQ_CLS') "
            "so peft saves 'score'/'classifier'"
        )
    metadata = None
    if (path / RUN_METADATA).is_file():
        metadata = json.loads((path / RUN_METADATA).read_text(encoding="utf-8"))
    label_names = (metadata or {}).get("label_names")
    return Adapter(path, config, head_name, head, lora, metadata, config.get("base_model_name_or_path"), label_names)


def tensor_sha256(tensors: dict) -> str:
    """Hash of named tensors (name, dtype, shape and bytes), so equal hashes mean byte-identical heads."""
    import torch

    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu").contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes())  # raw bytes, any dtype (bf16 too)
    return digest.hexdigest()


def head_module(model, head_name: str):
    """The classification head module (`score` / `classifier`) of a transformers classifier."""
    module = getattr(model, head_name, None)
    if module is None:
        raise LorafairError(f"the model has no '{head_name}' head; it is a {type(model).__name__}")
    return module


def head_tensors(model, head_name: str) -> dict:
    return {name: param.detach() for name, param in head_module(model, head_name).named_parameters()}


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
    """Shape-check the head and LoRA tensors on a weightless (meta) copy of the base, before loading weights."""
    import torch
    from transformers import AutoModelForSequenceClassification

    with torch.device("meta"):
        skeleton = AutoModelForSequenceClassification.from_config(base_config(base_model, adapter.num_labels))
    params = dict(head_module(skeleton, adapter.head_name).named_parameters())
    for name, tensor in adapter.head.items():
        if name not in params:
            raise LorafairError(f"head tensor '{adapter.head_name}.{name}' has no place in the base model's head")
        if tuple(params[name].shape) != tuple(tensor.shape):
            raise LorafairError(
                f"adapter is for another base: '{adapter.head_name}.{name}' has shape {tuple(tensor.shape)}, "
                f"the base model expects {tuple(params[name].shape)}"
            )
    check_lora_shapes(skeleton, adapter)


def load_base_classifier(base_model: str | Path, num_labels: int, *, dtype=None, device="cpu", label_names=None):
    """The base model as AutoModelForSequenceClassification (its new head is replaced right after)."""
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
        model = AutoModelForSequenceClassification.from_pretrained(
            str(base_model), config=config, dtype=dtype or torch.float32
        )
    finally:
        hf_logging.set_verbosity(verbosity)
    return model.to(device).eval().requires_grad_(False)


def install_head(model, adapter: Adapter) -> str:
    """Copy the adapter's head tensors into the model's head; return the SHA-256 of what is installed."""
    import torch

    params = dict(head_module(model, adapter.head_name).named_parameters())
    for name, tensor in adapter.head.items():
        if name not in params or tuple(params[name].shape) != tuple(tensor.shape):
            raise LorafairError(f"head tensor '{adapter.head_name}.{name}' {tuple(tensor.shape)} does not fit the "
                                "base model's head: the adapter is for another base")
    with torch.no_grad():
        for name, tensor in adapter.head.items():
            params[name].copy_(tensor.to(params[name].dtype))
    return tensor_sha256(head_tensors(model, adapter.head_name))


def check_lora_shapes(model, adapter: Adapter) -> None:
    """Fail with the tensor's name when a LoRA matrix does not fit the base (an adapter for another model)."""
    modules = dict(model.named_modules())
    for key, tensor in adapter.lora.items():
        target_path, _, kind = key.rpartition(".")
        if kind not in ("lora_A", "lora_B"):
            continue  # embedding / DoRA tensors: peft checks those itself
        target = modules.get(target_path)
        if target is None or not hasattr(target, "in_features"):
            raise LorafairError(f"adapter is for another base: the base model has no module '{target_path}' ({key})")
        expected = (tensor.shape[0], target.in_features) if kind == "lora_A" else (target.out_features, tensor.shape[1])
        if tuple(tensor.shape) != tuple(expected):
            raise LorafairError(
                f"adapter is for another base: '{key}' has shape {tuple(tensor.shape)}, the base model needs {expected}"
            )


def merge_lora(model, adapter: Adapter):
    """B: load the adapter onto `model` (in place) and merge it, giving a plain model for fair timing."""
    from peft import PeftModel

    check_lora_shapes(model, adapter)
    with warnings.catch_warnings():  # peft 0.21 still calls transformers' deprecated is_gradient_checkpointing
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        peft_model = PeftModel.from_pretrained(model, str(adapter.path), is_trainable=False)
        merged = peft_model.merge_and_unload()
    return merged.eval().requires_grad_(False)


def random_head(hidden_size: int, num_labels: int, *, seed: int, std: float = 0.02, bias: bool = False) -> dict:
    """R's head: freshly initialised like transformers' `_init_weights` (normal(0, initializer_range))."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    head = {"weight": torch.randn(num_labels, hidden_size, generator=generator) * std}
    if bias:
        head["bias"] = torch.zeros(num_labels)
    return head


def hidden_size_of(adapter: Adapter) -> int:
    return int(adapter.head["weight"].shape[1])
