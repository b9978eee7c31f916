"""The harness without a runtime: it never builds one; CI fails, a local run skips, with the fix.

Each case runs an inner pytest session (pytester) on a machine where nothing is installed:
HOME (set by pytester), PATH and DAPR_LAB_CACHE point at empty folders.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from daprlab.runtime import RUNTIME_ENV

pytest_plugins = ["pytester"]

FIX = "Fix: run `uv run daprlab runtime` (it finds or builds the runtime)."
INNER_TEST = """
def test_needs_the_stack(lab):
    raise AssertionError("the lab fixture should not have been set up")
"""


@pytest.fixture
def bare(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    empty = pytester.mkdir("empty")
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("DAPR_LAB_CACHE", str(pytester.path / "cache"))
    # The pin, which that empty cache lacks: not a runtime the outer run was pointed at.
    monkeypatch.setenv(RUNTIME_ENV, "pinned")
    # A fake `go` on PATH: the harness must not build even where Go is installed.
    go = empty / "go"
    go.write_text(f"#!{sys.executable}\nraise SystemExit('the harness ran go')\n")
    go.chmod(0o755)
    pytester.makeconftest('pytest_plugins = ["daprlab.harness"]')
    pytester.makepyfile(test_inner=INNER_TEST)
    return pytester


def test_a_local_run_skips_with_the_fix(
    bare: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)

    result = bare.runpytest_subprocess("-rs", "-p", "no:cacheprovider")

    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED [[]1[]] *Dapr runtime * was not found in *" + FIX])
    assert not (Path(bare.path) / "cache").exists()


def test_ci_fails_with_the_fix_and_no_traceback(
    bare: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "1")

    result = bare.runpytest_subprocess("-p", "no:cacheprovider")

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*Dapr runtime * was not found in *" + FIX])
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*the harness ran go*")
