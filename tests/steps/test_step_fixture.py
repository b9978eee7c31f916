"""The one `step` fixture (tests/support/steps.py), in inner pytest sessions: STEP, STEP_PARAMS
and SETTINGS do what its docstring says, and a module that names no step gets a clear error."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

PLUGIN = 'pytest_plugins = ["tests.support.steps"]'


def run_inner(pytester: pytest.Pytester, source: str) -> pytest.RunResult:
    pytester.makeconftest(PLUGIN)
    pytester.makepyfile(test_inner=source)
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:xdist", "-v")


def test_step_params_run_each_test_once_per_step(pytester: pytest.Pytester) -> None:
    result = run_inner(
        pytester,
        "from pathlib import Path\n"
        "from daprlab.paths import steps\n"
        "STEP_PARAMS = steps()\n"
        "def test_loaded(step, request):\n"
        "    assert Path(step.__file__).parent.name == request.node.callspec.id\n",
    )
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        ["*test_loaded[[]01_actor_timers[]] PASSED*", "*test_loaded[[]04_runtime_config[]] PASSED*"]
    )


def test_settings_are_unset_before_the_step_loads(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HISTORY_MAX_PAIRS", "2")
    result = run_inner(
        pytester,
        'STEP = "01_actor_timers"\n'
        'SETTINGS = ["HISTORY_MAX_PAIRS"]\n'
        "def test_default(step):\n"
        "    assert step.HISTORY_MAX_PAIRS == 10\n",
    )
    result.assert_outcomes(passed=1)


def test_without_settings_the_environment_is_read(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HISTORY_MAX_PAIRS", "2")
    result = run_inner(
        pytester,
        'STEP = "01_actor_timers"\ndef test_set(step):\n    assert step.HISTORY_MAX_PAIRS == 2\n',
    )
    result.assert_outcomes(passed=1)


def test_a_module_that_names_no_step_is_told_how(pytester: pytest.Pytester) -> None:
    result = run_inner(pytester, "def test_needs_a_step(step):\n    pass\n")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*asks for the `step` fixture but sets neither STEP nor*"])
