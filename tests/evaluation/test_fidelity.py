"""bf16 against fp32 on the fidelity sample (fidelity.dtype_flips) and its check record (report/build.py)."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic_report import make_report

from lorafair.evaluation import fidelity
from lorafair.report import words
from lorafair.report.build import FLIP_TOLERANCE, check_records


def test_dtype_flips_counts_changed_predictions_by_hand():
    fp32 = np.array([[0.0, 1.0], [2.0, 1.0], [0.3, 0.2], [-1.0, 1.0]])
    low = np.array([[0.0, 0.9], [0.9, 1.0], [0.2, 0.3], [-1.0, 1.0]])
    out = fidelity.dtype_flips(low, fp32)
    assert out == {"checked": 4, "flips": 2, "max_abs_logit_diff": pytest.approx(1.1)}  # rows 1 and 2 flipped
    assert fidelity.dtype_flips(np.empty((0, 2)), np.empty((0, 2))) == {
        "checked": 0,
        "flips": 0,
        "max_abs_logit_diff": None,
    }


@pytest.mark.parametrize("flips, checked, fires", [(1, 64, True), (0, 64, False), (1, 400, False), (3, 400, True)])
def test_the_check_fires_above_half_a_percent(flips, checked, fires):
    report = make_report(variants=("B", "A"), bootstrap=0)
    report["fidelity"] = {
        "merged_vs_unmerged_max_abs_logit_diff": 0.0,
        "prediction_flips": 0,
        "checked_examples": checked,
        "merge_dtype": "float32",
        "model_dtype": "bfloat16",
        "bf16_vs_fp32": {"checked": checked, "flips": flips, "max_abs_logit_diff": 0.1},
    }
    got = [c for c in check_records(report) if c["kind"] == "dtype_flips"]
    assert (flips / checked > 0.005) == fires
    assert got == (
        [{"kind": "dtype_flips", "flips": flips, "checked": checked, "tolerance": FLIP_TOLERANCE}] if fires else []
    )
    if fires:
        assert "bf16 changed" in words.check_sentence(got[0], "en") and "bf16" in words.check_sentence(got[0], "zh")
