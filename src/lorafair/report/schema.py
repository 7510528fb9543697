"""The one schema of report.json (JSON Schema draft 2020-12, as a Python dict) and `validate`.

    from lorafair.report.schema import SCHEMA, validate
    validate(json.load(open("outputs/compare/report.json")))   # raises ReportSchemaError listing every bad path

Every key lorafair writes is declared here with what it means; every object lorafair defines forbids other
keys (`additionalProperties: false`), so a key added to a report without an entry here fails validation, and
`report/write.py` validates every report before it is written (a bad report never lands). Statements are records
with a "kind"; each list of records enumerates its kinds and declares each kind's fields (`allOf` of
`if kind == K then <K's fields>`), so an error names the field of the record that is wrong.

Shapes by command: `compare` of one adapter writes every top-level key below except "adapters", "sweep",
"across_seeds" and "seed_agreement"; a sweep (several adapters) writes them at its top level (with the shared
variants A1 and R) and one compare-shaped report per adapter in adapters/NAME/report.json; "across_seeds" and
"seed_agreement" only for a seed set.
Reports of schema version 1 (statements as sentences) still render, but are not validated here.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache

from lorafair.config import CompareConfig
from lorafair.core.names import DELTA_KEYS, METRIC_NAMES, VARIANT_IDS

SCHEMA_VERSION = 2  # 2: statements are records with a "kind" (report/words words them); report/build.py writes it
DRAFT = "https://json-schema.org/draft/2020-12/schema"


class ReportSchemaError(ValueError):
    """A report that does not match SCHEMA: a programming error (lorafair wrote a key it does not declare)."""


# -- building blocks ---------------------------------------------------------------------------------------
def _typed(kind, description: str = "", **extra) -> dict:
    out = {"type": kind, **extra}
    if description:
        out["description"] = description
    return out


def _num(description: str = "", null: bool = False) -> dict:
    return _typed(["number", "null"] if null else "number", description)


def _integer(description: str = "", null: bool = False) -> dict:
    return _typed(["integer", "null"] if null else "integer", description)


def _string(description: str = "", null: bool = False, **extra) -> dict:
    return _typed(["string", "null"] if null else "string", description, **extra)


def _boolean(description: str = "") -> dict:
    return _typed("boolean", description)


def _array(items: dict, description: str = "", null: bool = False, **extra) -> dict:
    return _typed(["array", "null"] if null else "array", description, items=items, **extra)


def _ref(name: str, description: str = "") -> dict:
    out = {"$ref": f"#/$defs/{name}"}
    if description:
        out["description"] = description
    return out


def _sha256(description: str, null: bool = False) -> dict:
    return _string(f"{description} (SHA-256, hex)", null, pattern="^[0-9a-f]{64}$")


def _obj(description: str, properties: dict, optional=(), null: bool = False) -> dict:
    """An object lorafair defines: exactly these keys, all required except `optional`."""
    return {
        "type": ["object", "null"] if null else "object",
        "description": description,
        "properties": properties,
        "required": [k for k in properties if k not in optional],
        "additionalProperties": False,
    }


def _mapping(description: str, values: dict) -> dict:
    """A dict whose keys are data (labels, phases, class ids) rather than fixed names."""
    return {"type": "object", "description": description, "additionalProperties": values}


def _records(description: str, kinds: dict[str, dict], optional: dict | None = None) -> dict:
    """A record: {"kind": one of `kinds`, ...that kind's fields}; `optional[kind]` names fields it may omit."""
    optional = optional or {}
    branches = [
        {
            "if": {"properties": {"kind": {"const": kind}}},
            "then": _obj(f"a {kind} record", {"kind": {"const": kind}, **fields}, optional.get(kind, ())),
        }
        for kind, fields in kinds.items()
    ]
    return {
        "type": "object",
        "description": description,
        "properties": {"kind": _string("what the record states; report/words words each kind", enum=list(kinds))},
        "required": ["kind"],
        "allOf": branches,
    }


CI = _array(_num(null=True), "confidence interval [low, high] at 1 - alpha; [null, null] when undefined", null=True)
CI["minItems"] = CI["maxItems"] = 2
METRIC = _string("metric name", enum=list(METRIC_NAMES))
DELTA = _string("delta name: new minus reference variant", enum=list(DELTA_KEYS))
TESTS = ["mcnemar", "delong", "bootstrap", None]
VERDICT = _string(
    "improved / decreased (CI excludes 0 and the paired test agrees), no_difference, or undefined",
    enum=["improved", "decreased", "no_difference", "undefined"],
)


# -- variants and deltas -------------------------------------------------------------------------------------
METRIC_VALUE = _obj(
    "one metric of one variant",
    {
        "value": _num("the metric on the evaluation sample; null when undefined (then `reason` says why)", null=True),
        "ci": CI,
        "reason": _string("why the value is undefined"),
    },
    optional=("ci", "reason"),
)

ROC = _obj(
    "ROC curve (binary: the positive class vs the rest)",
    {
        "fpr": _array(_num(), "false positive rates"),
        "tpr": _array(_num(), "true positive rates"),
        "auc": _num("AUC-ROC"),
    },
)

# -- speed like for like and the measured dtype (evaluation/speed.py, models/dtype_probe.py) ------------------------
SPEED_FIGURES = {
    "qps": _num("examples per second", null=True),
    "tokens_per_s": _num("tokens per second", null=True),
    "latency_ms_p50": _num("median batch latency, ms", null=True),
    "latency_ms_p95": _num("95th percentile batch latency, ms", null=True),
    "seconds": _num("pass time"),
    "peak_memory_bytes": _integer("peak accelerator memory (null on CPU)", null=True),
}
LIKE_FOR_LIKE_PASS = _obj(
    "one full pass (every layer, LoRA merged for B, no shared trunk) over the like-for-like sample, after warm-up",
    {**SPEED_FIGURES, "examples": _integer("examples timed")},
)
SPEED_SECTION = _obj(
    "deployment speed of A and B like for like, and the evaluation passes' own seconds as lorafair's cost",
    {
        "like_for_like": _obj(
            "A and the full merged B over the same first examples of the evaluation sample, in the same batches",
            {
                "examples": _integer("examples in the sample: min(64, n)"),
                "batches": _integer("length-sorted batches of the sample"),
                "A": LIKE_FOR_LIKE_PASS,
                "B": LIKE_FOR_LIKE_PASS,
                "difference": _num("QPS of B / QPS of A - 1", null=True),
                "b_vs_shared_trunk": _obj(
                    "the full merged B's predictions on the sample against B's (shared-trunk) evaluation pass",
                    {
                        "max_abs_logit_diff": _num(),
                        "prediction_mismatches": _integer("sample examples whose predicted class differs"),
                    },
                ),
            },
            null=True,
        ),
        "reason": _string("why there is no like-for-like sample", enum=["needs_a_and_b", "distributed", "not_run"]),
        "a_pass": _obj(
            "the frozen evaluation pass (A, A1's and R's features): lorafair's cost",
            {
                "cached": _boolean("served from the feature cache: no pass ran"),
                "seconds": _num("this run's seconds (null when cached)", null=True),
                "examples": _integer(),
            },
        ),
        "b_pass": _obj(
            "B's evaluation pass: lorafair's cost; with shared layers it is not the model's speed",
            {
                "shared_layers": _integer("layers taken from the frozen pass (0: every layer ran)"),
                "total_layers": _integer(null=True),
                "seconds": _num(),
                "examples": _integer(),
            },
        ),
    },
    optional=("reason", "a_pass", "b_pass"),
)
DTYPE_CHOICE = _obj(
    "how the model dtype was chosen: the option, CUDA's bf16 support, $LORAFAIR_CPU_DTYPE, or the CPU probe",
    {
        "dtype": _string(),
        "source": _string(enum=["option", "cuda", "forced", "measured", "cached"]),
        "matmul_speedup": _num("fp32 / bf16 seconds of a 1024x1024 matmul (best of 3)"),
        "attention_speedup": _num("fp32 / bf16 seconds of scaled_dot_product_attention (8, 12, 128, 64)"),
        "layer_speedup": _num("a layer's estimated speedup: 90% of its time in matmuls, 10% in attention"),
        "threshold": _num("bf16 is chosen when the layer speedup reaches this"),
        "seconds": _num("the probe's own cost (cached: the cost when it ran)"),
    },
    optional=("matmul_speedup", "attention_speedup", "layer_speedup", "threshold", "seconds"),
)
BF16_FLIPS = _obj(
    "the fidelity sample through the unmerged LoRA model in bf16 and in fp32 (the same weights, upcast)",
    {
        "checked": _integer(),
        "flips": _integer("examples whose predicted class bf16 changed"),
        "max_abs_logit_diff": _num(null=True),
    },
)
DTYPE_FLIPS_CHECK = {
    "flips": _integer(),
    "checked": _integer(),
    "tolerance": _num("share of the sample"),
}
# -- end of speed and dtype ----------------------------------------------------------------------------------------

VARIANT = _obj(
    "one variant: B (LoRA model), A (frozen base + the adapter's head), A1 (frozen base + linear probe), "
    "R (frozen base + random head)",
    {
        "name": _string("display name in the run's language"),
        "head_sha256": _sha256("the head tensors this variant runs (A and B: equal)", null=True),
        "metrics": _obj("every metric, with its bootstrap CI", {m: _ref("metric_value") for m in METRIC_NAMES}),
        "confusion_matrix": _array(_array(_integer()), "counts: rows = true label, columns = predicted label"),
        "per_class": _array(
            _obj(
                "one class",
                {
                    "name": _string("label"),
                    "precision": _num(null=True),
                    "recall": _num(null=True),
                    "f1": _num(null=True),
                    "support": _integer("evaluation examples of this class"),
                },
            ),
            "precision, recall, F1 and support per class (null where 0/0)",
        ),
        "curves": _obj(
            "plot data (the HTML report's ROC and reliability plots)",
            {
                "roc": {
                    "description": "binary: one curve; multi-class: one-vs-rest per class id; null with one class",
                    "anyOf": [
                        _ref("roc"),
                        _obj("one-vs-rest curves", {"per_class": _mapping("class id -> curve", _ref("roc"))}),
                        {"type": "null"},
                    ],
                },
                "reliability": _obj(
                    "reliability diagram: top-1 confidence in equal-width bins",
                    {
                        "bin_edges": _array(_num()),
                        "confidence": _array(_num(null=True), "mean confidence per bin (null: empty bin)"),
                        "accuracy": _array(_num(null=True), "accuracy per bin (null: empty bin)"),
                        "count": _array(_integer(), "examples per bin"),
                    },
                ),
            },
        ),
        "speed": _obj(
            "timed full forward pass after warm-up: A's and B's like-for-like sample (see speed), or a variant's own "
            "full pass over the evaluation set in this run (never a cache hit, never B's shared-trunk pass)",
            {**SPEED_FIGURES, "examples": _integer("examples timed (the like-for-like sample)")},
            optional=("examples",),
        ),
        "cross_fitted": _boolean(
            "A1 only: true when A1 was cross-fitted on the evaluation set itself (no probe data recorded or given and "
            "too little beside the evaluation sample; every example scored by a probe fitted on the other folds, "
            "see the probe_cross_fitted note), false when its probe was trained on separate data"
        ),
    },
    optional=("speed", "cross_fitted"),
)

DELTA_ENTRY = _obj(
    "metric(new) - metric(reference) on the same examples, with its paired test",
    {
        "value": _num("the difference (fractions: 0.03 = 3 pp); null when either metric is undefined", null=True),
        "relative": _num("value / the reference variant's value", null=True),
        "ci": CI,
        "p_value": _num("p-value of the paired test (null: none)", null=True),
        "test": _string("mcnemar (accuracy), delong (binary AUC) or bootstrap (CI only)", null=True, enum=TESTS),
        "reason": _string("why the delta or its test is undefined"),
        "verdict": VERDICT,
        "discordant": _array(_integer(), "McNemar's discordant pairs [reference right only, new right only]"),
        "psi": _num("share of discordant pairs"),
        "mde": _num("smallest accuracy difference the exact McNemar test detects at 80% power", null=True),
        "mde_reason": _string("why there is no MDE"),
        "n_for_3pp": _integer("examples needed to detect 3 pp at 80% power", null=True),
        "power": _num("the power the MDE is computed for"),
    },
    optional=("reason", "discordant", "psi", "mde", "mde_reason", "n_for_3pp", "power"),
)

VARIANTS = _obj("per variant id", {v: _ref("variant") for v in VARIANT_IDS}, optional=VARIANT_IDS)
DELTAS = _obj(
    "per delta: B-A (what LoRA changed), B-A1 (beyond the best frozen head), A1-A (head vs feature quality)",
    {key: _obj(f"{key} per metric", {m: _ref("delta_entry") for m in METRIC_NAMES}) for key in DELTA_KEYS},
    optional=DELTA_KEYS,
)


# -- what was run on what ----------------------------------------------------------------------------------
CONFIG_TYPES = {
    "str": _string(),
    "str | None": _string(null=True),
    "int": _integer(),
    "float": _num(),
    "bool": _boolean(),
    "str | list[str]": {"anyOf": [_string(), _array(_string())]},  # one adapter, or a sweep's list
}
NO_OUTPUT_FOLDER = ("output",)  # the Python API compares without an output folder until .write(folder)


def config_schema() -> dict:
    """report["config"]: every CompareConfig field, described by its own help text (the CLI's --help)."""
    properties = {}
    for item in dataclasses.fields(CompareConfig):
        option = "--" + item.name.replace("_", "-")
        kind = "str | None" if item.name in NO_OUTPUT_FOLDER else str(item.type)
        properties[item.name] = {**CONFIG_TYPES[kind], "description": f"{option}: {item.metadata['help']}"}
        if item.metadata.get("choices"):
            properties[item.name]["enum"] = list(item.metadata["choices"])
    return _obj("the comparison's options as run (lorafair compare's options)", properties)


HELD_OUT = _obj(
    "the evaluation rows are the part of the adapter's training file that `lorafair train` held out",
    {
        "from": _string("the training data as given to lorafair train"),
        "path": _string("the training file"),
        "sha256": _sha256("the training file", null=True),
        "rows": _array(_integer(), "every held-out row of the training file (0-based, in file order)"),
        "n": _integer("how many rows were held out"),
        "evaluated_rows": _array(_integer(), "the training-file row of each evaluation example, in data.indices order"),
    },
)

DATA = _obj(
    "the evaluation sample",
    {
        "n": _integer("evaluation examples"),
        "n_available": _integer("examples in the data before sampling"),
        "labels": _array(_string(), "label names in head order (label id = position)"),
        "source": _string("the data file or folder read"),
        "label_counts": _mapping("evaluation examples per label", _integer()),
        "token_ids_sha256": _sha256("the token ids every variant ran on (same inputs, proven)"),
        "tokenize_seconds": _num("tokenisation time"),
        "indices": _array(_integer(), "row of the data of each evaluation example (predictions.csv's index)"),
        "dropped_rows": _integer("rows dropped while loading (empty text or label)"),
        "truncated": _integer("examples truncated at --max-length"),
        "truncated_share": _num("truncated / n"),
        "positive_label": _string("binary: the class precision/recall/F1/AUC are about; null: multi-class", null=True),
        "positive_label_id": _integer("its label id", null=True),
        "held_out": HELD_OUT,
    },
    optional=("held_out",),
)

FEATURES = _obj(
    "what A1 and R are given: where the head's input is pooled",
    {
        "kind": {"const": "features"},
        "pooling": _string("last_non_pad, first or vector (a head that receives a pooled vector)"),
        "module": _string("the head module whose input the features are", null=True),
        "model_type": _string(),
        "model_class": _string(),
        "classifier_pooling": _string(),
    },
    null=True,
)

HEAD = _obj(
    "the adapter's head: every module peft saved beside the LoRA weights (A runs exactly these tensors)",
    {
        "modules": _array(_string(), "head modules in model order"),
        "module": _string("the modules joined by ' + '"),
        "tensors": _array(_string(), "every head tensor"),
        "sha256": _sha256("the head tensors installed in A", null=True),
        "features": FEATURES,
        "A_equals_B": _boolean("A and B ran the same head tensors (the comparison is fair)"),
    },
    optional=("tensors", "sha256", "features"),
)


ENVIRONMENT = _obj(
    "where it ran",
    {
        "torch": _string(),
        "transformers": _string(null=True),
        "peft": _string(null=True),
        "python": _string(),
        "platform": _string(),
        "device": _string(),
        "dtype": _string("model dtype"),
        "dtype_choice": DTYPE_CHOICE,
        "peak_rss_bytes": _integer("this process's peak resident memory", null=True),
        "world_size": _integer("processes (torchrun / accelerate)"),
    },
    optional=("dtype_choice",),  # reports before the CPU dtype probe
)

FIDELITY = _obj(
    "merged vs unmerged B: B is timed merged, and must predict like the trained (unmerged) LoRA model",
    {
        "merged_vs_unmerged_max_abs_logit_diff": _num(null=True),
        "prediction_flips": _integer("checked examples whose prediction the merge changed"),
        "checked_examples": _integer(),
        "merge_dtype": _string("dtype the LoRA deltas were merged in"),
        "model_dtype": _string(),
        "bf16_vs_fp32": BF16_FLIPS,
    },
    optional=("bf16_vs_fp32",),
)

TIMING = _obj(
    "wall time",
    {
        "total_seconds": _num(),
        "phases": _mapping("seconds per phase (plan, load, variants, report)", _num()),
        "forward_pass_seconds": _num("of which forward passes"),
    },
    optional=("phases", "forward_pass_seconds"),  # a sweep's top level: the total only
)


# -- statements as records (report/words words every kind, in English or Chinese) ---------------------------
DELTA_RECORD = {
    "delta": DELTA,
    "metric": METRIC,
    "value": _num("the delta", null=True),
    "ci": CI,
    "p_value": _num(null=True),
    "test": _string("the paired test", null=True, enum=TESTS),
    "alpha": _num("significance level"),
    "verdict": VERDICT,
    "reason": _string("why the delta is undefined", null=True),
}
UNDERPOWERED = {
    "delta": DELTA,
    "metric": METRIC,
    "value": _num("the observed accuracy delta"),
    "mde": _num("smallest difference detectable at 80% power", null=True),
    "n": _integer("evaluation examples"),
    "n_needed": _integer("examples needed to detect the observed delta", null=True),
    "n_for_3pp": _integer("examples needed to detect 3 pp"),
    "growth": _num("the needed examples / n", null=True),
    "exceeds_data": _boolean("more examples than the data holds would be needed"),
    "n_available": _integer("examples the data holds", null=True),
}
CONCLUSION_RECORD = _records(
    "a conclusion: the proof of one head, a delta's verdict, an underpowered delta, a sweep's Holm or across-seed "
    "result",
    {
        "same_head": {"sha256": _sha256("the head both A and B ran")},
        "delta": DELTA_RECORD,
        "underpowered": UNDERPOWERED,
        "holm": {
            "delta": DELTA,
            "metric": METRIC,
            "n_adapters": _integer(),
            "alpha": _num(),
            "significant": _array(_string(), "adapters still significant after Holm-Bonferroni"),
        },
        "across_seeds": {
            "delta": DELTA,
            "metric": METRIC,
            "n_seeds": _integer(),
            "mean": _num("mean delta over the seeds"),
            "sd": _num("sd over the seeds", null=True),
            "ci": CI,
            "verdict": _string(enum=["robust", "not_robust", "variance_unknown"]),
        },
        "seed_churn": {
            "n_seeds": _integer(),
            "n": _integer("evaluation examples"),
            "examples": _integer("examples on which the seeds' B predictions are not all equal"),
            "share": _num("examples / n"),
            "pairwise": _num("mean over pairs of seeds of the share of examples their B predictions differ on"),
            "correct_examples": _integer("examples on which B is right under one seed and wrong under another"),
            "correct_share": _num("correct_examples / n"),
            "correct_pairwise": _num("mean over pairs of seeds of the share of examples their correctness differs on"),
        },
        "seed_subspace": {
            "n_seeds": _integer(),
            "modules": _integer("adapted modules compared"),
            "left": _ref("subspace_similarity", "output side, mean over modules and pairs of seeds"),
            "right": _ref("subspace_similarity", "input side, mean over modules and pairs of seeds"),
            "chance": _ref("subspace_chance"),
        },
    },
)

TASK_KINDS = {
    "unrecorded": {"file": _string("the run metadata file the adapter lacks"), "data": _string(null=True)},
    "training_rows": {"data": _string("the evaluation data", null=True)},
    "other_task": {
        "data": _string("the evaluation data", null=True),
        "train": _string("the adapter's training data", null=True),
        "eval": _string("the adapter's recorded evaluation data", null=True),
    },
    "labels": {"data": _string("evaluation labels, joined"), "train": _string("the adapter's labels, joined")},
}
TASK_CHECK = _records("the evaluation data against the task the adapter's lorafair_run.json records", TASK_KINDS)
CHECK_RECORD = _records(
    "a check: something about the run a reader should look at",
    {
        "speed": {"value": _num("like for like: QPS of B / QPS of A - 1"), "tolerance": _num()},
        "dtype_flips": DTYPE_FLIPS_CHECK,
        "fidelity": {
            "flips": _integer(),
            "checked": _integer(),
            "tolerance": _num(),
            "max_abs_logit_diff": _num(null=True),
            "merge_dtype": _string(null=True),
        },
        "absent_labels": {"labels": _array(_string()), "n_labels": _integer()},
        **TASK_KINDS,
    },
)

NOTE = _records(
    "a note: how the run was done (A1's data, shared layers, the feature cache, a sweep's member)",
    {
        "probe_data": {
            "origin": _string("option (--probe-data) or recorded (the adapter's training data)"),
            "source": _string(),
            "examples": _integer(),
        },
        "probe_training_rows": {"examples": _integer(), "trained": _integer(), "source": _string()},
        "probe_eval_rest": {"examples": _integer(), "data": _string(null=True)},
        "probe_skipped": {},
        "probe_fit": {"C": _num("A1's regularisation"), "cv_accuracy": _num()},
        "probe_cross_fitted": {
            "folds": _integer("stratified folds (5, fewer when a class is small)"),
            "examples": _integer("evaluation examples A1 was cross-fitted on"),
            "data": _string("the evaluation data", null=True),
        },
        "probe_fold_fits": {
            "C": _array(_num(), "each fold's regularisation, chosen by CV inside its training part"),
            "cv_accuracy": _array(_num(), "each fold's inner cross-validated accuracy at that C"),
            "seconds": _num("every fold's fit"),
        },
        "a1_absent": {
            "reason": _string(
                "not_requested (not among --variants) or no_probe_data (too few evaluation examples per class to "
                "cross-fit one)",
                enum=["not_requested", "no_probe_data"],
            )
        },
        "shared_trunk": {
            "shared": _integer("layers B took from the frozen pass"),
            "total": _integer(null=True),
            "reason": _string(null=True),
            "detail": {"description": "what the reason names (a module, a layer)"},
        },
        "trunk_too_large": {"bytes": _integer()},
        "cache_off": {"folder": _string(), "variable": _string(), "error": _string()},
        "cache_write_failed": {"folder": _string(), "error": _string()},
        "sweep_member": {"index": _integer(), "count": _integer()},
        "sweep_a_from_features": {},
        "sweep_base_restored": {},
        "no_seed_set": {},
    },
)

# -- trunk reuse (lorafair train --lora-layers): the A1 probe pass on the lower layers' states training recorded --
TRAINED_TRUNK = {
    "trained_trunk_layers": _integer("layers 0..k-1 replayed from the states lorafair train recorded on these rows")
}
TRAINED_TRUNK_OPTIONAL = {"frozen_probe": ("adapter", "trained_trunk_layers")}
# -- end trunk reuse --

FORWARD_PASS = {
    "examples": _integer(),
    "seconds": _num("0 when cached"),
    "adapter": _string("the sweep adapter this pass was for"),
}
PASS = _records(
    "one forward pass the run made",
    {
        "frozen_eval": {**FORWARD_PASS, "cached": _boolean("served from the feature cache")},
        "frozen_probe": {**FORWARD_PASS, "cached": _boolean("served from the feature cache"), **TRAINED_TRUNK},
        "lora_unmerged": FORWARD_PASS,
        "lora_eval": {
            **FORWARD_PASS,
            "shared_layers": _integer("layers taken from the frozen pass"),
            "total_layers": _integer(null=True),
        },
        "ood_frozen": FORWARD_PASS,
        "ood_lora": {
            **FORWARD_PASS,
            "shared_layers": _integer("layers taken from the frozen OOD pass"),
            "total_layers": _integer(null=True),
        },
    },
    optional={
        **{
            kind: ("adapter",)
            for kind in ("frozen_eval", "frozen_probe", "lora_unmerged", "lora_eval", "ood_frozen", "ood_lora")
        },
        **TRAINED_TRUNK_OPTIONAL,
    },
)


# -- where LoRA changed the features (DESIGN.md §9) ------------------------------------------------------------
ANALYSIS_NOTE = _records(
    "what the analysis computed, and at what cost",
    {
        "analysis_layers": {
            "layers": _integer("hidden states per variant (embeddings + every layer)"),
            "examples": _integer(),
            "dim": _integer(),
            "pooling": _string("last or first"),
            "bytes": _integer("memory the pooled hidden states of A and B took"),
        },
        "analysis_probes": {"C": _num(), "examples": _integer(), "probe_examples": _integer()},
        "analysis_probes_off": {},
        "analysis_cost": {"seconds": _mapping("seconds per part of the analysis, and total", _num())},
        "analysis_weights": {"modules": _integer()},
        "analysis_dora": {},
        "analysis_module_missing": {"module": _string()},
        "analysis_intruders_skipped": {"skipped": _integer(), "modules": _integer(), "max_dim": _integer(null=True)},
        "analysis_lora_probe_pass": {"examples": _integer(), "seconds": _num()},
    },
)

LAYER = _obj(
    "one layer (0 = embeddings): A's and B's pooled hidden states compared",
    {
        "layer": _integer(),
        "cka": _num("linear CKA(A, B)", null=True),
        "cosine": _num("mean cosine(A, B)", null=True),
        "probe_accuracy": _obj(
            "per-layer probe accuracy on the evaluation set (null: not fitted)",
            {"A": _num(null=True), "B": _num(null=True)},
        ),
    },
)

WEIGHT = _obj(
    "one adapted module: ΔW = scaling · B·A against the base weight W",
    {
        "module": _string(),
        "layer": _integer(null=True),
        "kind": _string("the module's name inside its layer, e.g. self_attn.q_proj (the heatmap's column)"),
        "shape": _array(_integer(), "W's shape (out, in)"),
        "rank": _integer("LoRA rank"),
        "scaling": _num(),
        "delta_norm": _num("||ΔW||_F"),
        "delta_norm_ratio": _num("||ΔW||_F / ||W||_F", null=True),
        "effective_rank": _integer("rank holding 90% of ΔW's energy", null=True),
        "intruders": _integer("top-10 singular directions of W + ΔW new to W (null: not computed)", null=True),
        "intruders_skipped": _obj(
            "intruders not computed: the smaller side exceeds --analysis-max-dim",
            {"smaller_side": _integer(), "max_dim": _integer()},
        ),
    },
    optional=("intruders_skipped",),
)

ANALYSIS = _obj(
    "what LoRA did to the features, layer by layer and module by module",
    {
        "layers": _array(LAYER),
        "weights": _array(WEIGHT),
        "summary": _obj(
            "the facts the report leads with",
            {
                "first_layer_cka_below": _obj(
                    "the first layer whose CKA(A, B) falls below the threshold",
                    {"threshold": _num(), "layer": _integer(null=True)},
                ),
                "largest_probe_gain": _obj(
                    "the layer where B's probe gains most over A's", {"layer": _integer(), "gain": _num()}, null=True
                ),
                "top_modules_by_delta_norm_ratio": _array(
                    _obj("a module", {"module": _string(), "delta_norm_ratio": _num()})
                ),
                "total_intruders": _integer(null=True),
                "modules_with_intruders_counted": _integer(),
            },
        ),
        "pooling": _string("where the layers' hidden states are pooled: last or first"),
        "probe": _obj(
            "the per-layer probes (null: not fitted)",
            {"C": _num("A1's cross-validated C"), "train_examples": _integer(), "C_from": _string()},
            null=True,
        ),
        "notes": _array(_ref("analysis_note")),
        "seconds": _mapping("seconds per part of the analysis", _num()),
    },
)


# -- what LoRA changed beyond the task: out-of-domain text (--ood-data; DESIGN.md §12) -----------------------------
BEYOND_NOTE = _records(
    "how the out-of-domain analysis was done, and at what cost",
    {
        "ood_shared_trunk": {
            "shared": _integer("layers of B's OOD pass taken from the frozen OOD pass (0: it ran every layer)"),
            "total": _integer("the model's layers", null=True),
        },
        "ood_trunk_too_large": {"bytes": _integer("memory the recorded shared-layer output would take")},
        "ood_cost": {"seconds": _mapping("seconds per part of the out-of-domain analysis, and total", _num())},
    },
)
BEYOND_REASON = _records(
    "why there is no next-token figure (lm_skipped), or no out-of-domain figure at all (ood_skipped)",
    {
        "lm_skipped": {
            "reason": _string(
                "encoder (no LM head), no_lm_head (neither lm_head.weight nor tied embeddings in the base "
                "checkpoint), no_safetensors (no local .safetensors files), logit_transform (the causal LM changes "
                "logits after its head), shape (the LM head is not vocabulary x hidden), no_next_token (every text "
                "one token long)",
                enum=["encoder", "no_lm_head", "no_safetensors", "logit_transform", "shape", "no_next_token"],
            ),
            "detail": {
                "description": "no_lm_head: 'tied' when the embeddings are tied but absent; logit_transform: the "
                "config field; shape: the LM head's shape",
                "type": ["string", "array", "null"],
            },
        },
        "ood_skipped": {
            "reason": _string(
                "no_lora_variant (B not among --variants), distributed (several processes)",
                enum=["no_lora_variant", "distributed"],
            ),
            "detail": {"type": "null", "description": "always null"},
        },
    },
)
NEXT_TOKEN = _obj(
    "the base's next-token distributions without and with the LoRA backbone, through the base checkpoint's LM head, "
    "over every out-of-domain token that has a next token (null: see reason)",
    {
        "kl_mean": _num("mean per-token KL(base || base+LoRA), nats (the diagnosis reads this key)"),
        "kl_per_token_quantiles": _obj(
            "quantiles of the per-token KL, nats",
            {"p50": _num(), "p90": _num(), "p99": _num(), "max": _num()},
        ),
        "perplexity_base": _num("exp(mean NLL of the next token) under the base"),
        "perplexity_lora": _num("the same under the base with the LoRA backbone"),
        "nll_base": _num("mean NLL of the next token under the base, nats"),
        "nll_lora": _num("the same with LoRA"),
        "tokens": _integer("predicted tokens the figures average over"),
        "lm_head": _obj(
            "the LM head used for both",
            {
                "tensor": _string("its tensor in the base checkpoint: lm_head.weight or the tied input embedding"),
                "tied": _boolean("the input embedding, as tie_word_embeddings makes it"),
                "vocab_size": _integer("rows of the LM head"),
            },
        ),
    },
    null=True,
)
BEYOND_TASK = _obj(
    "what LoRA changed beyond the task: A (frozen base) and B (LoRA) on out-of-domain text (--ood-data)",
    {
        "data": _obj(
            "the out-of-domain texts",
            {
                "source": _string("--ood-data as given (a file or builtin:NAME)"),
                "path": _string("the file read"),
                "n": _integer("texts compared (the seeded sample)"),
                "n_available": _integer("non-empty texts in the file"),
                "dropped_rows": _integer("rows without a text"),
                "indices": _array(_integer(), "the sampled texts' positions among the file's non-empty texts"),
                "tokens": _integer("real tokens of the sampled texts"),
                "truncated": _integer("texts cut at --max-length"),
                "token_ids_sha256": _sha256("the token ids both passes ran on"),
            },
            optional=("tokens", "truncated", "token_ids_sha256"),  # absent when no pass ran (ood_skipped)
        ),
        "pooling": _string("where the layers' hidden states are pooled, as the head pools: last or first", null=True),
        "layers": _array(
            _obj(
                "one layer (0 = embeddings): A's and B's pooled hidden states on the out-of-domain text",
                {
                    "layer": _integer(),
                    "cka": _num("linear CKA(A, B)", null=True),
                    "cosine": _num("mean cosine(A, B)", null=True),
                },
            )
        ),
        "lm": NEXT_TOKEN,
        "reason": {"anyOf": [{"type": "null"}, _ref("beyond_reason")], "description": "why lm (or all) is missing"},
        "notes": _array(_ref("beyond_note")),
        "seconds": _mapping("seconds per part of the out-of-domain analysis, and total", _num()),
    },
)


# -- several adapters of one base (a sweep) --------------------------------------------------------------------
ADAPTER = _obj(
    "one adapter of the sweep (its whole report: adapters/NAME/report.json)",
    {
        "name": _string("the adapter's name (its folder name)"),
        "path": _string(),
        "folder": _string("its report folder, relative to this report"),
        "config": _obj(
            "the adapter's LoRA settings and training run",
            {
                "r": _integer(null=True),
                "alpha": _num(null=True),
                "target_modules": {
                    "description": "list of module names, or peft's regex",
                    "type": ["array", "string", "null"],
                },
                "layers": {"description": "layers_to_transform", "type": ["array", "integer", "null"]},
                "steps": _integer("training steps", null=True),
                "seed": _integer("training seed", null=True),
            },
        ),
        "head_sha256": _sha256("the adapter's head (B's, else A's)", null=True),
        "variants": _ref("variants"),
        "deltas": _ref("deltas"),
    },
)

SWEEP_ROW = _obj(
    "one adapter, delta and metric, with the Holm-adjusted p across the adapters",
    {
        "adapter": _string(),
        "delta": DELTA,
        "metric": METRIC,
        "value": _num(null=True),
        "ci": CI,
        "p_value": _num(null=True),
        "p_holm": _num("Holm-Bonferroni adjusted p across the adapters", null=True),
    },
)

SEED_SUMMARY = _obj(
    "one delta and metric over the seed runs",
    {
        "n_seeds": _integer(),
        "mean": _num(null=True),
        "sd": _num(null=True),
        "ci": CI,
        "per_seed": _array(_num(null=True), "the delta of each seed run, in adapters order"),
    },
)
ACROSS_SEEDS = _obj(
    "seed runs of one training configuration: mean, sd and two-level bootstrap CI of each delta",
    {
        key: _obj(f"{key} per metric", {m: _ref("seed_summary") for m in METRIC_NAMES}, optional=METRIC_NAMES)
        for key in DELTA_KEYS
    },
    optional=DELTA_KEYS,
)

PHI = _obj(
    "Hu et al. (2021)'s subspace similarity φ(i, j) = ‖U_iᵀU_j‖²_F / min(i, j) of two seeds' ΔW = scaling·B·A "
    "(0..1, 1 = the same directions; null where a ΔW is zero)",
    {
        "top1": _num("the top singular direction of each", null=True),
        "energy": _num("the directions holding 90% of ‖ΔW‖²_F, each seed its own count", null=True),
        "rank": _num("every direction of ΔW (its numerical rank)", null=True),
    },
)
PHI_CHANCE = _obj(
    "φ of random directions at the same depths: max(i, j) / d (d: the side's dimension)",
    {"left": _ref("subspace_similarity"), "right": _ref("subspace_similarity")},
)
SIMILARITY = {
    "left": _ref("subspace_similarity", "output side (left singular vectors)"),
    "right": _ref("subspace_similarity", "input side (right singular vectors)"),
    "chance": _ref("subspace_chance"),
}
SEED_PAIR = _array(_integer(), "indices of the two seeds in seed_agreement.adapters", minItems=2, maxItems=2)
DISAGREEMENT = _obj(
    "how often the seeds' B models differ",
    {
        "examples": _integer("examples on which they are not all equal"),
        "share": _num("examples / n"),
        "pairwise": _array(_num(), "per pair of seeds (churn.pairs order): the share of examples they differ on"),
        "pairwise_mean": _num("mean of pairwise"),
    },
)
SEED_AGREEMENT = _obj(
    "seed runs of one configuration: do their LoRA updates point the same way (stats/seed_agreement), do their B "
    "models predict alike",
    {
        "adapters": _array(_string(), "the seed runs' adapter names, in sweep order"),
        "modules": _array(
            _obj(
                "one adapted module: every pair of seeds, and their mean",
                {
                    "module": _string("module path in the base model"),
                    "layer": _integer("transformer layer", null=True),
                    "kind": _string("module name inside the layer, e.g. self_attn.q_proj"),
                    "shape": _array(_integer(), "ΔW's shape, out x in"),
                    "r": _integer("LoRA rank"),
                    "ranks": _array(_integer(), "numerical rank of each seed's ΔW"),
                    "energy_ranks": _array(_integer(), "directions holding 90% of each seed's ‖ΔW‖²_F"),
                    **SIMILARITY,
                    "pairs": _array(
                        _obj("one pair of seeds", {"seeds": SEED_PAIR, **SIMILARITY}), "every pair of seeds"
                    ),
                },
            ),
            "per adapted module (those every seed adapts alike)",
        ),
        "layers": _array(
            _obj(
                "one transformer layer: mean over its modules and every pair of seeds",
                {"layer": _integer(), "modules": _integer(), **SIMILARITY},
            ),
            "per layer",
        ),
        "pairs": _array(
            _obj(
                "one pair of seeds: mean over every module",
                {"seeds": SEED_PAIR, "adapters": _array(_string()), **SIMILARITY},
            ),
            "per pair of seeds",
        ),
        "summary": _obj(
            "every module and pair of seeds",
            {
                "modules": _integer(),
                "n_seeds": _integer(),
                "energy": _num("the energy share of the energy depth (0.9)"),
                **SIMILARITY,
                "most_alike": _ref("seed_extreme_layer"),
                "least_alike": _ref("seed_extreme_layer"),
            },
        ),
        "churn": _obj(
            "B's predictions of every seed on the shared evaluation set",
            {
                "n_seeds": _integer(),
                "n": _integer("evaluation examples"),
                "pairs": _array(SEED_PAIR, "the pairs of seeds, in the order of the pairwise lists"),
                "predictions": _ref("disagreement", "the predicted class"),
                "correctness": _ref("disagreement", "right or wrong"),
                "all_correct": _integer("examples B gets right under every seed"),
                "none_correct": _integer("examples B gets wrong under every seed"),
            },
        ),
        "notes": _array(
            _records(
                "what was left out of the weights' comparison",
                {"seed_weights_dora": {}, "seed_weights_unshared": {"modules": _integer("modules left out")}},
            ),
            "notes on the weights' comparison",
        ),
        "seconds": _obj("cost", {"weights": _num("the subspaces"), "churn": _num("the predictions' churn")}),
    },
    optional=("churn",),
)
EXTREME_LAYER = _obj(
    "the layer with the highest (most_alike) or lowest (least_alike) φ of the 90%-energy output directions",
    {
        "layer": _integer(),
        "value": _num(),
        "side": _string(enum=["left", "right"]),
        "depth": _string(enum=["top1", "energy", "rank"]),
    },
    null=True,
)

# -- what to try next, from the evidence (stats/diagnosis.py; issue 21) ------------------------------------------
TREND = _obj(
    "the training loss over the last tenth of the recorded steps: Theil-Sen slope and one-sided Mann-Kendall test",
    {
        "from_step": _num("the window: steps above this"),
        "to_step": _num("the last step"),
        "points": _integer("logged losses in the window"),
        "min_points": _integer("fewer than this: no slope or test"),
        "slope": _num("Theil-Sen slope, loss per step (null: too few points)", null=True),
        "p_value": _num("one-sided Mann-Kendall p (Kendall's tau of loss vs step < 0)", null=True),
        "relative_drop": _num("the fitted fall over the window / the window's median loss", null=True),
        "falling": _boolean("slope < 0, p < alpha and relative_drop at least 1%"),
        "alpha": _num(),
    },
    null=True,
)
TRAINING = _obj(
    "the adapter's recorded training (its lorafair_run.json; absent without one)",
    {
        "steps": _integer("optimizer steps", null=True),
        "epochs": _num("epochs at the last log", null=True),
        "logged_losses": _integer("training losses in the Trainer's log"),
        "first_loss": _num(null=True),
        "last_loss": _num(null=True),
        "eval_accuracy": _num("accuracy on the held-out part after training, if recorded", null=True),
        "trend": TREND,
    },
)
GAIN_FIELDS = {
    "value": _num("the accuracy delta"),
    "ci": CI,
    "p_value": _num(null=True),
}
DIAGNOSIS_RECORD = _records(
    "what to try next: a rule of stats/diagnosis.py that fired, with the figures that fired it",
    {
        "a1_absent": {"reason": _string("the a1_absent note's reason", null=True)},
        "a1_cross_fitted": {"folds": _integer(null=True), "examples": _integer(null=True)},
        "head_coadapted": {**GAIN_FIELDS, "threshold": _num("A1 - A at least this")},
        "probe_suffices": {**GAIN_FIELDS, "mde": _num("B - A1's MDE at 80% power"), "gain": _num("at most this")},
        "b_a1_underpowered": {
            **GAIN_FIELDS,
            "mde": _num("B - A1's MDE at 80% power (null: none reachable)", null=True),
            "n": _integer("evaluation examples", null=True),
            "n_for_3pp": _integer("examples needed to detect 3 pp", null=True),
        },
        "linear_at_layer": {
            "layer": _integer(),
            "probe_accuracy": _num("A's per-layer probe accuracy there"),
            "b_accuracy": _num(),
        },
        "low_rank": {
            "k": _integer("the largest 90%-energy rank over the modules"),
            "r": _integer("the largest LoRA rank"),
            "modules": _integer(),
            "energy": _num(),
        },
        "train_longer": {
            "slope": _num(),
            "relative_drop": _num(),
            "p_value": _num(),
            "from_step": _num(),
            "to_step": _num(),
            "points": _integer(),
        },
        "backbone_changed": {"kl_mean": _num(), "threshold": _num(), "perplexity_factor": _num("exp(kl_mean)")},
    },
)
# -- end of the diagnosis block -----------------------------------------------------------------------------------


# -- which examples changed: report["flips"] (report/build.flips_section, stats/flips) ---------------------------
FLIP_RATE = _obj(
    "a share of all n examples with its Wilson score interval",
    {
        "value": _num("count / n", null=True),
        "ci": CI,
        "count": _integer("examples in the cell"),
        "n": _integer("evaluation examples"),
        "method": _string("how the CI is computed", enum=["wilson"]),
    },
)
FLIP_EXAMPLE = _obj(
    "one flipped example: the true class's probability under the reference and under the new variant",
    {
        "index": _integer("row in the data file"),
        "label": _string("the true class"),
        "predicted_reference": _string("the reference's predicted class"),
        "predicted_new": _string("the new variant's predicted class"),
        "p_true_reference": _num("the reference's probability of the true class"),
        "p_true_new": _num("the new variant's probability of the true class"),
        "tokens": _integer("input tokens (after truncation)", null=True),
        "text": _string("the text, cut at text_chars characters", null=True),
        "text_truncated": _boolean("the text was longer than text_chars"),
    },
)
FLIP_PAIR = _obj(
    "one pair new - reference: the paired 2x2 table of correctness (McNemar's b = only_reference_right, "
    "c = only_new_right) and the examples that flipped",
    {
        "new": _string("the new variant id (B)"),
        "reference": _string("the reference variant id (A or A1)"),
        "reference_cross_fitted": _boolean("the reference is A1 cross-fitted on the evaluation set itself"),
        "table": _obj(
            "the paired 2x2 table",
            {
                "both_right": _integer(),
                "only_new_right": _integer("fixed: the reference wrong, the new variant right"),
                "only_reference_right": _integer("broken: the reference right, the new variant wrong"),
                "both_wrong": _integer(),
                "n": _integer(),
            },
        ),
        "negative_flip_rate": _ref("flip_rate", "share of examples the reference got right and the new one wrong"),
        "positive_flip_rate": _ref("flip_rate", "share of examples the reference got wrong and the new one right"),
        "fixed": _array(_ref("flip_example"), "the top fixed examples, largest rise of p(true) first"),
        "broken": _array(_ref("flip_example"), "the top broken examples, largest fall of p(true) first"),
    },
)
SLICE_ACCURACY = _obj("an accuracy or a paired accuracy delta on a slice", {"value": _num(null=True), "ci": CI})
SLICE = {
    "n": _integer("examples in the slice"),
    "accuracy": _mapping("variant id -> accuracy (Wilson CI)", _ref("slice_value")),
    "deltas": _mapping("pair new-reference -> accuracy delta (paired bootstrap CI)", _ref("slice_value")),
}
FLIPS = _obj(
    "which examples changed between B and each reference (A, A1), and accuracy slices by class and input length",
    {
        "alpha": _num("1 - the CIs' level"),
        "top": _integer("examples quoted per direction and pair"),
        "text_chars": _integer("quoted texts are cut at this many characters"),
        "pairs": _mapping("pair new-reference (B-A, B-A1) -> its flips", _ref("flip_pair")),
        "slices": _obj(
            "accuracy per true class and per token-length quartile",
            {
                "accuracy_ci": _string("the accuracies' CI", enum=["wilson"]),
                "delta_ci": _string("the deltas' CI (null: --bootstrap 0)", null=True, enum=["paired_bootstrap", None]),
                "by_class": _array(_obj("one true class", {"label": _string(), **SLICE})),
                "by_length": _array(
                    _obj(
                        "one quartile of input tokens; ties at an edge go to the lower quartile (it can be empty)",
                        {
                            "quartile": _integer("1 (shortest) .. 4 (longest)"),
                            "min_tokens": _integer(null=True),
                            "max_tokens": _integer(null=True),
                            **SLICE,
                        },
                    )
                ),
            },
            optional=("by_length",),
        ),
    },
)
FLIPS_DEFS = {
    "flip_rate": FLIP_RATE,
    "flip_example": FLIP_EXAMPLE,
    "flip_pair": FLIP_PAIR,
    "slice_value": SLICE_ACCURACY,
}
# -- end of report["flips"] --------------------------------------------------------------------------------------


# -- report.json -------------------------------------------------------------------------------------------------
SCHEMA = {
    "$schema": DRAFT,
    "$id": "https://lorafair.invalid/report.schema.json",
    "title": "lorafair report.json",
    **_obj(
        "One comparison of a LoRA classifier (B) with its frozen base and the same head (A), a linear probe (A1) "
        "and a random head (R), on the same examples: metrics with CIs, paired deltas, statements as records.",
        {
            "schema_version": {"const": SCHEMA_VERSION, "description": "the shape of this file"},
            "config": config_schema(),
            "environment": ENVIRONMENT,
            "data": DATA,
            "head": HEAD,
            "variants": _ref("variants", "metrics, plots and speed per variant (a sweep's top level: A1 and R)"),
            "deltas": _ref("deltas", "paired differences between variants (a sweep's top level: none)"),
            "forward_passes": _array(_ref("forward_pass"), "every forward pass, in order"),
            "notes": _array(_ref("note"), "how the run was done"),
            "power": _array(_ref("underpowered"), "deltas the sample is too small to settle"),
            "task_checks": _array(_ref("task_check"), "the data against the adapter's recorded task"),
            "conclusion_records": _array(_ref("conclusion_record"), "the conclusion, as records"),
            "check_records": _array(_ref("check_record"), "the checks, as records"),
            "conclusion": _array(_string(), "the conclusion records in English, for scripts"),
            "checks": _array(_string(), "the check records in English, for scripts"),
            "speed_difference": _num("like for like: QPS of B / QPS of A - 1"),
            "speed": SPEED_SECTION,
            "fidelity": FIDELITY,
            "analysis": ANALYSIS,
            "beyond_task": BEYOND_TASK,
            "training": TRAINING,
            "diagnosis": _array(_ref("diagnosis_record"), "what to try next, from the evidence (stats/diagnosis)"),
            "timing": TIMING,
            "adapters": _array(_ref("adapter"), "a sweep: every adapter, in sweep order"),
            "sweep": _array(SWEEP_ROW, "a sweep: every adapter x delta x metric with Holm-adjusted p"),
            "across_seeds": ACROSS_SEEDS,
            "seed_agreement": SEED_AGREEMENT,
            "flips": FLIPS,
        },
        optional=(
            "task_checks",
            "speed_difference",
            "speed",
            "fidelity",
            "analysis",
            "beyond_task",
            "training",
            "diagnosis",
            "timing",
            "adapters",
            "sweep",
            "across_seeds",
            "seed_agreement",
            "flips",
        ),
    ),
    "$defs": {
        "metric_value": METRIC_VALUE,
        "roc": ROC,
        "variant": VARIANT,
        "variants": VARIANTS,
        "delta_entry": DELTA_ENTRY,
        "deltas": DELTAS,
        "forward_pass": PASS,
        "note": NOTE,
        "underpowered": _records("a delta the sample is too small to settle", {"underpowered": UNDERPOWERED}),
        "task_check": TASK_CHECK,
        "conclusion_record": CONCLUSION_RECORD,
        "check_record": CHECK_RECORD,
        "analysis_note": ANALYSIS_NOTE,
        "beyond_note": BEYOND_NOTE,
        "beyond_reason": BEYOND_REASON,
        "adapter": ADAPTER,
        "seed_summary": SEED_SUMMARY,
        "subspace_similarity": PHI,
        "subspace_chance": PHI_CHANCE,
        "disagreement": DISAGREEMENT,
        "seed_extreme_layer": EXTREME_LAYER,
        "diagnosis_record": DIAGNOSIS_RECORD,
        **FLIPS_DEFS,
    },
}


# -- validation --------------------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def validator():
    """The draft 2020-12 validator of SCHEMA (built once; jsonschema is imported only when a report is checked)."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(SCHEMA)


def errors(report: dict) -> list[str]:
    """Every way `report` (as report.json holds it: json.load) departs from SCHEMA, one "/path: message" each."""
    found = sorted(validator().iter_errors(report), key=lambda e: list(map(str, e.absolute_path)))
    return [f"/{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in _leaves(found)]


def _leaves(found) -> list:
    """The errors themselves: for a value that matches none of an anyOf's shapes (a nullable object, a ROC curve of
    either form), the errors of the shape of its type that it misses least, not "not valid under any of"."""
    out = []
    for error in found:
        if not error.context:
            out.append(error)
            continue
        shapes: dict = {}
        for inner in error.context:
            shapes.setdefault(inner.schema_path[0], []).append(inner)
        of_its_type = [e for e in shapes.values() if not any(i.validator == "type" and not i.path for i in e)]
        out += _leaves(min(of_its_type or shapes.values(), key=len))
    return out


def validate(report: dict) -> None:
    """Raise ReportSchemaError listing every path of `report` that does not match SCHEMA; None when it does.

    Pass the report as report.json holds it (`json.load`); `report/write.py` validates exactly that text.
    """
    found = errors(report)
    if found:
        shown = "\n  ".join(found[:20]) + (f"\n  ... and {len(found) - 20} more" if len(found) > 20 else "")
        raise ReportSchemaError(
            f"report.json does not match its schema (lorafair.report.schema, version {SCHEMA_VERSION}):\n  {shown}"
        )
