"""The harness on failure: the stack's output is in the report, and none of its processes lives on.

An inner pytest session (pytester) starts one real stack through the `lab` fixture and fails.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from daprlab.runtime import Runtime
from daprlab.stack.process import process_gone
from daprlab.wait import wait_for

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.e2e
EXIT_SECONDS = 30

INNER_TEST = """
import json
import pathlib


def test_fails_with_a_stack_running(lab):
    running = lab("01_actor_timers")
    pathlib.Path({pids!r}).write_text(json.dumps(running.stack.started))
    assert running.app.post("/chat/inner", json={{"content": "hi"}}).status_code == 200
    raise AssertionError("the inner test fails on purpose")
"""


def test_a_failed_test_prints_the_stack_output_and_leaves_no_process(
    pytester: pytest.Pytester, dapr_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pytester points HOME at its own folder: let the inner session find the same runtime.
    monkeypatch.setenv("PATH", f"{dapr_runtime.bin_dir}{os.pathsep}{os.environ['PATH']}")
    pids_file = pytester.path / "pids.json"
    pytester.makeconftest('pytest_plugins = ["daprlab.harness"]')
    pytester.makepyfile(test_inner=INNER_TEST.format(pids=str(pids_file)))

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: the inner test fails on purpose",
            "*Captured stdout teardown*",
            "===== output of stack 1 (01_actor_timers) =====",
        ]
    )
    for process in ("redis", "placement", "scheduler", "daprd", "app"):
        result.stdout.fnmatch_lines([f"{process}| *"])
    result.stdout.fnmatch_lines(["app| *ChatAgent inner activated*"])

    started = json.loads(Path(pids_file).read_text())
    assert sorted(name for name, _ in started) == [
        "app",
        "daprd",
        "placement",
        "redis",
        "scheduler",
    ]
    for name, pid in started:
        wait_for(lambda pid=pid: process_gone(pid), EXIT_SECONDS, f"{name} (pid {pid}) to exit")
