"""Each main.py is lesson only: its key SDK call early, and no plumbing (that is lab_plumbing)."""

from __future__ import annotations

import ast
import re

import pytest
from dapr.actor.client.proxy import ActorFactoryBase
from dapr.clients import DaprActorClientBase
from dapr.clients.http.client import DaprHttpClient
from dapr.serializers import Serializer

from tests.steps.test_steps_identical import EXPECTED_STEPS, source
from tests.support.steps import load_step

# A learner reaches the feature's key SDK call within this many lines.
KEY_CALL_LINE_LIMIT = 130
# A main.py this long or longer carries more than its lesson.
MAIN_PY_LINE_LIMIT = 350
# The first line that makes the call (not an import): what the step teaches.
KEY_CALLS = {
    "01_actor_timers": re.compile(r"\bself\.register_timer\("),
    "02_actor_reminders": re.compile(r"\bself\.register_reminder\("),
    "03_actor_reentrancy": re.compile(r"\bActorReentrancyConfig\("),
    # The call that carries the knobs: the one with actor_scan_interval among its arguments.
    "04_runtime_config": re.compile(r"\bActorRuntimeConfig\((?=[^)]*actor_scan_interval=)"),
}
# Modules only the plumbing needs: raw HTTP to daprd, token checks, hand-made JSON.
PLUMBING_MODULES = ("aiohttp", "hmac", "json", "dapr.clients.http")
# SDK classes the plumbing extends; a lesson uses them as they are.
SDK_SEAMS = (DaprActorClientBase, DaprHttpClient, Serializer, ActorFactoryBase)


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


@pytest.mark.parametrize("step", EXPECTED_STEPS)
def test_the_key_sdk_call_comes_early(step: str) -> None:
    text = source(step)
    found = KEY_CALLS[step].search(text)
    assert found, f"{step}/main.py no longer makes its key call /{KEY_CALLS[step].pattern}/"
    line = line_of(text, found.start())
    assert line < KEY_CALL_LINE_LIMIT, f"{step}/main.py reaches its key call at line {line}"


def imported_modules(tree: ast.Module) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


@pytest.mark.parametrize("step", EXPECTED_STEPS)
def test_main_py_holds_no_plumbing(step: str) -> None:
    text = source(step)
    lines = text.count("\n")
    assert lines < MAIN_PY_LINE_LIMIT, f"{step}/main.py has {lines} lines"
    assert "Not the lesson" not in text, f"{step}/main.py still has a plumbing banner"
    raw = [
        name
        for name in imported_modules(ast.parse(text))
        if any(name == m or name.startswith(f"{m}.") for m in PLUMBING_MODULES)
    ]
    assert not raw, f"{step}/main.py imports {raw}: that belongs in lab_plumbing"
    module = load_step(step)
    seams = [
        name
        for name, value in vars(module).items()
        if isinstance(value, type)
        and value.__module__ == module.__name__
        and issubclass(value, SDK_SEAMS)
    ]
    assert not seams, f"{step}/main.py subclasses an SDK client or serializer: {seams}"


def test_the_plumbing_check_sees_a_seam() -> None:
    # The check above would catch the classes the steps held before lab_plumbing.
    from lab_plumbing.connections import SharedSessionActorClient, SharedSessionProxyFactory
    from lab_plumbing.serializer import ExactJSONSerializer

    for seam in (SharedSessionActorClient, SharedSessionProxyFactory, ExactJSONSerializer):
        assert issubclass(seam, SDK_SEAMS), seam
