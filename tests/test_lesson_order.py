"""Each main.py teaches first: its key SDK call early, every route above one plumbing banner."""

from __future__ import annotations

import re

import pytest

from tests.test_steps_identical import EXPECTED_STEPS, source

# A learner reaches the feature's key SDK call within this many lines.
KEY_CALL_LINE_LIMIT = 170
# The first line that makes the call (not an import): what the step teaches.
KEY_CALLS = {
    "01_actor_timers": re.compile(r"\bself\.register_timer\("),
    "02_actor_reminders": re.compile(r"\bself\.register_reminder\("),
    "03_actor_reentrancy": re.compile(r"\bActorReentrancyConfig\("),
    # The call that carries the knobs: the one with actor_scan_interval among its arguments.
    "04_runtime_config": re.compile(r"\bActorRuntimeConfig\((?=[^)]*actor_scan_interval=)"),
}
BANNER = re.compile(r"^# =+ Not the lesson: .* =+$", re.M)
ROUTE = re.compile(r"^@app\.(?:get|post|put|delete)\(", re.M)


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


@pytest.mark.parametrize("step", EXPECTED_STEPS)
def test_the_key_sdk_call_comes_early(step: str) -> None:
    text = source(step)
    found = KEY_CALLS[step].search(text)
    assert found, f"{step}/main.py no longer makes its key call /{KEY_CALLS[step].pattern}/"
    line = line_of(text, found.start())
    assert line < KEY_CALL_LINE_LIMIT, f"{step}/main.py reaches its key call at line {line}"


@pytest.mark.parametrize("step", EXPECTED_STEPS)
def test_one_banner_with_every_route_above_it(step: str) -> None:
    text = source(step)
    banners = BANNER.findall(text)
    assert len(banners) == 1, f"{step}/main.py has {len(banners)} plumbing banners"
    banner = BANNER.search(text)
    routes = list(ROUTE.finditer(text))
    assert routes, f"{step}/main.py has no route"
    below = [line_of(text, r.start()) for r in routes if r.start() > banner.start()]
    assert not below, f"{step}/main.py has routes below the banner, at lines {below}"
