"""Failed calls to daprd, as errors that say what failed and how to fix it."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp
from dapr.clients import DaprInternalError
from fastapi import HTTPException

logger = logging.getLogger(__name__)

ACTOR_ERROR_WRAPPING = "error from actor service: "  # daprd's prefix to a failed method's body
# Each way a call to daprd fails: its error answer, no connection, or no answer in time.
SIDECAR_ERRORS = (DaprInternalError, aiohttp.ClientError, TimeoutError)
# The model's errors (lab_plumbing/model.py), by the errorCode an actor sends them with, and the
# HTTP status a route answers each with.
ERR_MODEL_FAILED = "ERR_MODEL_FAILED"
ERR_MODEL_TIMEOUT = "ERR_MODEL_TIMEOUT"
ERR_MODEL_BUDGET = "ERR_MODEL_BUDGET"
MODEL_ERROR_STATUSES = ((ERR_MODEL_FAILED, 502), (ERR_MODEL_TIMEOUT, 504), (ERR_MODEL_BUDGET, 429))


def unwrap_actor_error(err: DaprInternalError) -> tuple[str, str]:
    """(errorCode, message) of a failed actor or state call, without daprd's wrapping around it."""
    details = err.as_dict()
    message, code = details["message"] or "", details["errorCode"]
    _, wrapped, body = message.partition(ACTOR_ERROR_WRAPPING)
    if wrapped:
        if body.startswith("("):  # from Dapr 1.15 on, the app's HTTP status first: "(500) {...}"
            body = body.partition(") ")[2]
        try:
            inner = json.loads(body)
            message, code = inner["message"], inner["errorCode"]
        except (ValueError, KeyError, TypeError):
            pass  # not an error our actors sent: keep daprd's message as it is
    return code, message


@contextmanager
def state_store_errors() -> Iterator[None]:
    """Raise a failed state operation anew: the SDK cannot encode the raw bytes `err` carries (it
    would answer a bare "Internal Server Error"); still a DaprInternalError, so it drops changes."""
    try:
        yield
    except DaprInternalError as err:
        code, message = unwrap_actor_error(err)
        raise DaprInternalError(f"the actor state store failed: {message}", code) from err


def error_answer(status: int, detail: str | list[dict[str, Any]]) -> HTTPException:
    """The HTTP error a route answers, logged too: the access log is off by default."""
    logger.warning("answered %d: %s", status, detail)
    return HTTPException(status, detail)
