"""The lab's app plumbing: one copy, imported by every step's main.py (why each piece: README.md).

It keeps no module-level state: four steps load in one test process, each with its own Sidecar
and its own guarded app.
"""

from lab_plumbing.errors import (
    SIDECAR_ERRORS,
    error_answer,
    state_store_errors,
    unwrap_actor_error,
)
from lab_plumbing.guard import JSONBody, accepted, guard
from lab_plumbing.idempotency import KeyHeader, answered_once, keyed
from lab_plumbing.model import Model, ModelBudgetSpent, ModelFailed, ModelTimedOut
from lab_plumbing.serializer import EXACT_JSON, ExactJSONSerializer
from lab_plumbing.settings import app_logger, env_flag, env_int
from lab_plumbing.sidecar import MetadataUnreadable, Sidecar
from lab_plumbing.turns import one_call_at_a_time

__all__ = (
    "EXACT_JSON",
    "SIDECAR_ERRORS",
    "ExactJSONSerializer",
    "JSONBody",
    "KeyHeader",
    "MetadataUnreadable",
    "Model",
    "ModelBudgetSpent",
    "ModelFailed",
    "ModelTimedOut",
    "Sidecar",
    "accepted",
    "answered_once",
    "app_logger",
    "env_flag",
    "env_int",
    "error_answer",
    "guard",
    "keyed",
    "one_call_at_a_time",
    "state_store_errors",
    "unwrap_actor_error",
)
