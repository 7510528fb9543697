"""Sharded evaluation: torchrun / accelerate launch with 2 CPU processes give the single-process report."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from lorafair.cli import main
from lorafair.models import distributed, inference, modeling

from conftest import toy_rows, write_csv


def test_shards_are_disjoint_round_robin_and_complete():
    batches = [np.arange(i * 3, i * 3 + 3) for i in range(7)]
    shards = [distributed.shard(batches, r, 3) for r in range(3)]
    assert [len(s) for s in shards] == [3, 2, 2]
    assert shards[1][0] is batches[1] and shards[1][1] is batches[4]
    assert sorted(np.concatenate([b for s in shards for b in s]).tolist()) == list(range(21))
    assert distributed.shard(batches[:1], 2, 3) == []  # more ranks than batches: an empty share


def _fake_pass(n: int, batches, seed: int = 0) -> inference.PassResult:
    """What run_pass returns on one rank: full-size arrays in which only the rows of its batches are set."""
    rng = np.random.default_rng(seed)
    logits = np.full((n, 3), np.nan, dtype=np.float32)
    features = np.full((n, 5), np.nan, dtype=np.float32)
    for idx in batches:
        logits[idx] = rng.standard_normal((len(idx), 3))
        features[idx] = rng.standard_normal((len(idx), 5))
    return inference.PassResult(logits, features, batch_seconds=[0.1] * len(batches), tokens=10 * len(batches))


@pytest.mark.parametrize("world_size", [1, 2, 3, 5, 8])
def test_assemble_restores_input_order_without_duplicates(world_size):
    n = 23  # odd: the last batch is short and the ranks get unequal shares
    lengths = np.random.default_rng(1).integers(1, 40, n)
    batches = inference.length_sorted_batches(lengths, 4)
    reference = _fake_pass(n, batches)
    parts = []
    for rank in range(world_size):
        mine = distributed.shard(batches, rank, world_size)
        part = _fake_pass(n, [], seed=rank)
        for idx in mine:  # this rank computed exactly these rows
            part.logits[idx], part.features[idx] = reference.logits[idx], reference.features[idx]
        part.batch_seconds, part.tokens = [0.1] * len(mine), 10 * len(mine)
        parts.append(distributed.local_part(part, mine))
    result = distributed.assemble(parts, n)
    np.testing.assert_array_equal(result.logits, reference.logits)
    np.testing.assert_array_equal(result.features, reference.features)
    assert result.tokens == reference.tokens and len(result.batch_seconds) == len(batches)
    assert result.elapsed == pytest.approx(0.1 * len(distributed.shard(batches, 0, world_size)))


def test_assemble_refuses_missing_or_repeated_examples():
    batches = [np.array([0, 1]), np.array([2, 3])]
    full = _fake_pass(4, batches)
    twice = [distributed.local_part(full, batches), distributed.local_part(full, batches[1:])]
    with pytest.raises(RuntimeError, match="more than once"):
        distributed.assemble(twice, 4)
    with pytest.raises(RuntimeError, match="covered 2 of 4"):
        distributed.assemble([distributed.local_part(full, batches[:1])], 4)


def test_sharded_real_passes_are_bitwise_the_single_pass(llama_setup):
    """Same batches, same padding: each rank's rows equal the single-process rows bit for bit."""
    adapter = modeling.read_adapter(llama_setup.adapter)
    tokenizer = modeling.load_tokenizer(llama_setup.adapter, llama_setup.base)
    model = modeling.load_base_classifier(llama_setup.base, adapter.num_labels)
    modeling.ensure_pad_token(tokenizer, model)
    modeling.install_head(model, adapter)
    with open(llama_setup.data, encoding="utf-8") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)][:31]
    encoded = inference.tokenize(tokenizer, texts, max_length=64)
    batches = inference.length_sorted_batches(encoded.lengths, 4)
    kw = dict(pad_token_id=tokenizer.pad_token_id, head=model.get_submodule(adapter.head_name), quiet=True)
    single = inference.run_pass(model, encoded, batches, **kw)
    parts = [
        distributed.local_part(
            inference.run_pass(model, encoded, distributed.shard(batches, r, 3), **kw), distributed.shard(batches, r, 3)
        )
        for r in range(3)
    ]
    sharded = distributed.assemble(parts, len(texts))
    np.testing.assert_array_equal(sharded.logits, single.logits)
    np.testing.assert_array_equal(sharded.features, single.features)


def _compare_args(setup, probe_data, out) -> list[str]:
    # 45 examples in batches of 7: 7 batches, the last one short, so rank 0 runs 4 and rank 1 runs 3;
    # 33 probe examples: 5 batches, also split unevenly
    return [
        "compare",
        "--adapter",
        str(setup.adapter),
        "--data",
        str(setup.data),
        "--probe-data",
        str(probe_data),
        "--num-samples",
        "45",
        "--batch-size",
        "7",
        "--bootstrap",
        "300",
        "--no-cache",  # sharded runs never use the feature cache: the single-process reference neither
        "--quiet",
        "--output",
        str(out),
    ]


@pytest.fixture(scope="module")
def probe_data(tmp_path_factory):
    return write_csv(toy_rows(33, seed=11), tmp_path_factory.mktemp("probe") / "probe.csv")


@pytest.fixture(scope="module")
def single_process_report(llama_setup, probe_data, tmp_path_factory):
    """One process with one thread, like each launched worker: this compares sharding, not thread counts
    (PyTorch does not promise bitwise-equal CPU sums across thread counts)."""
    import torch

    out = tmp_path_factory.mktemp("single") / "out"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(_compare_args(llama_setup, probe_data, out)) == 0
    finally:
        torch.set_num_threads(threads)
    return out


LAUNCHERS = {
    "torchrun": [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"],
    # `--cpu --num_processes 2` would start a single process (accelerate's multi-CPU path needs MPI);
    # `--multi_gpu` makes accelerate start torchrun, and lorafair picks gloo because there is no GPU.
    "accelerate": [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
    ],
}


@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_two_processes_write_the_single_process_report(
    launcher, llama_setup, probe_data, single_process_report, tmp_path
):
    out = tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [*LAUNCHERS[launcher], "-m", "lorafair", *_compare_args(llama_setup, probe_data, out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rank 1 of 2 joined the gloo process group" in proc.stderr

    single = json.loads((single_process_report / "report.json").read_text())
    sharded = json.loads((out / "report.json").read_text())
    assert sharded["environment"]["world_size"] == 2 and single["environment"]["world_size"] == 1
    timing = {"tokenize_seconds"}
    assert {k: v for k, v in sharded["data"].items() if k not in timing} == {
        k: v for k, v in single["data"].items() if k not in timing
    }  # n, label counts, indices, token-id hash
    assert sharded["deltas"] == single["deltas"]
    assert sharded["conclusion"] == single["conclusion"]
    for variant, block in single["variants"].items():
        for key in ("metrics", "head_sha256", "confusion_matrix"):
            assert sharded["variants"][variant][key] == block[key], (variant, key)

    def untimed(passes):
        return [{k: v for k, v in p.items() if k != "seconds"} for p in passes]

    assert untimed(sharded["forward_passes"]) == untimed(single["forward_passes"])  # 45, 33, 45: no duplicated tail
    # bitwise equal probabilities for every example, in input order
    assert (out / "predictions.csv").read_bytes() == (single_process_report / "predictions.csv").read_bytes()
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in single_process_report.iterdir())
