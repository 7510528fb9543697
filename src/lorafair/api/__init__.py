"""lorafair's Python API: the CLI's commands as functions with typed results (see `lorafair.api.commands`).

    import lorafair
    result = lorafair.compare(adapter="outputs/lora_adapter", data="test.csv", num_samples=500)
    print(result.report["deltas"]["B-A"]["accuracy"])
    result.write("outputs/compare")

Layer `api` sits between `cli` (which calls these functions) and `recipes` (what they run).
"""

from lorafair.api.commands import compare, demo, read_report, render_report, sweep, train
from lorafair.api.results import CompareResult, DemoResult, SweepResult, TrainResult

__all__ = [
    "CompareResult",
    "DemoResult",
    "SweepResult",
    "TrainResult",
    "compare",
    "demo",
    "read_report",
    "render_report",
    "sweep",
    "train",
]
