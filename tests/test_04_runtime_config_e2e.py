"""Step 04 on the real runtime: the config daprd reads, idle deactivation, per-type overrides."""

from __future__ import annotations

import time

import pytest

from daprlab.wait import holds_for, wait_for

pytestmark = pytest.mark.e2e
STEP = "04_runtime_config"
SLACK = 15


def test_dapr_config_carries_the_configured_values(lab) -> None:
    running = lab(
        STEP,
        app_env={
            "ACTOR_IDLE_TIMEOUT_SECONDS": "7",
            "ACTOR_SCAN_INTERVAL_SECONDS": "3",
            "DRAIN_ONGOING_CALL_TIMEOUT_SECONDS": "11",
            "DRAIN_REBALANCED_ACTORS": "false",
            "REENTRANCY_ENABLED": "true",
            "REENTRANCY_MAX_STACK_DEPTH": "5",
            "REMINDERS_STORAGE_PARTITIONS": "3",
            "QUICK_IDLE_TIMEOUT_SECONDS": "2",
        },
    )
    config = running.app.get("/dapr/config").json()
    assert sorted(config.pop("entities")) == ["ChatAgent", "QuickChatAgent"]
    assert config == {
        "actorIdleTimeout": "0h0m7s0ms0μs",
        "actorScanInterval": "0h0m3s0ms0μs",
        "drainOngoingCallTimeout": "0h0m11s0ms0μs",
        "drainRebalancedActors": False,
        "reentrancy": {"enabled": True, "maxStackDepth": 5},
        "remindersStoragePartitions": 3,
        "entitiesConfig": [
            {
                "entities": ["QuickChatAgent"],
                "actorIdleTimeout": "0h0m2s0ms0μs",
                "drainOngoingCallTimeout": "0h0m11s0ms0μs",
                "drainRebalancedActors": False,
            }
        ],
    }
    # daprd read it: it says so when its actor runtime starts.
    running.wait_for_log("daprd", r"Actor runtime started\. Idle timeout: 7s", SLACK)
    assert {e["type"] for e in running.metadata()["actors"]} >= {"ChatAgent", "QuickChatAgent"}


def test_idle_actor_is_deactivated_and_reactivates_with_its_history(lab) -> None:
    idle = 2
    # A one-hour scan interval would delay deactivation if the runtime still read it.
    running = lab(
        STEP,
        app_env={"ACTOR_IDLE_TIMEOUT_SECONDS": str(idle), "ACTOR_SCAN_INTERVAL_SECONDS": "3600"},
    )
    assert running.app.post("/chat/sleepy", json={"content": "hi"}).status_code == 200
    sent = time.monotonic()
    assert running.app.get("/runtime/actors").json()["ChatAgent"] == 1

    running.wait_for_log("app", r"ChatAgent sleepy deactivated", idle + SLACK)
    took = time.monotonic() - sent
    assert idle * 0.8 <= took < idle + SLACK, took
    wait_for(lambda: running.app.get("/runtime/actors").json()["ChatAgent"] == 0, SLACK, "count 0")
    assert running.active_actors("ChatAgent") == 0

    history = running.app.get("/chat/sleepy/history").json()["messages"]
    assert [m["content"] for m in history] == ["hi", "You said: hi"]
    assert len(running.wait_for_log("app", r"ChatAgent sleepy activated", SLACK, count=2)) == 2
    assert running.active_actors("ChatAgent") == 1


def test_entities_config_overrides_one_type_only(lab) -> None:
    running = lab(STEP, app_env={"QUICK_IDLE_TIMEOUT_SECONDS": "3"})  # global idle: 1 hour
    assert running.app.post("/chat/c1", json={"content": "slow"}).status_code == 200
    assert running.app.post("/quick-chat/q1", json={"content": "fast"}).status_code == 200
    running.wait_for_log("app", r"QuickChatAgent q1 activated", SLACK)

    running.wait_for_log("app", r"QuickChatAgent q1 deactivated", SLACK)
    wait_for(
        lambda: running.app.get("/runtime/actors").json() == {"ChatAgent": 1, "QuickChatAgent": 0},
        SLACK,
        "only QuickChatAgent to be deactivated",
    )
    holds_for(
        lambda: running.app.get("/runtime/actors").json()["ChatAgent"] == 1,
        3,
        "ChatAgent c1 stays active under the global one-hour idle timeout",
    )
    assert running.app.get("/quick-chat/q1/history").json()["messages"][0]["content"] == "fast"
