"""Step 04 on the real runtime: the config daprd reads, idle deactivation, per-type overrides."""

from __future__ import annotations

import json
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from daprlab.wait import holds_for, wait_for

pytestmark = pytest.mark.e2e
STEP = "04_runtime_config"
SLACK = 15
# daprd deactivates an actor at its own deadline (no scan); this covers its call to the app, the
# log line and the test's polling. Measured: 0.01-0.05 s, also with both cores busy.
DEACTIVATION_LATENCY = 1.0
# Every call of one chain carries the id daprd uses to recognise a re-entrant call.
CHAIN = {"Dapr-Reentrancy-Id": "chain-1"}
# Long enough to show a call is held back; daprd gives up on a paused Redis only after ~30 s.
HELD_WINDOW = 3


# ---- helpers ----------------------------------------------------------------------------------


def stored_reminders(running, key: str) -> list[str]:
    """Actor ids in one reminder record that daprd keeps in the state store."""
    return [r["actorID"] for r in json.loads(running.redis("HGET", key, "data") or "[]")]


def invoke(running, actor_type: str, actor_id: str, method: str, **kwargs) -> httpx.Response:
    """An actor call through the sidecar, as part of the chain CHAIN."""
    path = f"/v1.0/actors/{actor_type}/{actor_id}/method/{method}"
    return running.sidecar.post(path, headers=CHAIN, **kwargs)


def refused_for_depth(running) -> httpx.Response | None:
    """A call of the chain into ChatAgent held, if daprd refused it for the stack depth.

    Until the second call of the chain is inside, this one gets in and the app answers it.
    """
    resp = invoke(running, "ChatAgent", "held", "NoSuchMethod")
    return resp if running.release.stack_depth_error in resp.text else None


def deactivated_after(running, label: str, since: float, idle: int) -> float:
    """Seconds from `since` until the app logged the deactivation of `label` ("ChatAgent x")."""
    running.wait_for_log("app", rf"\b{label} deactivated", idle + DEACTIVATION_LATENCY + SLACK)
    return time.monotonic() - since


# ---- tests ------------------------------------------------------------------------------------
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
    # Only the sidecar may ask (the app API token); the test shows what daprd is told.
    token = {"dapr-api-token": running.stack.config.app_api_token}
    config = running.app.get("/dapr/config", headers=token).json()
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
    # daprd read it: it says so when its actor runtime starts (with the idle timeout on 1.14).
    rel = running.release
    (started,) = running.wait_for_log("daprd", rel.actor_runtime_started.pattern, SLACK)
    if rel.logs_idle_timeout:
        assert rel.actor_runtime_started.search(started)["idle"] == "7s", started
    assert {e["type"] for e in running.metadata()["actors"]} >= {"ChatAgent", "QuickChatAgent"}


def test_idle_actor_is_deactivated_and_reactivates_with_its_history(lab) -> None:
    idle = 2
    # A one-hour scan interval would delay deactivation if the runtime still read it.
    running = lab(
        STEP,
        app_env={"ACTOR_IDLE_TIMEOUT_SECONDS": str(idle), "ACTOR_SCAN_INTERVAL_SECONDS": "3600"},
    )
    before = time.monotonic()
    assert running.app.post("/chat/sleepy", json={"content": "hi"}).status_code == 200
    answered = time.monotonic() - before
    assert running.app.get("/runtime/actors").json()["ChatAgent"] == 1

    # The deadline is `idle` after the call took the actor, somewhere in [before, answered].
    took = deactivated_after(running, "ChatAgent sleepy", before, idle)
    print(f"deactivated {took - idle:+.2f}s after the idle timeout (call took {answered:.2f}s)")
    assert idle <= took <= answered + idle + DEACTIVATION_LATENCY, (took, answered)
    wait_for(lambda: running.app.get("/runtime/actors").json()["ChatAgent"] == 0, SLACK, "count 0")
    assert running.active_actors("ChatAgent") == 0

    history = running.app.get("/chat/sleepy/history").json()["messages"]
    assert [m["content"] for m in history] == ["hi", "You said: hi"]
    assert len(running.wait_for_log("app", r"ChatAgent sleepy activated", SLACK, count=2)) == 2
    assert running.active_actors("ChatAgent") == 1


def test_entities_config_overrides_one_type_only(lab) -> None:
    quick_idle = 3
    running = lab(STEP, app_env={"QUICK_IDLE_TIMEOUT_SECONDS": str(quick_idle)})  # global: 1 hour
    assert running.app.post("/chat/c1", json={"content": "slow"}).status_code == 200
    before = time.monotonic()
    assert running.app.post("/quick-chat/q1", json={"content": "fast"}).status_code == 200
    answered = time.monotonic() - before
    running.wait_for_log("app", r"QuickChatAgent q1 activated", SLACK)

    took = deactivated_after(running, "QuickChatAgent q1", before, quick_idle)
    assert quick_idle <= took <= answered + quick_idle + DEACTIVATION_LATENCY, (took, answered)
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


def test_reminder_partitions_split_the_records_of_chat_agent_only(lab) -> None:
    partitions = 3
    running = lab(STEP, app_env={"REMINDERS_STORAGE_PARTITIONS": str(partitions)})
    chat_ids = [f"p{n}" for n in range(6)]
    for actor_type, actor_id in [*(("ChatAgent", a) for a in chat_ids), ("QuickChatAgent", "q1")]:
        path = f"/v1.0/actors/{actor_type}/{actor_id}/reminders/later"
        resp = running.sidecar.post(path, json={"dueTime": "1h"})
        assert resp.status_code == 204, resp.text

    if not running.release.reminder_partitions:
        # 1.15 on (daprlab.releases): the Scheduler keeps reminders; the setting means nothing
        # and Redis holds no reminder record of either type. daprd still has every reminder.
        assert running.redis("KEYS", "actors||*") == ""
        for actor_type, actor_id in [
            *(("ChatAgent", a) for a in chat_ids),
            ("QuickChatAgent", "q1"),
        ]:
            resp = running.sidecar.get(f"/v1.0/actors/{actor_type}/{actor_id}/reminders/later")
            assert resp.status_code == 200 and resp.json()["dueTime"], resp.text
        return
    # ChatAgent (global setting): no single record, but partitions named after a metadata id.
    metadata = json.loads(running.redis("HGET", "actors||ChatAgent||metadata", "data"))
    assert metadata["actorRemindersMetadata"]["partitionCount"] == partitions
    prefix = f"actors||ChatAgent||{metadata['id']}||reminders||"
    keys = running.redis("KEYS", "actors||ChatAgent||*").split()
    parts = sorted(k for k in keys if k.startswith(prefix))
    print(f"ChatAgent reminder keys: {sorted(keys)}")
    assert set(parts) <= {f"{prefix}{n}" for n in range(1, partitions + 1)}
    assert len(parts) > 1, parts
    assert sorted(a for key in parts for a in stored_reminders(running, key)) == chat_ids
    assert running.redis("EXISTS", "actors||ChatAgent") == "0"

    # QuickChatAgent: its entitiesConfig entry leaves the field out, so it gets 0, not 3.
    assert stored_reminders(running, "actors||QuickChatAgent") == ["q1"]
    quick_meta = json.loads(running.redis("HGET", "actors||QuickChatAgent||metadata", "data"))
    assert quick_meta["actorRemindersMetadata"]["partitionCount"] == 0
    assert running.redis("KEYS", "actors||QuickChatAgent||*||reminders||*") == ""


def test_global_reentrancy_lets_the_same_chain_in_for_chat_agent_only(lab) -> None:
    depth = 2
    running = lab(
        STEP, app_env={"REENTRANCY_ENABLED": "true", "REENTRANCY_MAX_STACK_DEPTH": str(depth)}
    )
    paused_redis = running.stack.control["redis"]
    with ThreadPoolExecutor(max_workers=4) as pool:
        # A paused Redis holds each first call inside its actor: activated, waiting for its state.
        paused_redis.signal(signal.SIGSTOP)
        try:
            held = [
                pool.submit(invoke, running, t, "held", "GetConversationHistory")
                for t in ("ChatAgent", "QuickChatAgent")
            ]
            running.wait_for_log("app", r"\bChatAgent held activated", SLACK)
            running.wait_for_log("app", r"QuickChatAgent held activated", SLACK)
            started = time.monotonic()

            # ChatAgent (global reentrancy): a call of the same chain gets into the busy actor;
            # the app answers at once (an unknown method, so it needs no state).
            resp = invoke(running, "ChatAgent", "held", "NoSuchMethod", timeout=HELD_WINDOW)
            print(f"re-entrant call answered: {resp.status_code} {resp.text}")
            assert resp.status_code == 500 and "NoSuchMethod" in resp.text, resp.text

            # maxStackDepth: with two calls of the chain inside, the next one is refused.
            def hold_second() -> None:
                held.append(
                    pool.submit(invoke, running, "ChatAgent", "held", "GetConversationHistory")
                )

            def refused_past_depth() -> httpx.Response | None:
                if held[-1].done():
                    # It came while a probe was inside, and was itself the call past the depth.
                    assert running.release.stack_depth_error in held.pop().result().text
                    hold_second()
                    return None
                return refused_for_depth(running)

            hold_second()
            refused = wait_for(refused_past_depth, SLACK, f"a call past maxStackDepth {depth}")
            assert refused.status_code == 500, refused.text

            # QuickChatAgent: its entry leaves reentrancy out (off), so the same chain waits.
            with pytest.raises(httpx.ReadTimeout):
                invoke(running, "QuickChatAgent", "held", "NoSuchMethod", timeout=HELD_WINDOW)
            print(f"checks done {time.monotonic() - started:.2f}s after both actors were held")
        finally:
            paused_redis.signal(signal.SIGCONT)
        results = [f.result() for f in held]
    assert [r.status_code for r in results] == [200, 200, 200], [r.text for r in results]
