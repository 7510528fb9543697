"""`peak_rss_bytes` is the process's own peak, even when a fat parent launched it (fork + exec)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lorafair.core import peak_memory

SRC = str(Path(__file__).resolve().parents[2] / "src")
PARENT_BYTES = 1 << 30  # what the parent holds when it launches the child

# The parent touches 1 GiB, then runs a small child; the child reports its own figures as JSON.
PARENT = textwrap.dedent(f"""
    import subprocess, sys
    import numpy as np
    held = np.ones({PARENT_BYTES} // 8)  # np.ones writes every page: resident, not just reserved
    child = (
        "import json, resource; from lorafair.core.peak_memory import peak_rss_bytes; "
        "import psutil; "
        "print(json.dumps({{'rss_now': psutil.Process().memory_info().rss, 'peak': peak_rss_bytes(), "
        "'ru_maxrss_kb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}}))"
    )
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True).stdout
    print(out.strip().splitlines()[-1])
    print(int(held[-1]))
""")


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="VmHWM is Linux-only")
def test_child_of_fat_parent_reports_its_own_peak():
    pytest.importorskip("psutil")
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    lines = subprocess.run(
        [sys.executable, "-c", PARENT], capture_output=True, text=True, check=True, env=env
    ).stdout.splitlines()
    child = json.loads(lines[0])
    # ru_maxrss inherits the parent's high-water mark across exec: the figure the old report showed.
    assert child["ru_maxrss_kb"] * 1024 >= PARENT_BYTES
    # The child's own peak is at least what it holds now (psutil, independent) and far below the parent's.
    assert child["rss_now"] <= child["peak"] < PARENT_BYTES // 4


def test_reads_vmhwm_from_status_file(tmp_path):
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nVmPeak:\t 9999999 kB\nVmHWM:\t  123456 kB\nVmRSS:\t  100000 kB\n")
    assert peak_memory.peak_rss_bytes(status) == 123456 * 1024


def test_falls_back_to_ru_maxrss_without_proc(tmp_path):
    expected = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    got = peak_memory.peak_rss_bytes(tmp_path / "missing")
    assert expected <= got <= resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 * 1.01 + 1


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="VmHWM is Linux-only")
def test_grows_with_an_allocation_in_this_process():
    np = pytest.importorskip("numpy")
    before = peak_memory.peak_rss_bytes()
    block = np.ones((before + (256 << 20)) // 8)  # more than the current peak, all pages touched
    assert peak_memory.peak_rss_bytes() >= block.nbytes
    del block
