"""One call at a time inside an actor, on the app's side too: daprd's turn ends at the caller's
timeout, while the app may still be running the call it gave up on."""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from dapr.actor import Actor

A = TypeVar("A", bound=Actor)
R = TypeVar("R")


def one_call_at_a_time(
    method: Callable[[A, Any], Awaitable[R]],
) -> Callable[[A, Any], Awaitable[R]]:
    """An actor method that runs once at a time per actor (type and id): a call waits for the
    one before it to end.

    daprd runs one call at a time per actor, but its turn ends when the caller stops waiting
    (a 504): a retry then enters the actor while the attempt it retries is still reading or
    saving the state, and both would append to the history. This lock outlives an activation
    (the SDK makes a new actor object when daprd activates the actor again) and is dropped once
    no call holds or waits for it. Not for a method that a call chain re-enters: it would wait
    for itself.
    """
    # Per decorated method, not per module: each step's app has its own.
    locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = (
        weakref.WeakValueDictionary()
    )

    @functools.wraps(method)
    async def one_at_a_time(actor: A, argument: Any) -> R:
        who = (actor.runtime_ctx.actor_type_info.type_name, actor.id.id)
        lock = locks.get(who)
        if lock is None:
            lock = locks[who] = asyncio.Lock()
        async with lock:
            return await method(actor, argument)

    return one_at_a_time
