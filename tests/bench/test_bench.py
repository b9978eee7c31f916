"""`daprlab bench --quick` runs end to end and ends with its summary line (never its numbers)."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest

from daprlab.paths import REPO_ROOT
from daprlab.runtime import Runtime

pytestmark = pytest.mark.e2e
# The quick run takes well under a minute; a loaded CI machine gets room before this fails.
BENCH_TIMEOUT_SECONDS = 240
SUMMARY = re.compile(r"chat vs floor: p50 x\d+\.\d\d, throughput x\d+\.\d\d")
SDK_DEFAULTS = re.compile(
    r"SDK defaults \(a new session per call to daprd\) vs the lab's keep-alive session: "
    r"p50 x\d+\.\d\d, throughput x\d+\.\d\d"
)
DURABILITY = re.compile(
    r"what durability costs: Redis fsync-always \(the default: every answered write on disk\) "
    r"vs snapshots \(the old setting: a snapshot at most once a second, no fsync\): "
    r"p50 x\d+\.\d\d, throughput x\d+\.\d\d"
)
TABLE_HEADER = "| | floor | warm actor | warm, Redis snapshots | warm, SDK defaults | new actor |"


def test_quick_bench_prints_the_table_and_ends_with_the_summary(dapr_runtime: Runtime) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "daprlab", "bench", "--quick"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=BENCH_TIMEOUT_SECONDS,
        check=False,
    )
    print(result.stdout)
    print(f"daprlab bench --quick took {time.monotonic() - started:.1f}s")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert SUMMARY.fullmatch(lines[-1]), lines[-1]
    assert TABLE_HEADER in lines
    measured = next(ln for ln in lines if ln.startswith("| 16 at a time: chats/s |"))
    floor, warm, old, sdk, new = (cell.strip() for cell in measured.strip("|").split("|")[1:])
    assert all(cell.isdecimal() for cell in (floor, warm, old, sdk)) and new == "-", measured
    failed = next(ln for ln in lines if ln.startswith("| failed requests"))
    assert failed.split("|")[2:6] == [" 0 ", " 0 ", " 0 ", " 0 "], failed
    assert SDK_DEFAULTS.fullmatch(lines[-2]), lines[-2]
    assert DURABILITY.fullmatch(lines[-3]), lines[-3]
