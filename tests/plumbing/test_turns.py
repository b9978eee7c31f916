"""one_call_at_a_time: per actor, a call waits for the one before it to end (daprd's own turn
ends at the caller's timeout; end to end: tests/steps/test_idempotency_e2e.py)."""

from __future__ import annotations

import asyncio

from lab_plumbing import one_call_at_a_time
from tests.support.steps import RecordingActorClient, actor_of

STEP = "01_actor_timers"  # the `step` fixture (tests/support/steps.py) loads it


def recorder(events: list[str]):
    @one_call_at_a_time
    async def call(actor, name: str) -> str:
        events.append(f"{actor.id.id} {name} in")
        await asyncio.sleep(0.05)  # a save in flight: the other call gets the loop meanwhile
        if name.startswith("fail"):
            raise ValueError(name)
        events.append(f"{actor.id.id} {name} out")
        return name

    return call


def test_calls_to_one_actor_take_turns(step) -> None:
    events: list[str] = []
    call = recorder(events)
    agent = actor_of(step, RecordingActorClient(), "a")

    async def both() -> list[str]:
        return await asyncio.gather(call(agent, "first"), call(agent, "retry"))

    assert asyncio.run(both()) == ["first", "retry"]
    assert events == ["a first in", "a first out", "a retry in", "a retry out"]


def test_calls_to_two_actors_do_not_wait_for_each_other(step) -> None:
    events: list[str] = []
    call = recorder(events)
    a, b = (actor_of(step, RecordingActorClient(), name) for name in "ab")

    async def both() -> None:
        await asyncio.gather(call(a, "x"), call(b, "y"))

    asyncio.run(both())
    assert events[:2] == ["a x in", "b y in"]


def test_the_turn_outlives_the_actor_object(step) -> None:
    # daprd may activate the actor again (a new object) while the call it gave up on still runs.
    events: list[str] = []
    call = recorder(events)
    old, new = (actor_of(step, RecordingActorClient(), "a") for _ in range(2))

    async def both() -> None:
        await asyncio.gather(call(old, "first"), call(new, "retry"))

    asyncio.run(both())
    assert events == ["a first in", "a first out", "a retry in", "a retry out"]


def test_a_failed_call_ends_its_turn(step) -> None:
    events: list[str] = []
    call = recorder(events)
    agent = actor_of(step, RecordingActorClient(), "a")

    async def both() -> list[object]:
        return await asyncio.gather(
            call(agent, "fail"), call(agent, "next"), return_exceptions=True
        )

    first, second = asyncio.run(both())
    assert isinstance(first, ValueError) and second == "next"
    assert events == ["a fail in", "a next in", "a next out"]
