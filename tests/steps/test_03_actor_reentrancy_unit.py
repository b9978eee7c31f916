"""Step 03 without a runtime: the config daprd is given, the settings route and the follow-up."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from lab_plumbing import EXACT_JSON
from tests.support.steps import DRAIN_CLAMPED_FROM, load_step

STEP = "03_actor_reentrancy"

SETTINGS = ["REENTRANCY_ENABLED", "REENTRANCY_MAX_STACK_DEPTH", "FOLLOW_UP_TIMEOUT_SECONDS"]


def dapr_config(step) -> dict:
    """What GET /dapr/config serves once the lifespan has installed RUNTIME_CONFIG."""
    return json.loads(EXACT_JSON.serialize(step.RUNTIME_CONFIG))


def test_reentrancy_is_on_for_chat_agent_only_and_both_types_are_advertised(step) -> None:
    config = dapr_config(step)
    assert sorted(config["entities"]) == ["ChatAgent", "FollowUpAgent"]
    assert "reentrancy" not in config  # not global: FollowUpAgent is never re-entered
    assert config["entitiesConfig"] == [
        {
            "entities": ["ChatAgent"],
            # repeated from the global settings: an entry inherits none of them
            "actorIdleTimeout": config["actorIdleTimeout"],
            "drainOngoingCallTimeout": config["drainOngoingCallTimeout"],
            "drainRebalancedActors": config["drainRebalancedActors"],
            "reentrancy": {"enabled": True, "maxStackDepth": 32},
        }
    ]


def test_the_drain_timeout_is_below_the_clamp_of_current_releases(step) -> None:
    assert step.DRAIN_ONGOING_CALL_TIMEOUT < DRAIN_CLAMPED_FROM
    assert dapr_config(step)["drainOngoingCallTimeout"] == "0h0m20s0ms0μs"


def test_one_switch_turns_reentrancy_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REENTRANCY_ENABLED", "false")
    monkeypatch.setenv("REENTRANCY_MAX_STACK_DEPTH", "4")
    step = load_step(STEP)
    entry = dapr_config(step)["entitiesConfig"][0]
    assert entry["reentrancy"] == {"enabled": False, "maxStackDepth": 4}


def test_reentrancy_route_shows_the_settings(step) -> None:
    assert TestClient(step.app).get("/reentrancy").json() == {
        "actor_type": "ChatAgent",
        "enabled": True,
        "max_stack_depth": 32,
        "follow_up_timeout_seconds": 5,
    }


def test_follow_up_quotes_the_previous_user_message(step) -> None:
    assert step.compose_follow_up([]) == "this is your first message"
    history = [
        {"role": "user", "content": "5s"},
        {"role": "assistant", "content": "You said: 5s (follow-up: this is your first message)"},
    ]
    assert step.compose_follow_up(history) == "earlier you said: 5s"
