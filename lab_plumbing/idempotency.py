"""A retried message is recorded once: the optional `Idempotency-Key` header of POST /chat, kept
with the user message in the actor's history, and the reply already given to a repeat of it."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from dapr.actor import Actor
from dapr.clients import DaprInternalError
from fastapi import Header
from pydantic import BaseModel

from lab_plumbing.errors import state_store_errors
from lab_plumbing.turns import one_call_at_a_time

logger = logging.getLogger(__name__)
A = TypeVar("A", bound=Actor)

# The header's name in the IETF HTTP API draft and in the large public APIs.
HEADER = "Idempotency-Key"
# Printable ASCII without spaces, quotes or slashes: a UUID, a ULID, "order-42:try" all fit.
KEY_PATTERN = r"^[A-Za-z0-9_.:-]{1,128}$"
# Where the key travels from the route to the actor, and sits in the stored user message.
KEY_FIELD = "idempotency_key"
# daprd hands an actor's error code on to the caller; the route answers this one with a 422.
KEY_REUSED = "ERR_IDEMPOTENCY_KEY_REUSED"
REUSED_TYPE = "idempotency_key_reused"

# The route parameter: the header, checked like every other input (a bad key gets a 422).
KeyHeader = Annotated[
    str | None,
    Header(
        alias=HEADER,
        pattern=KEY_PATTERN,
        description="optional; the same key again with the same message (a retry) gets the "
        "reply already given and records nothing; with another message, a 422. Letters, "
        "digits and _ . : - (1 to 128): a fresh UUID per message, say",
    ),
]


class IdempotencyKeyReused(DaprInternalError):
    """The key came with another message before: the caller reused a key it should not have."""

    def __init__(self, key: str, who: str, recorded: int) -> None:
        where = f"recorded message {recorded} of {who}"
        super().__init__(
            f"{HEADER} {key} came with another message before ({where}): send a new key with "
            "a new message",
            KEY_REUSED,
        )


def keyed(message: BaseModel, key: str | None) -> dict[str, Any]:
    """The message as the actor gets it: its fields, and the key when the caller sent one."""
    fields = message.model_dump()
    return fields if key is None else {**fields, KEY_FIELD: key}


def key_of(payload: object) -> str | None:
    """The key of an actor's input, checked like the header: daprd's own actor API skips the
    route. ValueError for a key that the header would refuse."""
    if not isinstance(payload, dict) or payload.get(KEY_FIELD) is None:
        return None
    key = payload[KEY_FIELD]
    if not isinstance(key, str) or not re.fullmatch(KEY_PATTERN, key):
        raise ValueError(f"{KEY_FIELD} {key!r} does not match {KEY_PATTERN}")
    return key


def earlier_reply(
    history: list[dict[str, str]], message: dict[str, Any], actor_type: str, actor_id: str
) -> dict | None:
    """The reply the history holds for `message`'s key: None for a new key (or none), and
    IdempotencyKeyReused when the key came with another message. History is user/assistant
    pairs, each reply right after its message."""
    key = message.get(KEY_FIELD)
    if not isinstance(key, str):
        return None
    for index in range(0, len(history) - 1, 2):
        earlier = history[index]
        if earlier.get(KEY_FIELD) != key:
            continue
        recorded = index + 1  # the number in the "recorded message N" line of its first attempt
        if earlier["content"] != message.get("content"):  # the role is always "user"
            raise IdempotencyKeyReused(key, f"{actor_type} {actor_id}", recorded)
        logger.info("%s %s answered a repeat of message %d", actor_type, actor_id, recorded)
        return dict(history[index + 1])
    return None


def answered_once(
    history_key: str,
) -> Callable[[Callable[[A, dict], Awaitable[dict]]], Callable[[A, dict], Awaitable[dict]]]:
    """For the actor method that records a message in the state `history_key`: one call at a
    time per actor (turns.py), and a message whose key the history holds answered with the
    reply it got, nothing stored again."""

    def decorate(
        method: Callable[[A, dict], Awaitable[dict]],
    ) -> Callable[[A, dict], Awaitable[dict]]:
        @one_call_at_a_time
        @functools.wraps(method)
        async def once(actor: A, message: dict) -> dict:
            if isinstance(message, dict) and message.get(KEY_FIELD) is not None:
                with state_store_errors():
                    found, history = await actor._state_manager.try_get_state(history_key)
                actor_type = actor.runtime_ctx.actor_type_info.type_name
                history = list(history) if found else []
                earlier = earlier_reply(history, message, actor_type, actor.id.id)
                if earlier is not None:
                    return earlier
            return await method(actor, message)

        return once

    return decorate


def reused_key_detail(message: str) -> list[dict[str, Any]]:
    """The 422 for a reused key, in the shape of every other 422 of the lab's API."""
    return [{"type": REUSED_TYPE, "loc": ["header", HEADER], "msg": message}]
