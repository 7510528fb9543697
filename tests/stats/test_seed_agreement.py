"""stats/seed_agreement: ΔW subspaces from the factors against dense SVDs; churn against hand counts."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest
import scipy.linalg

from lorafair.report import words
from lorafair.stats import seed_agreement as sa
from lorafair.stats.weight_delta import delta_weight


def _factors(rng, out, inp, r, scale=1.0):
    return rng.normal(size=(r, inp)), rng.normal(size=(out, r)) * scale


def _dense_svd(lora_a, lora_b, scaling, conv1d=False):
    """ΔW as peft merges it (delta_weight), read in the math layout, through numpy's full SVD."""
    stored = delta_weight(lora_a, lora_b, scaling, fan_in_fan_out=conv1d)
    dense = stored.T if conv1d else stored
    u, s, vt = np.linalg.svd(dense)
    rank = int(np.sum(s > s[0] * max(dense.shape) * np.finfo(float).eps))
    return u[:, :rank], vt[:rank].T, s[:rank]


def _energy_rank(s, energy=0.9):
    """The fewest singular values holding 90% of the squared total, counted one by one."""
    total, held = float(np.sum(s**2)), 0.0
    for k, value in enumerate(s, 1):
        held += value**2
        if held >= energy * total - 1e-12 * total:
            return k
    return len(s)


def _phi(u1, u2):
    return np.linalg.norm(u1.T @ u2) ** 2 / min(u1.shape[1], u2.shape[1])


@pytest.mark.parametrize(
    "out, inp, r, conv1d", [(20, 12, 4, False), (6, 30, 8, False), (48, 16, 5, True), (64, 96, 16, False)]
)
def test_directions_from_the_factors_equal_a_dense_svd(out, inp, r, conv1d):
    rng = np.random.default_rng(out + inp)
    lora_a, lora_b = _factors(rng, out, inp, r)
    got = sa.delta_directions(lora_a, lora_b, 0.75)
    u, v, s = _dense_svd(lora_a, lora_b, 0.75, conv1d)
    assert got.rank == len(s) == min(out, inp, r)
    np.testing.assert_allclose(got.singular, s, rtol=1e-10)
    np.testing.assert_allclose(got.left @ got.left.T, u @ u.T, atol=1e-10)  # the same subspaces
    np.testing.assert_allclose(got.right @ got.right.T, v @ v.T, atol=1e-10)
    for k in range(got.rank):  # distinct singular values: every vector itself, up to sign
        assert abs(got.left[:, k] @ u[:, k]) == pytest.approx(1.0, abs=1e-9)
        assert abs(got.right[:, k] @ v[:, k]) == pytest.approx(1.0, abs=1e-9)
    assert got.depth("energy") == _energy_rank(s)


def test_pair_similarity_equals_dense_svds_and_principal_angles():
    rng = np.random.default_rng(5)
    shared = rng.normal(size=(40, 3))  # two seeds that share part of their output directions
    seeds = []
    for _ in range(2):
        lora_a = rng.normal(size=(6, 24))
        lora_b = np.hstack([shared + 0.3 * rng.normal(size=(40, 3)), 0.2 * rng.normal(size=(40, 3))])
        seeds.append((lora_a, lora_b, 2.0))
    got = sa.pair_similarity(*(sa.delta_directions(*f) for f in seeds))
    dense = [_dense_svd(*f) for f in seeds]
    for side, index in (("left", 0), ("right", 1)):
        bases = [d[index] for d in dense]
        ks = {"top1": (1, 1), "energy": tuple(_energy_rank(d[2]) for d in dense), "rank": (6, 6)}
        for depth, (i, j) in ks.items():
            assert got[side][depth] == pytest.approx(_phi(bases[0][:, :i], bases[1][:, :j]), abs=1e-10)
            assert got["chance"][side][depth] == pytest.approx(max(i, j) / bases[0].shape[0])
        angles = scipy.linalg.subspace_angles(bases[0], bases[1])  # all r directions: mean cos² of the angles
        assert got[side]["rank"] == pytest.approx(np.mean(np.cos(angles) ** 2), abs=1e-10)
    assert got["left"]["rank"] > 2 * got["chance"]["left"]["rank"]  # the shared directions show


def test_only_the_product_counts_not_the_factors():
    """B·A = (B M)(M⁻¹ A): a seed that learnt the same update through other factors agrees completely."""
    rng = np.random.default_rng(1)
    lora_a, lora_b = _factors(rng, 30, 20, 4)
    mix = rng.normal(size=(4, 4)) + 4 * np.eye(4)
    other_a, other_b = np.linalg.solve(mix, lora_a), lora_b @ mix
    got = sa.pair_similarity(sa.delta_directions(lora_a, lora_b, 1.0), sa.delta_directions(other_a, other_b, 1.0))
    for side in sa.SIDES:
        assert got[side] == pytest.approx({"top1": 1.0, "energy": 1.0, "rank": 1.0}, abs=1e-10)
    rows_a = np.linalg.qr(lora_a.T)[0][:, :1], np.linalg.qr(other_a.T)[0][:, :1]
    assert _phi(*rows_a) < 0.99  # A alone would call them different


def test_random_updates_sit_at_the_chance_value():
    rng = np.random.default_rng(3)
    values = []
    for _ in range(400):
        seeds = [sa.delta_directions(*_factors(rng, 50, 30, 4), 1.0) for _ in range(2)]
        values.append(sa.pair_similarity(*seeds)["left"]["rank"])
    assert np.mean(values) == pytest.approx(4 / 50, abs=0.01)  # E φ = max(i, j) / d


def test_a_zero_update_has_no_directions_and_counts_in_no_mean():
    rng = np.random.default_rng(4)
    lora_a, lora_b = _factors(rng, 10, 8, 2)
    zero = sa.delta_directions(lora_a, np.zeros_like(lora_b), 1.0)
    assert zero.rank == 0 and zero.depth("energy") == 0
    pair = sa.pair_similarity(zero, sa.delta_directions(lora_a, lora_b, 1.0))
    assert pair["left"] == {"top1": None, "energy": None, "rank": None}
    assert pair["chance"]["right"]["rank"] is None
    good = sa.pair_similarity(*(sa.delta_directions(*_factors(rng, 10, 8, 2), 1.0) for _ in range(2)))
    assert sa.average([pair, good])["left"]["rank"] == pytest.approx(good["left"]["rank"])


def test_module_layer_and_pair_summaries_equal_dense_svds():
    rng = np.random.default_rng(7)
    names = ["seed-0", "seed-1", "seed-2"]
    shapes = {"q_proj": (24, 24), "v_proj": (8, 24), "down_proj": (24, 40)}
    per_module = {
        f"model.layers.{layer}.{kind}": [(*_factors(rng, out, inp, 4), 0.5) for _ in names]
        for layer in (0, 3)
        for kind, (out, inp) in shapes.items()
    }
    got = sa.weight_agreement(per_module, names)
    expected = {}  # (module, pair) -> φ of the 90%-energy output directions, from dense SVDs
    for module, factors in per_module.items():
        dense = [_dense_svd(*f) for f in factors]
        for i, j in combinations(range(3), 2):
            ki, kj = _energy_rank(dense[i][2]), _energy_rank(dense[j][2])
            expected[module, (i, j)] = _phi(dense[i][0][:, :ki], dense[j][0][:, :kj])
    by_module = {m["module"]: m for m in got["modules"]}
    for (module, pair), value in expected.items():
        (entry,) = [p for p in by_module[module]["pairs"] if tuple(p["seeds"]) == pair]
        assert entry["left"]["energy"] == pytest.approx(value, abs=1e-10)
    assert by_module["model.layers.3.v_proj"]["layer"] == 3 and by_module["model.layers.3.v_proj"]["kind"] == "v_proj"
    layers = {e["layer"]: e for e in got["layers"]}
    for layer in (0, 3):
        values = [v for (m, _), v in expected.items() if m.startswith(f"model.layers.{layer}.")]
        assert layers[layer]["modules"] == 3
        assert layers[layer]["left"]["energy"] == pytest.approx(np.mean(values), abs=1e-10)
    for entry in got["pairs"]:
        values = [v for (_, p), v in expected.items() if p == tuple(entry["seeds"])]
        assert entry["left"]["energy"] == pytest.approx(np.mean(values), abs=1e-10)
        assert entry["adapters"] == [names[i] for i in entry["seeds"]]
    summary = got["summary"]
    assert summary["modules"] == 6 and summary["left"]["energy"] == pytest.approx(np.mean(list(expected.values())))
    best = max((0, 3), key=lambda k: layers[k]["left"]["energy"])
    assert summary["most_alike"]["layer"] == best and summary["least_alike"]["layer"] == 3 - best


def test_churn_by_hand():
    y = [0, 1, 2, 0, 1, 2]
    seeds = [[0, 1, 2, 1, 1, 0], [0, 1, 1, 2, 0, 0], [0, 2, 2, 1, 1, 0]]
    churn = sa.prediction_churn(y, seeds, ["s0", "s1", "s2"])
    # predictions differ on examples 1, 2, 3, 4; pairs (0,1): 2,3,4; (0,2): 1; (1,2): 1,2,3,4
    assert churn["predictions"] == {
        "examples": 4,
        "share": pytest.approx(4 / 6),
        "pairwise": pytest.approx([3 / 6, 1 / 6, 4 / 6]),
        "pairwise_mean": pytest.approx(8 / 18),
    }
    # right or wrong differs on 1, 2, 4 (on 3 every seed is wrong, each in its own way)
    assert churn["correctness"] == {
        "examples": 3,
        "share": pytest.approx(3 / 6),
        "pairwise": pytest.approx([2 / 6, 1 / 6, 3 / 6]),
        "pairwise_mean": pytest.approx(6 / 18),
    }
    assert (churn["all_correct"], churn["none_correct"], churn["n"], churn["pairs"]) == (
        1,
        2,
        6,
        [[0, 1], [0, 2], [1, 2]],
    )
    with pytest.raises(ValueError):
        sa.prediction_churn(y, seeds[:1], ["s0"])


def test_records_are_worded_in_both_languages():
    rng = np.random.default_rng(9)
    names = ["seed-0", "seed-1", "seed-2"]
    per_module = {"model.layers.0.q_proj": [(*_factors(rng, 16, 16, 4), 1.0) for _ in names]}
    block = {"adapters": names, **sa.weight_agreement(per_module, names)}
    block["churn"] = sa.prediction_churn([0, 1, 1, 0], [[0, 1, 1, 0], [0, 1, 0, 0], [1, 1, 0, 0]], names)
    records = sa.agreement_records(block)
    assert [r["kind"] for r in records] == ["seed_churn", "seed_subspace"]
    energy = f"{block['summary']['left']['energy']:.3f}"
    for lang in ("en", "zh"):
        lines = [words.sentence(r, lang) for r in records]
        assert all("{" not in line for line in lines)
        assert energy in lines[1] and "Across 3 seeds" in words.sentence(records[1], "en")
        assert "50.0%" in lines[0] and "4" in lines[0]  # 2 of 4 examples differ
    assert "Across 3 seeds, B's predictions differ on 50.0% of the 4 evaluation examples (2;" in words.sentence(
        records[0], "en"
    )
    assert sa.agreement_records(None) == [] and sa.agreement_records({"summary": {"modules": 0}}) == []
