"""Timers and reminders never call the model: they fire while nobody is talking, and a model
call there would spend the budget (and money) for no one. With the real local model on, one
message makes one model call, however many ticks and fires follow."""

from __future__ import annotations

import pytest

from daprlab import loglines
from daprlab.harness import RunningStack

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("local_model")]
TICKS = 3
LOG_TIMEOUT_SECONDS = 30


def model_calls(stack: RunningStack) -> int:
    return sum(1 for line in stack.logs("app") if loglines.app_message("model call", line))


def test_timer_ticks_never_call_the_model(lab) -> None:
    env = {"TIMER_PERIOD_SECONDS": "1", "TIMER_TTL_SECONDS": "30"}
    stack = lab("01_actor_timers", app_env=env, model=True)
    assert stack.app.post("/chat/tick", json={"content": "hello"}).status_code == 200
    stack.wait_for_log(
        "app", r"timer tick \d+: ChatAgent tick has 2 messages", LOG_TIMEOUT_SECONDS, TICKS
    )
    assert model_calls(stack) == 1


def test_a_reminder_never_calls_the_model(lab) -> None:
    stack = lab("02_actor_reminders", app_env={"HISTORY_TTL_SECONDS": "2"}, model=True)
    assert stack.app.post("/chat/remind", json={"content": "hello"}).status_code == 200
    stack.wait_for_log(
        "app", r"history expired: ChatAgent remind \(reminder clear-history\)", LOG_TIMEOUT_SECONDS
    )
    assert model_calls(stack) == 1
