"""Load a step's main.py by path (step folders start with a digit, so they are not packages),
and the one `step` fixture (a pytest plugin: tests/conftest.py names this module).

A test module that asks for `step` says which step in module constants:

- `STEP = "01_actor_timers"`: that step;
- `STEP_PARAMS = steps()`: each test runs once per step, the step's name as its id;
- `SETTINGS = ["NAME", ...]`: environment variables unset before the step loads, so it starts
  from its defaults whatever the shell sets (optional).

Each test gets the step's main.py freshly loaded.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from datetime import timedelta
from types import ModuleType

import pytest
from dapr.actor import Actor, ActorId, ActorRuntime
from dapr.actor.runtime._type_information import ActorTypeInformation
from dapr.actor.runtime.config import ActorRuntimeConfig
from dapr.actor.runtime.context import ActorRuntimeContext
from dapr.clients.base import DaprActorClientBase

from daprlab.paths import REPO_ROOT, step_dir
from lab_plumbing import EXACT_JSON

# From Dapr 1.17.7 on, daprd cuts a drain timeout of this or more to 24 s (dapr/dapr #9897).
DRAIN_CLAMPED_FROM = timedelta(seconds=30)
# How daprd wraps the error body of an actor method that failed, by runtime release.
DAPRD_ERROR_WRAPPINGS = {
    "1.14": "error invoke actor method: error from actor service: ",
    # With the app's HTTP status since 1.15.0 (pkg/actors/targets/app/app.go at that tag).
    "1.15+": "error invoke actor method: error from actor service: (500) ",
}


def app_source(step: str) -> str:
    """The code a step's app runs: its main.py and the lab's plumbing (whose lines it logs too)."""
    plumbing = sorted((REPO_ROOT / "lab_plumbing").glob("*.py"))
    return "\n".join(path.read_text() for path in [step_dir(step) / "main.py", *plumbing])


def load_step(step: str) -> ModuleType:
    """Import `<step>/main.py` under a unique name, with the SDK's actor config reset first."""
    # ActorRuntime keeps its config in class-level globals shared by every step in this process.
    ActorRuntime.set_actor_config(ActorRuntimeConfig())
    name = f"step_{step}"
    spec = importlib.util.spec_from_file_location(name, step_dir(step) / "main.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


STEP_NAME = "STEP"
STEP_LIST = "STEP_PARAMS"
STEP_SETTINGS = "SETTINGS"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A module's STEP_PARAMS: its tests that take `step` run once per step."""
    params = getattr(metafunc.module, STEP_LIST, None)
    if params is not None and "step" in metafunc.fixturenames:
        metafunc.parametrize("step", params, indirect=True)


@pytest.fixture
def step(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The step's main.py: the module's STEP, or one of its STEP_PARAMS, with its SETTINGS unset."""
    module = request.module
    name = getattr(request, "param", None) or getattr(module, STEP_NAME, None)
    if name is None:
        raise pytest.UsageError(
            f"{module.__name__} asks for the `step` fixture but sets neither {STEP_NAME} nor "
            f"{STEP_LIST} (see tests/support/steps.py)"
        )
    for setting in getattr(module, STEP_SETTINGS, ()):
        monkeypatch.delenv(setting, raising=False)
    return load_step(name)


class RecordingActorClient(DaprActorClientBase):
    """Stands in for the SDK's client of the sidecar in unit tests: records what an actor sends.

    `unregister_timer_outcome` is what unregistering a timer does: None succeeds, an exception
    is raised, and HANG waits for ever (a sidecar that takes the request and never answers).
    """

    HANG = "hang"

    def __init__(self, unregister_timer_outcome: BaseException | str | None = None) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.bodies: dict[str, bytes] = {}
        self.unregister_timer_outcome = unregister_timer_outcome

    async def invoke_method(
        self, actor_type: str, actor_id: str, method: str, data: bytes | None = None
    ) -> bytes:
        raise NotImplementedError("a unit test calls the actor, not through the sidecar")

    async def save_state_transactionally(self, actor_type: str, actor_id: str, data: bytes) -> None:
        self.calls.append(("save_state", actor_type, actor_id))
        self.bodies["save_state"] = data

    async def get_state(self, actor_type: str, actor_id: str, name: str) -> bytes:
        return b""  # no state stored yet

    async def register_reminder(
        self, actor_type: str, actor_id: str, name: str, data: bytes
    ) -> None:
        self.calls.append(("register_reminder", actor_type, actor_id, name))
        self.bodies["register_reminder"] = data

    async def unregister_reminder(self, actor_type: str, actor_id: str, name: str) -> None:
        self.calls.append(("unregister_reminder", actor_type, actor_id, name))

    async def register_timer(self, actor_type: str, actor_id: str, name: str, data: bytes) -> None:
        self.calls.append(("register_timer", actor_type, actor_id, name))
        self.bodies["register_timer"] = data

    async def unregister_timer(self, actor_type: str, actor_id: str, name: str) -> None:
        self.calls.append(("unregister_timer", actor_type, actor_id, name))
        if self.unregister_timer_outcome == self.HANG:
            await asyncio.Event().wait()
        elif isinstance(self.unregister_timer_outcome, BaseException):
            raise self.unregister_timer_outcome


def actor_of(step: ModuleType, client: RecordingActorClient, actor_id: str = "unit") -> Actor:
    """The step's ChatAgent as the SDK creates it, talking to `client` instead of a sidecar."""
    context = ActorRuntimeContext(
        ActorTypeInformation.create(step.ChatAgent), EXACT_JSON, EXACT_JSON, client
    )
    return context.create_actor(ActorId(actor_id))
