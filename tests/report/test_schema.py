"""report.json's one schema (lorafair.report.schema): every kind of report the commands write validates against it,
a report with an undeclared key is written with a warning (the suite itself validates strictly), and the renderers read nothing the schema does not define.

Every report.json the suite writes is validated by the session hook in conftest.py (REPORTS_SEEN); the fixture
here runs each command that writes one, through its real entry point, so the hook sees every kind in this module
whatever else the session runs.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from jsonschema import Draft202012Validator

from lorafair.cli import main
from lorafair.report import render, schema, write
from lorafair.report.html import render_html
from lorafair.report.write import write_outputs

from conftest import REPORT_KINDS, REPORTS_SEEN, toy_rows, write_csv

ROOT = Path(__file__).resolve().parents[2]
FAST = ["--num-samples", "16", "--bootstrap", "100", "--batch-size", "8", "--max-length", "32"]
SCRIPT_FAST = ["--num_samples", "16", "--batch_size", "8", "--max_length", "32", "--lang", "en"]


def _quietly(call, *args):
    with contextlib.redirect_stdout(io.StringIO()):
        code = call(*args)
    assert code == 0


def _train_seeds(base: Path, root: Path) -> Path:
    """Two seed runs of one configuration, each holding out a quarter of its 48-row training file."""
    train = write_csv(toy_rows(48, seed=21), root / "train.csv")
    argv = ["train", "--base-model", str(base), "--data", str(train), "--seeds", "0,1", "--output", str(root / "seeds")]
    argv += ["--max-steps", "2", "--batch-size", "8", "--lora-r", "2", "--lora-alpha", "4", "--eval-fraction", "0.25"]
    _quietly(main, [*argv, "--max-length", "32", "--learning-rate", "0.01", "--quiet"])
    return root / "seeds"


def _script(path: Path):
    spec = importlib.util.spec_from_file_location(f"entry_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def every_kind(llama_setup, tmp_path_factory):
    """Each command that writes report.json, run once on the tiny Llama: {name: (output folder, hook records)}."""
    root = tmp_path_factory.mktemp("every-kind")
    s = llama_setup
    seeds = _train_seeds(s.base, root)
    data = ["--data", str(s.data)]
    runs = {
        "compare": (main, ["compare", "--adapter", str(s.adapter), *data, *FAST, "--output", str(root / "compare")]),
        "sweep": (
            main,
            ["compare", "--adapter", str(s.adapter), "--adapter", str(s.zero_adapter), *data, *FAST]
            + ["--output", str(root / "sweep")],
        ),
        "seeds": (main, ["compare", "--adapter", str(seeds), *data, *FAST, "--output", str(root / "seeds-report")]),
        "quick": (main, ["quick", "--adapter", str(seeds / "seed-0"), *FAST, "--output", str(root / "quick")]),
        "run_full_eval": (
            _script(ROOT / "model_evaluation" / "run_full_eval.py").main,
            ["--model_path", str(s.adapter), *data, *SCRIPT_FAST, "--output_dir", str(root / "full")],
        ),
        "test_fair_comparison": (
            _script(ROOT / "test_fair_comparison.py").main,
            ["--model_path", str(s.adapter), *data, *SCRIPT_FAST, "--output_dir", str(root / "fair")],
        ),
    }
    out = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LORAFAIR_CACHE", str(root / "cache"))  # quick writes the held-out rows there
        for name, (call, argv) in runs.items():
            before = len(REPORTS_SEEN)
            _quietly(call, argv)
            out[name] = REPORTS_SEEN[before:]
    folders = {name: root / folder for name, folder in (("compare", "compare"), ("seeds", "seeds-report"))}
    folders.update(quick=root / "quick", sweep=root / "sweep")
    return out, folders


def _load(folder: Path) -> dict:
    return json.loads((folder / "report.json").read_text(encoding="utf-8"))


# -- every kind validated ------------------------------------------------------------------------------------------
def test_the_hook_validates_every_kind_of_report_the_commands_write(every_kind):
    seen, _ = every_kind
    kinds = {name: Counter(r["kind"] for r in records) for name, records in seen.items()}
    assert kinds["compare"] == {"compare": 1}
    assert kinds["sweep"] == {"sweep top-level": 1, "sweep adapter": 2}
    assert kinds["seeds"] == {"seed sweep": 1, "sweep adapter": 2}
    assert kinds["quick"] == {"quick": 1}
    assert kinds["run_full_eval"] == {"run_full_eval": 1}
    assert kinds["test_fair_comparison"] == {"test_fair_comparison": 1}
    assert set(REPORT_KINDS) <= {r["kind"] for r in REPORTS_SEEN}


def test_written_reports_validate_read_back_from_disk(every_kind):
    _, folders = every_kind
    for folder in folders.values():
        for path in [folder / "report.json", *sorted(folder.glob("adapters/*/report.json"))]:
            schema.validate(json.loads(path.read_text(encoding="utf-8")))
    assert len(list(folders["seeds"].glob("adapters/*/report.json"))) == 2


def test_the_schema_is_a_valid_draft_2020_12_schema_with_the_fixed_names():
    Draft202012Validator.check_schema(schema.SCHEMA)
    assert schema.SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema.SCHEMA["properties"]["schema_version"]["const"] == 2
    fixed = [  # DESIGN.md §5: the names scripts and users rely on
        ("schema_version",),
        ("config", "alpha"),
        *(("environment", key) for key in ("torch", "transformers", "peft", "device")),
        *(("data", key) for key in ("n", "labels", "token_ids_sha256")),
        *(("variants", v, key) for v in ("A", "B", "A1", "R") for key in ("name", "head_sha256")),
        *(("variants", "B", "metrics", m, k) for m in ("accuracy", "f1", "auc_roc", "ece") for k in ("value", "ci")),
        *(("variants", "A", "speed", k) for k in ("qps", "tokens_per_s", "latency_ms_p50", "latency_ms_p95")),
        *(("deltas", d, "accuracy", k) for d in ("B-A", "B-A1", "A1-A") for k in ("value", "relative", "ci")),
        ("deltas", "B-A", "auc_roc", "p_value"),
        ("deltas", "B-A", "accuracy", "test"),
        ("conclusion", 0),
    ]
    assert [path for path in fixed if not declared(path, {})] == []
    assert not declared(("variants", "C"), {}) and not declared(("data", "nonsense"), {})


def test_every_object_the_schema_defines_is_described_and_closed():
    undescribed, open_objects = [], []
    for path, node in _nodes(schema.SCHEMA, ()):
        if "object" in _types(node) and "properties" in node:
            if not node.get("description"):
                undescribed.append(path)
            if node.get("additionalProperties") is not False and "allOf" not in node:
                open_objects.append(path)
    assert undescribed == [] and open_objects == []


def test_a_key_the_schema_does_not_declare_is_written_with_a_warning(every_kind, tmp_path, monkeypatch, caplog):
    """Outside the suite (which validates strictly), a mismatch must not cost a user the run: the files are
    written and one warning names the mismatch."""
    _, folders = every_kind
    report = _load(folders["compare"])
    report["data"]["surprise"] = 1
    with pytest.raises(schema.ReportSchemaError, match=r"/data: Additional properties are not allowed \('surprise'"):
        schema.validate(report)
    monkeypatch.setattr(write, "write_report_files", write.write_report_files.unchecked)
    n, k = len(report["data"]["indices"]), len(report["data"]["labels"])
    probs = {v: np.full((n, k), 1.0 / k) for v in report["variants"]}
    with caplog.at_level("WARNING", logger="lorafair.report.write"):
        write_outputs(report, probs, np.zeros(n, dtype=int), tmp_path / "new", overwrite=False)
    assert json.loads((tmp_path / "new" / "report.json").read_text(encoding="utf-8"))["data"]["surprise"] == 1
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "does not match its schema" in warning and "surprise" in warning


def test_records_are_checked_by_their_kind(every_kind):
    _, folders = every_kind
    report = _load(folders["compare"])
    at = len(report["notes"])
    report["notes"] += [{"kind": "probe_fit", "C": 1.0}, {"kind": "gossip"}, {"kind": "no_seed_set", "why": "x"}]
    delta = next(i for i, r in enumerate(report["conclusion_records"]) if r["kind"] == "delta")
    report["conclusion_records"][delta]["verdict"] = "great"
    found = schema.errors(report)
    assert f"/notes/{at}: 'cv_accuracy' is a required property" in found
    assert any(e.startswith(f"/notes/{at + 1}/kind: 'gossip' is not one of") for e in found)
    assert f"/notes/{at + 2}: Additional properties are not allowed ('why' was unexpected)" in found
    assert any(e.startswith(f"/conclusion_records/{delta}/verdict: 'great' is not one of") for e in found)
    with pytest.raises(schema.ReportSchemaError, match="/notes/"):
        schema.validate(report)


def test_schema1_reports_render_but_are_not_validated():
    """Reports of schema version 1 (statements as sentences) are kept as written: rendered, never validated."""
    for name in ("compare.json", "sweep.json"):
        old = json.loads((ROOT / "tests" / "report" / "schema1" / name).read_text(encoding="utf-8"))
        assert "/schema_version: 2 was expected" in schema.errors(old)
        assert render.render_markdown(old) and render.render_console(old) and render_html(old)


# -- the renderers read only what the schema defines -----------------------------------------------------------------
class TrackedDict(dict):
    """A report dict that records the path of every key a renderer asks for (present or not)."""

    def __init__(self, data, path, seen):
        super().__init__(data)
        self.path, self.seen = path, seen

    def _at(self, key, value):
        self.seen.add(self.path + (key,))
        return tracked(value, self.path + (key,), self.seen)

    def __getitem__(self, key):
        return self._at(key, super().__getitem__(key))

    def get(self, key, default=None):
        self.seen.add(self.path + (key,))
        return self._at(key, super().__getitem__(key)) if super().__contains__(key) else default

    def __contains__(self, key):
        self.seen.add(self.path + (key,))
        return super().__contains__(key)

    def __iter__(self):
        for key in super().__iter__():
            self.seen.add(self.path + (key,))
            yield key

    def keys(self):
        return list(self.__iter__())

    def items(self):
        return [(key, self._at(key, value)) for key, value in super().items()]

    def values(self):
        return [value for _, value in self.items()]


class TrackedList(list):
    def __init__(self, data, path, seen):
        super().__init__(data)
        self.path, self.seen = path, seen

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        position = index + len(self) if index < 0 else index
        self.seen.add(self.path + (position,))
        return tracked(super().__getitem__(index), self.path + (position,), self.seen)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]


def tracked(value, path=(), seen=None):
    if isinstance(value, dict):
        return TrackedDict(value, path, seen)
    if isinstance(value, list):
        return TrackedList(value, path, seen)
    return value


def _types(node: dict) -> list:
    kind = node.get("type", [])
    return kind if isinstance(kind, list) else [kind]


def _expand(node: dict, value) -> list[dict]:
    """The schema nodes that describe `value` at this place: $ref followed, anyOf/oneOf branches of its type,
    the `then` of every `if kind == K` whose K is the value's kind."""
    if "$ref" in node:
        return _expand(schema.SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[1]], value)
    out = [node]
    for branch in node.get("anyOf", []) + node.get("oneOf", []):
        out += _expand(branch, value)
    for rule in node.get("allOf", []):
        if "if" not in rule:
            out += _expand(rule, value)
        elif isinstance(value, dict) and rule["if"]["properties"]["kind"]["const"] == value.get("kind"):
            out += _expand(rule["then"], value)
    wanted = {dict: "object", list: "array"}.get(type(value))  # None: null, absent or unknown (any shape)
    return [n for n in out if not wanted or not _types(n) or wanted in _types(n)]


def declared(path: tuple, report: dict) -> bool:
    """Whether the schema defines `path` (keys and list positions) of `report`."""
    nodes, value = [schema.SCHEMA], report
    for step in path:
        following = []
        for node in (n for top in nodes for n in _expand(top, value)):
            if isinstance(step, int) and isinstance(node.get("items"), dict):
                following.append(node["items"])
            elif isinstance(step, str) and step in node.get("properties", {}):
                following.append(node["properties"][step])
            elif isinstance(step, str) and isinstance(node.get("additionalProperties"), dict):
                following.append(node["additionalProperties"])
        if not following:
            return False
        nodes = following
        value = value[step] if isinstance(value, (dict, list)) and _has(value, step) else None
    return True


def _has(container, step) -> bool:
    return step in container if isinstance(container, dict) else isinstance(step, int) and step < len(container)


def _nodes(node, path):
    """Every sub-schema of the schema, with where it sits."""
    yield path, node
    for key, child in node.items():
        if isinstance(child, dict):
            yield from _nodes(child, path + (key,))
        elif isinstance(child, list):
            for i, item in enumerate(child):
                if isinstance(item, dict):
                    yield from _nodes(item, path + (key, i))


def _rendered_paths(report: dict) -> set:
    seen: set = set()
    for lang in ("en", "zh"):
        render.render_console(tracked(report, (), seen), lang)
        render.render_markdown(tracked(report, (), seen), lang)
        render_html(tracked(report, (), seen), lang)
    return seen


@pytest.mark.parametrize("which", ["compare", "seeds", "sweep-adapter", "quick"])
def test_renderers_read_only_what_the_schema_defines(every_kind, which):
    """Console, Markdown and HTML in both languages of a compare with analysis, a seed sweep's top level, one of
    its adapters and a quick run on held-out rows: every key path they read is declared by the schema."""
    _, folders = every_kind
    folder = folders["seeds"] / "adapters" / "seed-1" if which == "sweep-adapter" else folders[which]
    report = _load(folder)
    seen = _rendered_paths(report)
    assert sorted(map(str, (p for p in seen if not declared(p, report)))) == []
    must_read = {  # the tracker really follows the renderers into the report
        "compare": [
            ("analysis", "layers", 0, "cka"),
            ("variants", "R", "curves", "roc"),
            ("deltas", "B-A1", "ece"),
            ("diagnosis", 0, "kind"),
        ],
        "seeds": [
            ("across_seeds", "B-A", "accuracy", "per_seed"),
            ("sweep", 0, "p_holm"),
            ("adapters", 1, "config"),
            ("seed_agreement", "layers", 0, "left"),
            ("seed_agreement", "churn", "correctness", "pairwise"),
        ],
        "sweep-adapter": [("notes", 0, "index"), ("fidelity", "prediction_flips"), ("head", "features")],
        "quick": [("data", "held_out", "evaluated_rows"), ("conclusion_records", 0, "sha256")],
    }[which]
    assert [p for p in must_read if p not in seen] == []


def test_the_readme_validation_example_runs(every_kind):
    _, folders = every_kind
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### report.json") :]
    code = section[section.index("```python\n") + len("```python\n") : section.index("```\n", section.index("```py"))]
    path = '"outputs/compare/report.json"'
    assert code.count(path) == 1
    exec(compile(code.replace(path, repr(str(folders["compare"] / "report.json"))), "README.md", "exec"), {})
    broken = folders["compare"].parent / "broken.json"
    report = _load(folders["compare"])
    report["variants"]["B"]["metrics"]["accuracy"]["value"] = "high"
    broken.write_text(json.dumps(report), encoding="utf-8")
    with pytest.raises(schema.ReportSchemaError, match=r"/variants/B/metrics/accuracy/value: 'high' is not of type"):
        exec(compile(code.replace(path, repr(str(broken))), "README.md", "exec"), {})
