"""Playing a README's walkthrough (tests/support/readme_check.py reads it): every output compared.

One piece of code for the step READMEs (tests/docs/test_readme_walkthrough_e2e.py, stacks from the
harness) and for EXPERIMENTS.md (tests/runner/test_experiments_e2e.py, the real runner): each passes
how to start `daprlab up` and how to run a command.
"""

from __future__ import annotations

from collections.abc import Callable

from daprlab.wait import DeadlineExceeded, wait_for
from tests.support import readme_check

# The longest wait a guide announces is an expiry: a minute (HISTORY_TTL_SECONDS=60 in
# EXPERIMENTS.md's "Scaling out"), counted from messages sent before the previous command ran.
LATER_TIMEOUT_SECONDS = 90
REPEAT_INTERVAL_SECONDS = 0.5


def prints_later(run: Callable[[str], str], command: str, later: str, varies: bool) -> None:
    """Repeat `command` until it prints `later`, as a learner who waits a while would see."""
    wanted = readme_check.normalize(later, varies)
    printed: list[str] = [""]

    def matches() -> bool:
        printed[0] = run(command)
        return readme_check.normalize(printed[0], varies) == wanted

    try:
        wait_for(matches, LATER_TIMEOUT_SECONDS, f"`{command}`", REPEAT_INTERVAL_SECONDS)
    except DeadlineExceeded as err:
        raise AssertionError(f"{err}\nREADME: {later}\nlast printed: {printed[0]}") from err


def play(
    actions: list[readme_check.Start | readme_check.Command],
    up: Callable[[readme_check.Start], object],
    run: Callable[[str], str],
) -> None:
    """Start what each `daprlab up` says, run each command, compare what it prints."""
    for action in actions:
        if isinstance(action, readme_check.Start):
            up(action)
            continue
        printed = run(action.command)
        if action.expected is not None:
            varies = action.expected in action.varies
            assert readme_check.normalize(printed, varies) == readme_check.normalize(
                action.expected, varies
            ), f"{action.command}\nREADME: {action.expected}\nprinted: {printed}"
        for later in action.later:
            prints_later(run, action.command, later, later in action.varies)
