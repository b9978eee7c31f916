"""Namespaces on one placement service and one Redis: placement keeps them apart, state does not."""

from __future__ import annotations

import httpx
import pytest

from daprlab.runner.actor_placement import sent_tables
from daprlab.wait import wait_for

pytestmark = pytest.mark.e2e
STEP = "01_actor_timers"
SLACK = 30


def active(dapr_url: str) -> int:
    metadata = httpx.get(f"{dapr_url}/v1.0/metadata").json()
    entries = metadata.get("actorRuntime", {}).get("activeActors", [])
    return sum(int(e.get("count", 0)) for e in entries if e["type"] == "ChatAgent")


def test_namespaces_get_their_own_actors_but_share_state_keys(lab) -> None:
    running = lab(STEP, instances=2, namespaces=["team-a", "team-b"])
    team_a, team_b = running.stack.instances
    # Placement keeps one table per namespace: each sidecar is alone in its own.
    # (placement's log on 1.14-1.16, its state on 1.17+: daprlab.releases)
    wait_for(
        lambda: {"team-a", "team-b"} <= sent_tables(running.stack).keys(),
        SLACK,
        "placement to send each namespace its table",
    )

    with (
        httpx.Client(base_url=team_a.app_url, timeout=SLACK) as app_a,
        httpx.Client(base_url=team_b.app_url, timeout=SLACK) as app_b,
    ):
        for i in range(10):
            assert app_a.post(f"/chat/a{i}", json={"content": "from team-a"}).status_code == 200
        # Every team-a actor runs in team-a's replica: team-b's placement table lacks it.
        assert (active(team_a.dapr_url), active(team_b.dapr_url)) == (10, 0)

        # Actor state keys are appId||type||id||key, with no namespace: team-b reads team-a's
        # conversation, through a second, independent activation of the same actor id.
        history = app_b.get("/chat/a0/history").json()["messages"]
        assert [m["content"] for m in history] == ["from team-a", "You said: from team-a"]
        assert (active(team_a.dapr_url), active(team_b.dapr_url)) == (10, 1)
