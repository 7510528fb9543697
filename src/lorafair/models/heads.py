"""The classification head: every tensor peft saved outside LoRA, how A gets it, and what it consumes.

peft's SEQ_CLS adds "classifier" and "score" to `modules_to_save` and wraps every module whose name
*ends with* one of them (a plain string suffix), so DistilBERT's `pre_classifier` is saved beside
`classifier`, and RoBERTa/ELECTRA's `classifier` is a whole head (`classifier.dense` + `classifier.out_proj`).
The saved file holds them as e.g. `base_model.model.pre_classifier.weight`. A gets *all* of them and
the head hash covers all of them; anything that does not fit the base is an error naming the tensor.

Features (A1, R): the tensor the first module of the head stack receives, pooled where the head pools:
a position-wise `nn.Linear` on a sequence (decoders' `score`) -> the last non-pad token, as the model pools
its logits; a head module that takes a sequence itself (RoBERTa-style `classifier`) -> position 0, which it
takes; a vector (BERT's pooler output, DistilBERT's [CLS] row, DeBERTa's ContextPooler, ModernBERT's
`head` output) -> as it is. `check_features_reproduce_head` proves, on every run, that the installed head
applied to these features gives the model's own logits.
"""

from __future__ import annotations

import copy
import hashlib

from lorafair.core.errors import LorafairError

SEQ_CLS_HEADS = ("classifier", "score")  # what peft adds to modules_to_save for SEQ_CLS
# The layer that outputs the logits, when peft saved a head of a known layout (its rows = number of labels).
OUTPUT_WEIGHTS = ("score.weight", "classifier.weight", "classifier.out_proj.weight", "classifier.linear.weight")
# Functions a classifier applies *between* its saved modules in its own forward (not inside a module).
GLUE_BETWEEN_MODULES = {"distilbert": "relu"}


def owning_module(param_path: str, targets) -> str | None:
    """The outermost module of `param_path` whose name ends with one of `targets` (peft's suffix rule)."""
    parts = param_path.split(".")[:-1]
    for stop in range(1, len(parts) + 1):
        module = ".".join(parts[:stop])
        if any(module.endswith(target) for target in targets):
            return module
    return None


def split_saved_tensors(tensors: dict, targets) -> tuple[dict, list[str], dict]:
    """{saved key: tensor} -> (head {param path: tensor}, head module names in file order, lora {module: tensor}).

    A tensor that is neither LoRA nor inside a `modules_to_save` module is refused by name: lorafair
    would otherwise drop it silently and evaluate a model other than the one trained.
    """
    head, modules, lora = {}, [], {}
    for key, value in tensors.items():
        name = key.removeprefix("base_model.model.")
        name = name.replace("modules_to_save.default.", "").replace(".default.", ".")
        module, _, _ = name.rpartition(".")
        if ".lora_" in f".{module}" or module.endswith(("lora_A", "lora_B")):
            lora[module] = value
            continue
        owner = owning_module(name, targets)
        if owner is None:
            raise LorafairError(
                f"adapter tensor '{key}' is neither LoRA nor part of modules_to_save {list(targets)}: "
                "lorafair cannot evaluate this adapter type"
            )
        head[name] = value
        if owner not in modules:
            modules.append(owner)
    return head, modules, lora


def num_labels_of(head: dict) -> int:
    """Rows of the output layer: a known output weight, else the narrowest saved matrix."""
    for suffix in OUTPUT_WEIGHTS:
        if suffix in head:
            return int(head[suffix].shape[0])
    matrices = [t for t in head.values() if t.dim() == 2]
    if not matrices:
        raise LorafairError(f"the adapter's head ({', '.join(head)}) holds no weight matrix")
    return int(min(t.shape[0] for t in matrices))


def tensor_sha256(tensors: dict) -> str:
    """Hash of named tensors (name, dtype, shape and bytes), so equal hashes mean byte-identical heads."""
    import torch

    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu").contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes())  # raw bytes, any dtype (bf16 too)
    return digest.hexdigest()


def head_tensors(model, modules) -> dict:
    """Every parameter of the head modules, keyed by its path in the classifier (as the adapter names it)."""
    tensors = {}
    for module_name in modules:
        module = _submodule(model, module_name)
        for name, param in module.named_parameters():
            tensors[f"{module_name}.{name}"] = param.detach()
    return tensors


def _submodule(model, name: str):
    try:
        return model.get_submodule(name)
    except AttributeError:
        raise LorafairError(
            f"the adapter's head module '{name}' has no place in the base model "
            f"({type(model).__name__}): the adapter is for another base"
        ) from None


def check_head_fits(model, head: dict, modules) -> None:
    """Every saved tensor has a parameter of its shape, and every parameter of a saved module was saved."""
    expected = head_tensors(model, modules)
    for name, tensor in head.items():
        if name not in expected:
            raise LorafairError(
                f"adapter is for another base: head tensor '{name}' has no place in {type(model).__name__}"
            )
        if tuple(expected[name].shape) != tuple(tensor.shape):
            raise LorafairError(
                f"adapter is for another base: head tensor '{name}' has shape {tuple(tensor.shape)}, "
                f"the base model expects {tuple(expected[name].shape)}"
            )
    unsaved = sorted(set(expected) - set(head))
    if unsaved:  # a partial head: part of A's head would be the base's own (random) weights
        raise LorafairError(
            f"the adapter saved module '{unsaved[0].rpartition('.')[0]}' without '{unsaved[0]}': "
            "refusing to evaluate a partial head"
        )


def install_head(model, head: dict, modules) -> str:
    """Copy every saved head tensor into the model (in its dtype); return the SHA-256 of what is installed."""
    import torch

    check_head_fits(model, head, modules)
    params = head_tensors(model, modules)
    with torch.no_grad():
        for name, tensor in head.items():
            params[name].copy_(tensor.to(params[name].dtype))
    return tensor_sha256(head_tensors(model, modules))


def cast_head(model, modules, dtype) -> None:
    """Give the head modules the backbone's dtype (peft may keep its copy in fp32 in a bf16 model)."""
    for name in modules:
        _submodule(model, name).to(dtype)


def stack_modules(model, modules) -> list[str]:
    """The saved modules that make up the classification head, i.e. those outside the backbone, in model order.

    Saved modules inside the backbone (e.g. an `embed_tokens` a user added to modules_to_save) are
    installed and hashed too, but they run before the features, not on them.
    """
    prefix = getattr(model, "base_model_prefix", "") or ""
    return in_model_order(model, [m for m in modules if not (prefix and (m == prefix or m.startswith(prefix + ".")))])


def in_model_order(model, modules) -> list[str]:
    """Module names sorted as the model defines them (the adapter file lists them alphabetically)."""
    order = {name: i for i, (name, _) in enumerate(model.named_modules())}
    return sorted(modules, key=lambda m: order.get(m, len(order)))


def apply_head(model_type: str, modules: list, features, pooling: str | None):
    """Run a head stack on pooled features, with the glue its classifier puts between the modules."""
    import torch

    x = features.unsqueeze(1) if pooling == "first" else features  # the module takes position 0 itself
    glue = GLUE_BETWEEN_MODULES.get(model_type)
    for position, module in enumerate(modules):
        x = module(x)
        if glue == "relu" and position < len(modules) - 1:
            x = torch.relu(x)
    return x


def fresh_head(model, stack: list[str], *, seed: int) -> list:
    """R's head: copies of the head modules re-initialised by the model's own `_init_weights`, seeded."""
    import torch

    fresh = [copy.deepcopy(_submodule(model, name)).float().cpu() for name in stack]
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        for head in fresh:
            for module in head.modules():
                _forget_initialisation(module)
            for module in head.modules():
                model._init_weights(module)
    return fresh


def zero_output_layer(model) -> str:
    """Zero the weight (and bias) of the layer that outputs the logits; the layers below it keep their init.

    Only the output layer: a zeroed hidden layer (RoBERTa's `classifier.dense`) would stop every gradient.
    """
    import torch

    parameters = dict(model.named_parameters())
    name = next((n for n in OUTPUT_WEIGHTS if n in parameters), None)
    if name is None:
        raise LorafairError(
            f"--head-init zero: no known output layer ({', '.join(OUTPUT_WEIGHTS)}) in {type(model).__name__}"
        )
    with torch.no_grad():
        parameters[name].zero_()
        bias = parameters.get(name.removesuffix("weight") + "bias")
        if bias is not None:
            bias.zero_()
    return name.removesuffix(".weight")


def _forget_initialisation(module) -> None:
    """transformers skips tensors flagged as loaded (`_is_hf_initialized`); a fresh head must not be skipped."""
    for tensor in [module, *module.parameters(recurse=False), *module.buffers(recurse=False)]:
        if hasattr(tensor, "_is_hf_initialized"):
            delattr(tensor, "_is_hf_initialized")


def check_features_reproduce_head(
    model, stack: list[str], features, logits, pooling: str | None, limit: int = 64
) -> float:
    """The installed head run on the captured features must give the model's own logits; returns max |diff|.

    This is what makes R and A1 fair for any architecture: their features are provably what A's head consumed.
    """
    import numpy as np
    import torch

    modules = [model.get_submodule(name) for name in stack]
    param = next(modules[0].parameters())
    x = torch.from_numpy(np.ascontiguousarray(features[:limit])).to(param.device, param.dtype)
    with torch.inference_mode():
        out = apply_head(getattr(model.config, "model_type", ""), modules, x, pooling).float().cpu().numpy()
    expected = np.asarray(logits[:limit], dtype=np.float64)
    diff = float(np.abs(out - expected).max()) if len(expected) else 0.0
    tolerance = (1e-4 if param.dtype == torch.float32 else 3e-2) * max(1.0, float(np.abs(expected).max(initial=0)))
    if diff > tolerance:
        raise LorafairError(
            f"lorafair does not understand the head of {type(model).__name__} ({', '.join(stack)}): run on the "
            f"captured features it is off by {diff:.3g}, so A1 and R cannot be built; use --variants B,A"
        )
    return diff
