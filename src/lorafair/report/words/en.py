"""Every English word of the report: names, sentences worded from report.json's records, headings.

`zh.py` holds the same keys with the same {placeholders} (tests/report/test_words.py checks it); the
functions in `words/` pick a table by language and fill it from a record. Nothing else in lorafair
holds report text.
"""

WORDS = {
    "variants": {
        "B": "LoRA model",
        "A": "Frozen base + LoRA head",
        "A1": "Frozen base + linear probe",
        "R": "Base + random head",
    },
    "metrics": {
        "accuracy": "accuracy",
        "f1": "F1",
        "precision": "precision",
        "recall": "recall",
        "auc_roc": "AUC-ROC",
        "log_loss": "log loss",
        "brier": "Brier score",
        "ece": "ECE",
    },
    "deltas": {
        "B-A": "LoRA vs frozen base with the same head",
        "B-A1": "LoRA vs the best frozen head, a linear probe",
        "A1-A": "Linear probe vs LoRA head on frozen features",
    },
    "tests": {"mcnemar": "McNemar", "delong": "DeLong", "bootstrap": "paired bootstrap"},
    # report["conclusion_records"], one sentence per record kind (delta: one per verdict)
    "conclusions": {
        "separator": ": ",
        "same_head": "A and B use the same head: SHA-256 {h}.",
        "improved": "{m} improved by {v} ({level} CI [{lo}, {hi}] pp{p}).",
        "decreased": "{m} decreased by {v} ({level} CI [{lo}, {hi}] pp{p}).",
        "no_difference": "no significant difference in {m} ({v}, {level} CI [{lo}, {hi}] pp{p}).",
        "undefined": "{m} difference undefined ({why}).",
        "positive": "{m} (positive: {label})",
        "positive_class": "Positive class: {label}.",
        "underpowered": "{d} accuracy: the comparison is underpowered: the CI includes 0 and the smallest difference "
        "detectable at 80% power is {mde} (> |delta| = {v}); {need}",
        "grow": "detecting {v} would need about {n} examples (--num-samples x{k:.1f}){avail}; 3 pp needs {n3}.",
        "grow3": "detecting 3 pp would need about {n3} examples (--num-samples x{k:.1f}){avail}.",
        "avail": ", more than the {m} the data holds",
        "holm": "{d} {m}: significant after Holm-Bonferroni across {k} adapters for {s} of them{names}.",
        "robust": "Across {k} seeds, {d} {m}: mean {v} (sd {sd}, 95% CI [{lo}, {hi}]): robust across seeds.",
        "not_robust": "Across {k} seeds, {d} {m}: mean {v} (sd {sd}, 95% CI [{lo}, {hi}]): not robust across seeds "
        "(the CI includes 0).",
        "variance_unknown": "Across {k} seeds, {d} {m}: mean {v}; with fewer than 3 seeds the seed variance is unknown.",
        "seed_subspace": "Across {k} seeds, the LoRA updates (ΔW = scaling·B·A, {modules} modules) share their 90%-energy "
        "directions with subspace similarity {el} on the output side and {er} on the input side (1 = the same "
        "directions; random directions: {cl} and {cr}); all their directions: {rl} and {rr} (random: {crl} and {crr}); "
        "the top direction: {tl} and {tr}.",
        "seed_churn": "Across {k} seeds, B's predictions differ on {share} of the {n} evaluation examples ({examples}; "
        "mean pairwise disagreement {pairwise}); B is right under one seed and wrong under another on {cshare} "
        "({cexamples}; pairwise {cpairwise}).",
    },
    # report["check_records"]
    "checks": {
        # seed_range: schema-1 reports only (report["diagnosis"] replaced it)
        "seed_range": "B - A {m} gain {v} is outside the usual {lo}-{hi} pp: check the training parameters, "
        "LoRA rank/alpha, or train more epochs.",
        "speed": "QPS of B and A differ by {v}: after merging, both do the same FLOPs, so this is measurement "
        "noise or load.",
        "fidelity": "Merged B predicts differently from the unmerged LoRA model on {f} of {n} checked examples (max "
        "|logit difference| {d:.3g}, merged in {dtype}): B's timing is of a model that is not quite the "
        "trained one.",
        "absent_labels": "The evaluation sample holds no example of {labels} ({k} of the head's {n} labels): "
        "the scores say nothing about how well the model recognises {them}.",
        "it": "it",
        "them": "them",
        "unrecorded": "The adapter records no training data (no {file}): lorafair cannot confirm that {data} is "
        "the task it was trained for.",
        "training_rows": "The evaluation data {data} is the adapter's training data: its scores include rows it "
        "was trained on.",
        "other_task": "The evaluation data {data} is not the adapter's recorded task (trained on {train}{eval}): "
        "the scores say little about what it learnt.",
        "recorded_eval": ", evaluated on {spec}",
        "labels": "The evaluation labels ({data}) differ from the labels the adapter was trained on ({train}).",
        "absent": "The evaluation sample holds no example of {labels}, a label the adapter was trained on.",
    },
    # report["notes"], and the notes a renderer words from report["data"], ["head"] and ["fidelity"]
    "notes": {
        "dropped": "{n} rows dropped while loading the data (empty text or label)",
        "truncated": "{n} examples ({share}) truncated to --max-length {m} tokens",
        "held_out": "evaluation rows: {what}",
        "held_out_what": "{n} of the {held} rows held out of {file} when the adapter was trained (rows {rows}, "
        "counted from 0)",
        "modules": "head modules: {m}",
        "features": "features: {f}",
        "fidelity": "merged vs unmerged LoRA ({dtype}, {n} examples): max |logit difference| {d:.3g}, "
        "{flips} prediction flips",
        "pass": "forward pass: {what} ({n} examples)",
        "probe_data": "A1 probe data: {origin} ({source}, {examples} examples)",
        "probe_option": "--probe-data",
        "probe_recorded": "the adapter's recorded training data",
        "probe_training_rows": "A1 probe data: probe trained on the adapter's {examples} training examples ({source})",
        "probe_training_part": "A1 probe data: probe trained on {examples} of the adapter's {trained} training examples "
        "({source}; --probe-samples or the evaluation sample left the others out)",
        "probe_eval_rest": "A1 probe data: {examples} examples of {data} kept disjoint from the evaluation sample",
        "probe_skipped": "A1 probe data: too little data beside the evaluation sample (need 2 per class): A1 skipped "
        "(pass --probe-data or a smaller --num-samples)",
        "probe_fit": "A1 regularisation C = {C:.4g} (cross-validated accuracy {cv_accuracy:.3f})",
        "probe_cross_fitted": "A1 probe data: none recorded or given, and too little beside the evaluation sample: A1 "
        "cross-fitted on the {examples} evaluation examples of {data} ({folds} stratified folds; each fold scored by a "
        "probe trained on the other folds, so no example is scored by a probe that saw it; --probe-data gives a "
        "probe trained on separate data)",
        "probe_fold_fits": "A1 regularisation C per fold: {C} (cross-validated accuracy inside each fold's training "
        "part: {cv_accuracy}; {seconds:.1f} s for every fold's fit)",
        "a1_absent": "No linear probe (A1) in this report: {why}",
        "a1_not_requested": "not among --variants",
        "a1_no_probe_data": "no probe data, and too few evaluation examples per class to cross-fit one",
        "trunk_shared": "B's pass: layers 0-{last} of {total} shared with the frozen pass ({why})",
        "trunk_none": "B's pass: no layers shared: {why}",
        "trunk_cached": "B's pass: no layers shared: the frozen pass came from the feature cache without the "
        "recorded output of layer {layer}, so B ran every layer",
        "trunk_too_large": "shared trunk off: its recorded output would take {gib:.1f} GiB",
        "cache_off": "feature cache off: the feature cache folder '{folder}' (from {variable}) is not usable: "
        "{error}; the frozen passes ran without it",
        "cache_write_failed": "feature cache: an entry could not be written to '{folder}' ({error}); this run is "
        "complete, a later one runs the frozen pass again",
        "sweep_member": "adapter {index} of {count} compared in one run over the same batches (top level: ../../report.json)",
        "sweep_a_from_features": "A of each adapter = its own head applied to the head input captured in the one "
        "frozen pass (float64)",
        "sweep_base_restored": "base weights restored from a snapshot after each adapter's LoRA pass (bit-identical)",
        "no_seed_set": "No across-seed summary: the adapters are not seed runs of one training configuration.",
    },
    # why B shares this many layers with the frozen pass (models/trunk.py's reason codes)
    "trunk_reasons": {
        "off": "--no-shared-trunk",
        "no_layers": "the model's transformer layers were not found",
        "outside": "the adapter changes {detail}, outside the transformer layers",
        "layer_0": "the adapter changes layer 0",
        "lowest": "the adapter's lowest LoRA module is in layer {shared}",
        "too_large": "too large to keep in memory",
    },
    # report["forward_passes"]
    "passes": {
        "frozen_eval": "frozen base, evaluation set (serves A, A1, R)",
        "frozen_probe": "frozen base, probe-training set (A1 only)",
        "lora_unmerged": "LoRA unmerged model, merge-fidelity check (B)",
        "lora_eval": "LoRA merged model, evaluation set (B)",
        "ood_frozen": "frozen base, out-of-domain text (--ood-data)",
        "ood_lora": "LoRA merged model, out-of-domain text (B)",
        "shared": ": layers {first}-{last} only, 0-{k} taken from the frozen pass (shared trunk)",
        "cached": " (cached: features of an earlier run on the same base and token ids; not run again)",
        "adapter": " [{adapter}]",
    },
    # report["head"]["features"]: what A1 and R are given
    "features": {
        "last_non_pad": "last non-pad token of the last hidden state (input of {module})",
        "first": "first token (<s>/[CLS]) of the last hidden state (input of {module}, which pools it there)",
        "vector": "{what} (input of {module})",
        "the_head": "the head",
        "other_model": "the vector {model_class} pools for its head",
        "bert": "BERT's pooler output (tanh dense layer on [CLS])",
        "distilbert": "the first token ([CLS]) of the last hidden state",
        "deberta-v2": "DeBERTa's ContextPooler output (dense layer + activation on [CLS])",
        "modernbert": "ModernBERT's prediction head on the {pooling}-pooled last hidden state",
    },
    # console and Markdown
    "headings": {
        "summary": "Summary",
        "model": "Model",
        "analysis": "Gain analysis",
        "metric": "Metric",
        "reference": "Reference",
        "abs": "Abs. gain",
        "rel": "Rel. gain",
        "ci": "CI",
        "p": "p (test)",
        "conclusion": "Conclusion",
        "speed": "Speed comparison",
        "qps": "QPS",
        "tps": "tokens/s",
        "p50": "p50 ms",
        "p95": "p95 ms",
        "time": "time",
        "memory": "peak memory",
        "speed_diff": "Speed difference (B vs A)",
        "checks": "Checks",
        "notes": "Notes",
        "title": "lorafair report",
        "setup": "Setup",
        "data": "data",
        "token_hash": "token ids SHA-256",
        "head_of": "head of {v}",
        "n": "n",
        "labels": "labels",
        "positive": "positive class",
        "gain_title": "{analysis}: {new} vs {ref} ({key})",
    },
    # the HTML page
    "page": {
        "title": "lorafair report: LoRA model vs frozen base",
        "answer": "What LoRA did",
        "lede": "{n} evaluation examples of {source}; {level} CIs from the paired bootstrap. Green or red: "
        "the CI excludes 0 and the paired test agrees (alpha = {alpha}); grey: no significant difference.",
        "sentence_end": ".",
        "same_head": "A and B share one head (SHA-256 {h}…)",
        "head_differs": "A and B do NOT share the head: the comparison is not fair",
        "holm": "Across adapters (Holm-Bonferroni)",
        "across_seeds": "Across seeds",
        "underpowered": "Power",
        "forest": "Headline deltas with {level} CIs (percentage points)",
        "metrics": "Metrics per variant",
        "gains": "Deltas, every metric",
        "plots": "Plots",
        "roc": "ROC curves",
        "confusion": "Confusion matrices",
        "reliability": "Reliability diagram (calibration)",
        "not_available": "not available in this report",
        "setup": "Setup: data, heads, forward passes, environment",
        "config": "Configuration",
        "data": "Data",
        "heads": "Heads",
        "environment": "Environment",
        "passes": "Forward passes",
        "notes": "Notes",
        "fidelity": "Fidelity (merged vs unmerged B)",
        "source": "source",
        "n": "examples",
        "n_available": "examples available",
        "labels": "labels",
        "positive": "positive class",
        "label_counts": "examples per label",
        "token_hash": "token ids SHA-256",
        "tokenize": "tokenisation time",
        "dropped": "rows dropped",
        "truncated": "examples truncated",
        "held_out": "evaluation rows",
        "module": "head module",
        "modules": "head modules",
        "features": "features",
        "equal": "A and B share the head",
        "yes": "yes",
        "no": "NO",
        "head_of": "head SHA-256 of {v}",
        "total_time": "total time",
        "fid_diff": "max |logit difference|",
        "fid_flips": "prediction flips",
        "fid_n": "examples checked",
        "fid_dtype": "merge dtype",
        "env_peak_rss_bytes": "peak memory (RSS)",
        "env_world_size": "processes",
        "footer": "Rendered from report.json (schema version {schema}) by lorafair {version}.",
    },
    # report["analysis"]: where LoRA changed the features
    "analysis": {
        "heading": "Where LoRA changed the features",
        "first_changed": "First layer with CKA(A, B) < {t}: layer {layer} (0 = embeddings, {last} = last; "
        "CKA {cka:.4f}, cosine {cos:.4f}).",
        "never_changed": "CKA(A, B) >= {t} at every layer: LoRA left the pooled features nearly unchanged.",
        "gain": "Largest B - A probe-accuracy gain: layer {layer} ({gain} pp: A {a:.3f} -> B {b:.3f}).",
        "no_probe": "Per-layer probes: not fitted.",
        "top": "Top modules by ||dW||/||W||: {modules}.",
        "no_weights": "Weights: no adapted module analysed.",
        "intruders": "Intruder dimensions (top-10 directions of W + dW new to W): {total} in {counted} modules"
        "{skipped}.",
        "skipped": "; {n} modules not counted (see notes)",
        "last": "Last layer {layer}: CKA {cka}, cosine {cos}, probe accuracy A {a}, B {b}.",
        "similarity": "CKA and cosine of A and B features by layer",
        "probes": "Probe accuracy by layer",
        "heatmap": "||dW||_F / ||W||_F per layer and module",
        "notes": "What was computed",
        "table": "Per-layer values",
        "table_layer": "Layer",
        "table_cka": "CKA",
        "table_cos": "Cosine",
        "table_a": "Probe A",
        "table_b": "Probe B",
    },
    # report["analysis"]["notes"]
    "analysis_notes": {
        "analysis_layers": "layers: hidden_states[0..{last}] (0 = embeddings) of A and B on the {n} evaluation "
        "examples, pooled at {pooling}; held in memory as 2 x {layers} x {n} x {d} float32 ({mib:.0f} MiB)",
        "pool_last": "the last non-pad token (where the decoder's classifier pools)",
        "pool_first": "the first token ([CLS]; any pooler of the head itself is not applied per layer)",
        "analysis_probes_off": "layers: per-layer probes not fitted (they need variant A1 and its probe data)",
        "analysis_probes": "layers: per-layer probes: standardise + logistic regression with A1's C = {C:.4g} for "
        "every layer of A and B, fitted on {n} probe-data examples{subset}, scored on the evaluation set",
        "probe_subset": " (a seeded stratified subset of the {of} A1 probe examples, so that the extra LoRA pass "
        "over them stays cheap: --analysis-probe-samples)",
        "probe_all": " (all of A1's probe examples: the last-layer A probe is A1 itself)",
        "analysis_cost": "cost: {total:.1f} s beyond the comparison's own passes ({parts}), plus the pooling of "
        "hidden states inside the A and B passes",
        "cost_part": "{what} {s:.1f} s",
        "list_separator": ", ",
        "weights": "weights",
        "lora_probe_pass": "lora probe pass",
        "layer_metrics_and_probes": "layer metrics and probes",
        "analysis_weights": "weights: {modules} adapted modules; ΔW = scaling · B·A as peft merges it (Conv1D read "
        "transposed, rslora / rank and alpha patterns honoured); effective rank from the exact singular values "
        "of ΔW; intruders from exact float64 eigendecompositions of W Wᵀ and (W + ΔW)(W + ΔW)ᵀ (the smaller "
        "Gram side)",
        "analysis_dora": "weights: DoRA adapters merge with a learned magnitude, not as scale·B·A; not analysed",
        "analysis_module_missing": "weights: {module} not found in the base model; skipped",
        "analysis_intruders_skipped": "weights: intruders not computed for {skipped} of {modules} modules whose "
        "smaller side exceeds {max_dim} (--analysis-max-dim); their norms and effective ranks are exact",
        "analysis_lora_probe_pass": "layers: one extra LoRA-model pass over {examples} probe examples gave B's "
        "probe-training features ({seconds:.1f} s)",
    },
    # report["beyond_task"]: what LoRA changed beyond the task, on out-of-domain text (--ood-data)
    "beyond_task": {
        "heading": "What LoRA changed beyond the task",
        "data": "Out-of-domain text: {n} of {available} texts of {source} (seeded sample; {tokens} tokens).",
        "layers": "A vs B on it, pooled as the head pools: CKA {cka} at the last layer {layer}, cosine {cos}; "
        "lowest CKA {low} at layer {low_layer}.",
        "layers_task": "A vs B on it, pooled as the head pools: CKA {cka} at the last layer {layer} (on the task's "
        "data {task}), cosine {cos}; lowest CKA {low} at layer {low_layer}.",
        "lm": "The base's next-token distributions without and with LoRA (its own LM head, {tokens} tokens): mean "
        "KL(base || base+LoRA) {kl} nats per token (median {p50}, 90th percentile {p90}, max {max}); perplexity "
        "{ppl_base} (base) -> {ppl_lora} (with LoRA, {change}).",
        "plot": "CKA(A, B) by layer: the task's data vs out-of-domain text",
        "table": "Per-layer values",
        "table_layer": "Layer",
        "table_cka_task": "CKA, task",
        "table_cka_ood": "CKA, OOD",
        "table_cos_task": "Cosine, task",
        "table_cos_ood": "Cosine, OOD",
        "notes": "What was computed",
    },
    # report["beyond_task"]["reason"] ("reason" codes) and ["notes"]
    "beyond_notes": {
        "encoder": "No next-token KL: the base is an encoder, without a language-model head.",
        "no_lm_head": "No next-token KL: the base checkpoint holds no lm_head.weight{tied}.",
        "tied": " and not the tied input embedding either",
        "no_safetensors": "No next-token KL: the base's weights are not in local .safetensors files.",
        "logit_transform": "No next-token KL: this model changes its logits after the LM head ({detail}).",
        "shape": "No next-token KL: the LM head's shape {detail} is not the model's vocabulary x hidden size.",
        "no_next_token": "No next-token KL: every out-of-domain text is a single token long.",
        "no_lora_variant": "Out-of-domain analysis not run: it compares B with the base, and B is not among "
        "--variants.",
        "distributed": "Out-of-domain analysis not run: layer states are not gathered across processes yet.",
        "ood_shared_trunk": "OOD: B's pass took layers 0-{last} of {total} from the frozen pass (shared trunk).",
        "ood_no_shared_trunk": "OOD: B's pass ran all {total} layers.",
        "ood_trunk_too_large": "OOD: shared trunk off, its recorded output would take {gib:.1f} GiB.",
        "ood_cost": "OOD: {total:.1f} s in all ({parts}).",
        "cost_part": "{what} {s:.1f} s",
        "list_separator": ", ",
        "tokenize": "tokenisation",
        "frozen_pass": "frozen pass",
        "lora_pass": "LoRA pass",
        "layer_metrics": "CKA and cosine",
        "next_token": "next-token KL and perplexities",
    },
    # report["adapters"], ["sweep"], ["across_seeds"]
    "sweep": {
        "sweep": "Sweep: every adapter",
        "seeds": "Across seeds",
        "adapter": "Adapter",
        "accuracy": "{v} acc",
        "delta_accuracy": "{d} acc (pp)",
        "delta": "Delta",
        "metric": "Metric",
        "n_seeds": "Seeds",
        "mean": "Mean",
        "sd": "SD",
        "ci": "95% CI",
        "per_seed": "Per seed",
        "plot": "Accuracy deltas against the adapters' {x}",
    },
    # report["seed_agreement"]: do the seeds of a seed set agree?
    "seed_agreement": {
        "heading": "Seed agreement: LoRA updates and predictions",
        "all": "all",
        "layer": "Layer",
        "modules": "Modules",
        "energy": "φ 90% energy (out / in)",
        "rank": "φ all directions (out / in)",
        "top1": "φ top direction (out / in)",
        "chance": "random (90%, out / in)",
        "alike": "Most alike: layer {layer} ({v}); least alike: layer {layer2} ({v2}) (subspace similarity of the "
        "90%-energy directions, output side, mean over modules and pairs of seeds).",
        "pair": "{a} vs {b}: 90%-energy directions {el} / {er}, all directions {rl} / {rr}, top direction {tl} / {tr} "
        "(output / input side; random: {cl} / {cr})",
        "method": "How: subspace similarity φ(i, j) = ‖U_iᵀU_j‖²_F / min(i, j) (Hu et al. 2021) of the top i and j "
        "singular vectors of two seeds' ΔW = scaling·B·A as peft merges it (never of A or B alone: B·A = (BM)(M⁻¹A) "
        "for any invertible M), exact, from thin QRs of B and Aᵀ and an SVD of the r x r core; output side = left "
        "singular vectors, input side = right; depths: the top direction, the directions holding {energy} of "
        "‖ΔW‖²_F (each seed its own count), all directions; 1 = the same directions, random ones give max(i, j) / d",
        "churn_pair": "{a} vs {b}: B's predictions differ on {p} of the examples, its correct/incorrect status on {c}",
        "churn_all": "B is right under every seed on {all} and under none on {none} of the {n} examples",
        "cost": "cost: {weights} for the weights, {churn} for the predictions",
        "seed_weights_dora": "weights: DoRA adapters merge with a learned magnitude, not as scaling·B·A; their "
        "updates are not compared",
        "seed_weights_unshared": "weights: {modules} modules are not adapted alike by every seed; left out",
    },
    # -- speed like for like and the measured dtype (words/speed_dtype.py) --
    "speed_dtype": {
        "like_for_like": "A and B timed like for like: full passes (every layer, LoRA merged into B, no shared "
        "trunk) over the same first {n} examples in {b} batches; the full B predicts as B's evaluation pass "
        "({m} mismatches, max |logit difference| {d:.2g})",
        "no_like_for_like_needs_a_and_b": "no like-for-like timing: it needs both A and B",
        "no_like_for_like_distributed": "no like-for-like timing: the passes ran sharded over several processes",
        "no_like_for_like_not_run": "no like-for-like timing in this run",
        "a_cached": "A's evaluation pass came from the feature cache (no pass ran); its speed is the like-for-like "
        "sample's",
        "b_shared": "B's evaluation pass ran only the top layers on the frozen pass's output ({s} of {t} layers "
        "shared): {sec}, lorafair's own cost, not the model's speed",
        "dtype_measured": "dtype {dtype}, measured on this CPU: bf16 is {mm}x (matmul) and {att}x (attention) as "
        "fast as fp32, about {layer}x for a layer; bf16 needs {thr}x (probe {sec})",
        "dtype_cached": "dtype {dtype}, from this CPU's earlier probe: bf16 {mm}x (matmul) and {att}x (attention) "
        "as fast as fp32, about {layer}x for a layer; bf16 needs {thr}x (probe {sec}, remembered)",
        "dtype_forced": "dtype {dtype}, forced by $LORAFAIR_CPU_DTYPE (no probe)",
        "dtype_flips": "bf16 changed {f} of {n} predictions against fp32 on the fidelity sample (more than {tol}): "
        "the speed costs accuracy here; consider --dtype float32",
    },
    # report["diagnosis"] and report["training"]: what to try next, from the evidence (words/diagnosis.py)
    "diagnosis": {
        "heading": "Diagnosis",
        "training": "Training (lorafair_run.json): {steps} steps, {epochs} epochs; loss {first} -> {last} ({n} logged)",
        "trend": "; last tenth: Theil-Sen slope {slope} per step, Mann-Kendall {p} ({k} points)",
        "no_trend": "; last tenth: {k} logged losses, too few for a trend (at least {m})",
        "eval": "; held-out accuracy after training {acc}",
        "nothing": "No rule fired: none of the report's figures points to a next step.",
        "a1_absent": "No A1 (linear probe): B - A alone cannot separate the head's co-adaptation with LoRA from what "
        "LoRA changed in the features.",
        "a1_cross_fitted": "A1 is cross-fitted on the evaluation set itself ({folds} folds, no separate probe data): "
        "B - A1 compares LoRA with a cross-fitted probe.",
        "head_coadapted": "A1 - A = {v} (CI {ci}, {p}), at least {t} and significant: the head was trained for the "
        "adapted features, so B - A overstates LoRA; B - A1 measures what LoRA added.",
        "probe_suffices": "B - A1 = {v} (CI {ci}, {p}) is not significant, and the test would detect {t} (MDE {mde} "
        "at 80% power): a linear probe on the frozen features does as well.",
        "b_a1_underpowered": "B - A1 = {v} (CI {ci}, {p}) is not significant, but the sample cannot tell (MDE {mde} at "
        "80% power, above the observed difference): underpowered; about {n3} examples would detect 3 pp (now {n}).",
        "b_a1_no_mde": "B - A1 = {v} (CI {ci}, {p}) is not significant, but too few examples disagree for any "
        "difference to be detectable at 80% power: underpowered; about {n3} examples would detect 3 pp (now {n}).",
        "linear_at_layer": "A probe on the frozen base's layer {layer} reaches {a}, B's accuracy being {b}: the task is "
        "already linear at layer {layer}.",
        "low_rank": "In every one of the {m} adapted modules ΔW's {e}-energy rank is at most {k}, against r = {r}: "
        "r = {k} holds {e} of ΔW's energy; a smaller rank would do.",
        "train_longer": "The training loss was still falling over the last tenth of training (steps {a}-{b}, {points} "
        "logged losses): Theil-Sen slope {slope} per step, {drop} of the loss over the window, Mann-Kendall {p}: "
        "train longer.",
        "backbone_changed": "Mean next-token KL(base || base+LoRA) on out-of-domain text {kl} nats per token (at least "
        "{t}; the base's own text costs x{f} in perplexity): the backbone changed beyond the task.",
    },
    # report["flips"]: which examples changed between B and each reference (report/words/flips.py)
    "flips": {
        "heading": "Which examples changed",
        "pair": "Pair",
        "both_right": "Both right",
        "only_new_right": "Only {new} right (fixed)",
        "only_reference_right": "Only the reference right (broken)",
        "both_wrong": "Both wrong",
        "nfr": "Negative flip rate",
        "nfr_line": "{pair}: negative flip rate {rate} {ci} ({count} of {n} examples {ref} got right and {new} got "
        "wrong); fixed: {fixed_rate} ({fixed} of {n}); McNemar's test uses the two middle cells",
        "method": "CIs of the flip rates: Wilson score intervals at {level}; slices: accuracies with Wilson intervals, "
        "deltas with a paired bootstrap of the slice ({level})",
        "method_no_bootstrap": "CIs of the flip rates and slice accuracies: Wilson score intervals at {level}; slice "
        "deltas have no CI (--bootstrap 0)",
        "cross_fitted": "{ref} is cross-fitted on the evaluation set itself (no probe data): its flips are indicative",
        "by_class": "Accuracy by true class",
        "by_length": "Accuracy by input length (token quartiles)",
        "class": "True class",
        "n": "n",
        "quartile": "Quartile",
        "tokens": "Tokens",
        "accuracy_of": "Acc. {v}",
        "delta_pp": "{pair} (pp)",
        "prf": "Precision / recall / F1 per class",
        "support": "Support",
        "prf_of": "P / R / F1 {v}",
        "fixed_title": "{pair}: fixed by LoRA, top {k} by rise of p(true class) ({count} in all)",
        "broken_title": "{pair}: broken by LoRA, top {k} by fall of p(true class) ({count} in all)",
        "index": "Row",
        "label": "True class",
        "p_ref": "p(true) {ref}",
        "p_new": "p(true) {new}",
        "change": "Change",
        "text": "Text",
        "no_text": "(text not recorded)",
        "texts_note": "Every flipped example of every pair is in flips.csv; texts here are cut at {chars} characters.",
    },
}
