"""Several adapters of one base in one run: one frozen pass, one LoRA pass per adapter.

    lorafair compare --adapter outputs/seeds --data builtin:polarity-en:test       # seed-0/, seed-1/, ...
    lorafair compare --adapter run/checkpoints --adapter other_adapter --data test.csv

Recipe: `expand_adapters` turns the --adapter arguments into adapter folders; `plan_sweep` checks that
they share one base, head and label set before any weight loads; the base loads once (`compare.setup_model`)
and one frozen pass captures the head input, from which every adapter's A is its own head applied to those
features (`head_logits_from_features`), and A1 and R are computed once. Then per adapter: merge its LoRA
deltas in place, one pass (B), and restore the touched weights from a CPU snapshot, so the base is
bit-identical before the next adapter. `build_sweep_report` gives every adapter its own report (the same
`reporting.build_report` as a single compare) and the top-level report adds "adapters", "sweep" (Holm-adjusted
p across adapters) and, for seed sets, "across_seeds".
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lorafair.config import CompareConfig
from lorafair.core.errors import LorafairError
from lorafair.core.names import FROZEN_VARIANTS, OWN_HEAD_VARIANTS
from lorafair.evaluation import plan as compare
from lorafair.evaluation import run_info, variants
from lorafair.models import heads, modeling, trunk, weights_fingerprint
from lorafair.models.inference import tokenize

log = logging.getLogger(__name__)

ADAPTERS_DIR = "adapters"  # OUTPUT/adapters/NAME/{report.json, predictions.csv, flips.csv, report.md, report.html}
SHARED_VARIANTS = OWN_HEAD_VARIANTS  # adapter-independent: computed once, shown once at the top level


# ------------------------------------------------------------------------------------ which adapters
def _natural_key(path: Path):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def _adapters_inside(folder: Path) -> list[Path]:
    """Adapters held by a folder that is not one itself: seed-K/, checkpoint-*/, checkpoints/checkpoint-*/."""
    children = [p for p in folder.iterdir() if p.is_dir()] if folder.is_dir() else []
    if (folder / "checkpoints").is_dir():
        children += [p for p in (folder / "checkpoints").iterdir() if p.is_dir()]
    return sorted((p for p in children if (p / modeling.ADAPTER_CONFIG).is_file()), key=_natural_key)


def expand_adapters(specs: list[str]) -> list[Path]:
    """--adapter arguments -> adapter folders, in order, each once. An adapter folder stands for itself."""
    found: list[Path] = []
    for spec in specs:
        path = Path(spec)
        if (path / modeling.ADAPTER_CONFIG).is_file():
            inside = [path]
        else:
            inside = _adapters_inside(path)
            if not inside:
                modeling.read_adapter(path)  # the usual message for a missing or incomplete adapter folder
        found += [p for p in inside if p.resolve() not in {q.resolve() for q in found}]
    return found


def adapter_names(paths: list[Path]) -> list[str]:
    """Folder names, made unique (parent-name) and safe as folder names."""

    def clean(text: str) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "adapter"

    plain = [clean(p.name) for p in paths]
    names = [clean(f"{p.parent.name}-{p.name}") if plain.count(name) > 1 else name for p, name in zip(paths, plain)]
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        seen[name] = seen.get(name, 0) + 1
        names[i] = name if seen[name] == 1 else f"{name}-{seen[name]}"
    return names


def _trainer_step(path: Path) -> int | None:
    state = path / "trainer_state.json"
    if state.is_file():
        return json.loads(state.read_text(encoding="utf-8")).get("global_step")
    return None


def _run_config(path: Path, adapter: modeling.Adapter) -> dict:
    """The training configuration behind an adapter: its lorafair_run.json, or for a checkpoint the run's."""
    if adapter.run_metadata:
        return adapter.run_metadata.config or {}
    resume_config = path.parent / "lorafair_train_config.json"  # OUTPUT/checkpoints/ of a lorafair train run
    return json.loads(resume_config.read_text(encoding="utf-8")) if resume_config.is_file() else {}


def adapter_config_summary(path: Path, adapter: modeling.Adapter) -> dict:
    """{r, alpha, target_modules, layers, steps, seed} from adapter_config.json and the run's records."""
    config, meta = adapter.config, adapter.run_metadata
    targets = config.get("target_modules")
    steps = meta.global_step if meta else None
    return {
        "r": config.get("r"),
        "alpha": config.get("lora_alpha"),
        "target_modules": sorted(targets) if isinstance(targets, list) else targets,
        "layers": config.get("layers_to_transform"),
        "steps": steps if steps is not None else _trainer_step(path),
        "seed": meta.seed if meta and meta.seed is not None else _run_config(path, adapter).get("seed"),
    }


# ------------------------------------------------------------------------------------------ the plan
@dataclass
class SweepPlan:
    base: compare.ComparePlan  # the first adapter's plan: data, evaluation sample, device
    adapters: list  # modeling.Adapter, in sweep order
    names: list
    summaries: list  # adapter_config_summary per adapter
    runs: list  # {"seed", "train_config"} per adapter, for the seed-set test


def plan_sweep(cfg: CompareConfig, paths: list[Path]) -> SweepPlan:
    """Plan the first adapter like a single compare, then check every other one against it."""
    first = compare.plan_compare(dataclasses.replace(cfg, adapter=str(paths[0])))
    if first.ood is not None:  # the OOD passes are per adapter; a sweep does not run them (yet)
        log.warning("--ood-data is not used when several adapters are compared: compare one adapter for it")
    adapters = [first.adapter] + [modeling.read_adapter(p) for p in paths[1:]]
    for path, adapter in zip(paths[1:], adapters[1:]):
        _check_same_base(cfg, first, path, adapter)
    summaries = [adapter_config_summary(p, a) for p, a in zip(paths, adapters)]
    runs = [{"seed": s["seed"], "train_config": _run_config(p, a)} for p, s, a in zip(paths, summaries, adapters)]
    return SweepPlan(first, adapters, adapter_names(paths), summaries, runs)


def _check_same_base(cfg: CompareConfig, first: compare.ComparePlan, path: Path, adapter: modeling.Adapter) -> None:
    from lorafair.assets import builtin as assets

    base = cfg.base_model or adapter.base_model
    resolved = assets.resolve_model(base) if base else None
    if resolved is None or _same_model(resolved, first.base_model) is False:
        raise LorafairError(
            f"all adapters must share one base model: '{first.adapter.path}' is for "
            f"'{first.base_model}', '{path}' for '{resolved}' (compare them in separate runs)"
        )
    if adapter.head_name != first.adapter.head_name or adapter.num_labels != first.adapter.num_labels:
        raise LorafairError(
            f"'{path}' has head '{adapter.head_name}' with {adapter.num_labels} outputs, "
            f"'{first.adapter.path}' '{first.adapter.head_name}' with {first.adapter.num_labels}"
        )
    if adapter.label_names and list(adapter.label_names) != list(first.label_names):
        raise LorafairError(f"'{path}' was trained on labels {adapter.label_names}, the sweep uses {first.label_names}")
    modeling.check_adapter_fits(first.base_model, adapter)


def _same_model(a, b) -> bool:
    a, b = str(a), str(b)
    if Path(a).exists() and Path(b).exists():
        return Path(a).resolve() == Path(b).resolve()
    return a == b


# --------------------------------------------------------------------------- the base, kept exactly
class BaseSnapshot:
    """CPU copies of every parameter a LoRA merge can change (adapted layers and the head), by name.

    `modeling.merge_lora` adds the deltas in place and peft swaps in the adapter's copy of the head; copying
    the saved tensors back restores the base bit for bit (unmerging, W + dW - dW, would not in floating point).
    """

    def __init__(self, model, adapters: list):
        modules = {key.rpartition(".")[0] for adapter in adapters for key in adapter.lora}
        modules |= {m for adapter in adapters for m in adapter.head_modules}
        prefixes = tuple(f"{m}." for m in modules)
        self.saved = {
            name: param.detach().to("cpu", copy=True)
            for name, param in model.named_parameters()
            if name.startswith(prefixes)
        }
        self.fingerprint = _fingerprint(model)

    def restore(self, model) -> None:
        import torch

        params = dict(model.named_parameters())
        missing = set(self.saved) - set(params)
        if missing:
            raise RuntimeError(f"after the merge the model lacks {sorted(missing)[:3]}: cannot restore the base")
        with torch.no_grad():
            for name, tensor in self.saved.items():
                params[name].copy_(tensor)
        now = _fingerprint(model)
        changed = [k for k, v in now.items() if k in self.fingerprint and v != self.fingerprint[k]]
        if changed or set(self.fingerprint) != set(now):
            raise RuntimeError(
                f"the base was not restored after a LoRA merge ({', '.join(changed[:3])}): an "
                "adapter changed weights outside its LoRA modules; compare it on its own"
            )


def _fingerprint(model) -> dict:
    """Per-parameter float64 (sum, sum of squares): a cheap check that no weight outside the snapshot moved
    (an adapter type whose tensors `read_adapter` does not list as LoRA, e.g. embedding LoRA)."""
    return {name: weights_fingerprint.moments(p) for name, p in model.named_parameters()}


def head_logits_from_features(
    adapter: modeling.Adapter, features: np.ndarray, model, pooling: str | None = None
) -> np.ndarray:
    """A of one adapter: its whole saved head stack applied to the captured head input (features).

    The stack is a copy of the model's head modules with this adapter's tensors installed in the head's dtype,
    exactly as `install_head` would put them there, run with the glue its classifier puts between them.
    """
    import copy

    import torch

    stack = heads.stack_modules(model, adapter.head_modules)
    modules = [copy.deepcopy(model.get_submodule(name)) for name in stack]
    params = {
        f"{name}.{key}": param for name, module in zip(stack, modules) for key, param in module.named_parameters()
    }
    with torch.no_grad():
        for name, tensor in adapter.head.items():
            if name in params:
                params[name].copy_(tensor.to(params[name].dtype))
    first = next(modules[0].parameters())
    x = torch.from_numpy(np.ascontiguousarray(features)).to(first.device, first.dtype)
    with torch.inference_mode():
        logits = heads.apply_head(getattr(model.config, "model_type", ""), modules, x, pooling)
    return logits.float().cpu().numpy()


def installed_head_sha256(adapter: modeling.Adapter, model) -> str:
    """SHA-256 of the adapter's head as installed in this model (its head's dtype), as B's hash is taken."""
    installed = heads.head_tensors(model, adapter.head_modules)
    return modeling.tensor_sha256({name: adapter.head[name].to(installed[name].dtype) for name in installed})


# ---------------------------------------------------------------------------------------- the passes
@dataclass
class AdapterRun:
    name: str
    plan: compare.ComparePlan
    results: dict = field(default_factory=dict)  # variant id -> variants.VariantResult (B and A of this adapter)
    outcome: variants.Outcome = field(default_factory=variants.Outcome)


@dataclass
class SweepOutcome:
    shared: variants.Outcome  # the frozen passes and A1 / R
    runs: list  # AdapterRun per adapter
    token_sha: str
    token_seconds: float
    truncated: int = 0  # evaluation examples cut at --max-length
    head: dict | None = None  # report["head"] of the first adapter (every adapter has the same head layout)
    token_lengths: np.ndarray | None = None  # tokens per evaluation example (report["flips"]'s length quartiles)


def lora_pass(run: AdapterRun, session: compare.Session, snapshot: BaseSnapshot) -> variants.VariantResult:
    """B of one adapter: merge in place, one pass, then put the base back exactly."""
    session.head_hash_a = installed_head_sha256(run.plan.adapter, session.model)  # what B's head must equal
    try:
        result = variants.run_variant_b(run.plan, session, run.outcome)
        if any(p["kind"] == "lora_eval" and p["shared_layers"] for p in run.outcome.passes):
            result.speed = None  # a shared-trunk pass is lorafair's cost, not the model's speed (evaluation/speed.py)
        return result
    finally:
        snapshot.restore(session.model)


def _check_tokenizers(plan: SweepPlan, session: compare.Session) -> None:
    """Adapters that ship their own tokenizer must tokenise the evaluation set exactly as the first one did."""
    cfg, evaluation = plan.base.cfg, plan.base.examples.subset(plan.base.eval_idx)
    expected = session.encoded.sha256()
    for adapter in plan.adapters[1:]:
        if not any(adapter.path.glob("tokenizer*")):
            continue
        tokenizer = modeling.load_tokenizer(adapter.path, plan.base.base_model)
        encoded = tokenize(tokenizer, evaluation.texts, evaluation.text_pairs, max_length=cfg.max_length)
        if encoded.sha256() != expected:
            raise LorafairError(
                f"the tokenizer saved with '{adapter.path}' gives other token ids than the one of "
                f"'{plan.adapters[0].path}': these adapters cannot share one evaluation pass"
            )


def run_sweep_variants(plan: SweepPlan, session: compare.Session) -> SweepOutcome:
    """One frozen pass (every A, A1, R), then one LoRA pass per adapter with the base restored after each."""
    base, wanted = plan.base, set(plan.base.variants)
    _check_tokenizers(plan, session)
    shared = variants.Outcome()
    runs = [
        AdapterRun(
            name,
            dataclasses.replace(base, adapter=adapter, cfg=dataclasses.replace(base.cfg, adapter=str(adapter.path))),
        )
        for name, adapter in zip(plan.names, plan.adapters)
    ]
    lora = {key: None for adapter in plan.adapters for key in adapter.lora}  # every adapter's LoRA modules
    session.trunk_plan = trunk.plan_trunk(session.model, lora, enabled=not base.cfg.no_shared_trunk)
    if wanted & set(FROZEN_VARIANTS):
        frozen = variants.run_frozen(base, session, shared)
        if "R" in wanted:
            shared.results["R"] = variants.run_variant_r(base, session, frozen)
        if "A1" in wanted:
            a1 = variants.run_variant_a1(base, session, frozen, shared)
            if a1 is not None:
                shared.results["A1"] = a1
        if "A" in wanted:
            cached = any(p["kind"] == "frozen_eval" and p["cached"] for p in shared.passes)
            speed = None if cached else frozen.speed(len(base.eval_idx))  # a hit's seconds are the first run's
            for run in runs:
                logits = head_logits_from_features(
                    run.plan.adapter, frozen.features, session.model, frozen.feature_pooling
                )
                run.results["A"] = variants.VariantResult(
                    logits, installed_head_sha256(run.plan.adapter, session.model), speed
                )
        del frozen
    if "A1" not in shared.results:
        shared.notes.append(variants.a1_absent_note(base))
    if "B" in wanted:
        snapshot = BaseSnapshot(session.model, plan.adapters)
        for run in runs:
            run.results["B"] = lora_pass(run, session, snapshot)
        del snapshot
    head = run_info.head_section(base, session, shared)
    return SweepOutcome(
        shared,
        runs,
        session.encoded.sha256(),
        session.encoded.seconds,
        session.encoded.truncated,
        head,
        session.encoded.lengths,
    )
