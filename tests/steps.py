"""Load a step's main.py by path (step folders start with a digit, so they are not packages)."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from dapr.actor import ActorRuntime
from dapr.actor.runtime.config import ActorRuntimeConfig

from daprlab.paths import step_dir


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
