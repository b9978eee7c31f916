"""The model's settings, checked when the app starts: off without LLM_BASE_URL, and with it a
model name and a timeout below the actor call timeout, or the app stops with a one-line reason.
The key stays out of what the app prints about its model."""

from __future__ import annotations

import os
import subprocess

import pytest

from daprlab import logfilter
from daprlab.console.state import ConsoleState, StepSettings
from daprlab.model_server import MODEL_ALIAS
from daprlab.paths import step_dir
from daprlab.stack.command_lines import uvicorn_argv
from lab_plumbing import Model
from lab_plumbing.model import BUDGET_WINDOW_SECONDS, Budget
from tests.support.steps import load_step

STEP = "04_runtime_config"
KEY = "sk-lab-settings-2b7e151628aed2a6abf7158809cf4f3c"


def test_without_a_base_url_the_model_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLM_BASE_URL", raising=False)
    monkeypatch.setenv("LLM_TIMEOUT_SECONDS", "99")  # not checked: there is no model to call
    assert not Model(30).enabled


def test_the_app_refuses_a_model_timeout_not_below_the_actor_call_timeout() -> None:
    """The real app, started as the runner starts it: it stops with the reason, one line."""
    env = {
        **os.environ,
        "LLM_BASE_URL": "http://127.0.0.1:9/v1",
        "LLM_MODEL": MODEL_ALIAS,
        "LLM_TIMEOUT_SECONDS": "30",
        "ACTOR_CALL_TIMEOUT_SECONDS": "30",
    }
    argv = uvicorn_argv("main:app", step_dir(STEP), 9)
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1] == (
        "LLM_TIMEOUT_SECONDS (30) must be below ACTOR_CALL_TIMEOUT_SECONDS (30): a slower "
        "model call would answer 504 while its reply still lands in the history"
    ), done.stderr


@pytest.mark.parametrize(
    ("setting", "value", "complaint"),
    [
        ("LLM_TIMEOUT_SECONDS", "31", r"LLM_TIMEOUT_SECONDS \(31\) must be below"),
        ("LLM_TIMEOUT_SECONDS", "soon", "LLM_TIMEOUT_SECONDS must be a whole number"),
        ("LLM_CALLS_PER_HOUR", "0", "LLM_CALLS_PER_HOUR must be a whole number of at least 1"),
        ("LLM_MODEL", "", "LLM_MODEL must name the model LLM_BASE_URL serves"),
    ],
)
def test_a_bad_model_setting_stops_the_step(
    monkeypatch: pytest.MonkeyPatch, setting: str, value: str, complaint: str
) -> None:
    monkeypatch.setenv("LLM_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("LLM_MODEL", MODEL_ALIAS)
    monkeypatch.setenv(setting, value)
    with pytest.raises(SystemExit, match=complaint):
        load_step(STEP)


def test_a_step_with_a_model_keeps_the_key_out_of_its_repr(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LLM_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("LLM_MODEL", MODEL_ALIAS)
    monkeypatch.setenv("LLM_API_KEY", KEY)
    step = load_step(STEP)
    assert step.model.enabled
    assert repr(step.model) == f"Model({MODEL_ALIAS} at http://127.0.0.1:9/v1)"


def test_the_budget_starts_again_after_its_hour() -> None:
    stored = {"window_started_at": 1000.0, "calls": 5, "tokens": 900}
    assert Budget.current(stored, 1000.0 + BUDGET_WINDOW_SECONDS - 1) == Budget(1000.0, 5, 900)
    assert Budget.current(stored, 1000.0 + BUDGET_WINDOW_SECONDS) == Budget(4600.0)
    assert Budget(0.0).resets_at == "1970-01-01T01:00:00Z"


def test_the_console_puts_each_model_call_on_its_actors_timeline() -> None:
    state = ConsoleState(STEP, StepSettings())
    line = f"{MODEL_ALIAS} answered in 412 ms, 35 tokens (28 in, 7 out)"
    state.feed("app", f"INFO:     model call: ChatAgent alice: {line}")
    state.feed("app", f"WARNING:     model call failed: ChatAgent bob: {MODEL_ALIAS}: no answer")
    state.feed("app", "WARNING:     answered 429: ChatAgent carl has spent its model budget")
    events = [(e["kind"], e["actor"]) for e in state.events_since(0)]
    assert events == [
        ("model call", "ChatAgent alice"),
        ("model call failed", "ChatAgent bob"),
        ("429 answered", "ChatAgent carl"),
    ]
    assert state.events_since(0)[0]["text"] == f"model call: ChatAgent alice: {line}"


def test_the_quiet_view_shows_the_model_servers_errors_only() -> None:
    assert not logfilter.shown_by_default("model", "llama_perf_context_print: eval time = 9 ms")
    assert not logfilter.shown_by_default("model", "INFO:     Uvicorn running on http://x")
    assert logfilter.shown_by_default("model", "ValueError: Failed to load model from file")
    assert logfilter.shown_by_default("model", "Traceback (most recent call last):")
