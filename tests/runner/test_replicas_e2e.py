"""Replicas of one app: placement spreads the actors; the survivors take over a dead one's."""

from __future__ import annotations

import pytest

from daprlab.runner.actor_placement import sent_tables
from daprlab.wait import wait_for

pytestmark = pytest.mark.e2e
STEP = "01_actor_timers"
ACTORS = [f"user{i}" for i in range(20)]
SLACK = 30


def active(metadata: dict) -> int:
    entries = metadata.get("actorRuntime", {}).get("activeActors", [])
    return sum(int(e.get("count", 0)) for e in entries if e["type"] == "ChatAgent")


def test_actors_spread_over_replicas_and_move_when_one_dies(lab) -> None:
    running = lab(STEP, instances=2)
    first, second = running.stack.instances
    # Both replicas must be in the placement table before the actors are placed.
    # (placement's log on 1.14-1.16, its state on 1.17+: daprlab.releases)
    wait_for(
        lambda: sent_tables(running.stack).get("default", (0, 0))[0] == 2,
        SLACK,
        "placement to send a table of both replicas",
    )
    for actor in ACTORS:
        assert running.app.post(f"/chat/{actor}", json={"content": actor}).status_code == 200

    counts = [
        active(running.sidecar.get(f"{i.dapr_url}/v1.0/metadata").json()) for i in (first, second)
    ]
    assert sum(counts) == len(ACTORS)
    assert all(count > 0 for count in counts), f"one replica hosts every actor: {counts}"

    running.stack.stop_instance(second)

    # Every conversation is still there, served by the surviving replica.
    def all_served() -> bool:
        for actor in ACTORS:
            resp = running.app.get(f"/chat/{actor}/history")
            if resp.status_code != 200:
                return False
            assert resp.json()["messages"][0]["content"] == actor
        return True

    wait_for(all_served, SLACK, "the survivor to take over every actor")
    assert active(running.metadata()) == len(ACTORS)
