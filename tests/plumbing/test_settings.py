"""Settings from the environment: a bad value stops the app with one line that says why."""

from __future__ import annotations

import logging

import pytest

from lab_plumbing import app_logger, env_flag, env_int
from lab_plumbing.settings import LOG_FORMAT, env_choice


@pytest.mark.parametrize(
    ("variable", "value", "complaint"),
    [
        (
            "HISTORY_MAX_PAIRS",
            "0",
            "HISTORY_MAX_PAIRS must be a whole number of at least 1, got '0'",
        ),
        ("HISTORY_MAX_PAIRS", "-3", "got '-3'"),
        ("ACTOR_IDLE_TIMEOUT_SECONDS", "1.5", "got '1.5'"),
        ("ACTOR_CALL_TIMEOUT_SECONDS", "soon", "got 'soon'"),
    ],
)
def test_a_bad_whole_number_stops_the_app_with_one_line(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, complaint: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit, match=complaint):
        env_int(variable, 10)


def test_whole_numbers_may_be_padded_and_default_when_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LAB_TEST_NUMBER", " 3 ")
    assert env_int("LAB_TEST_NUMBER", 10) == 3
    monkeypatch.delenv("LAB_TEST_NUMBER")
    assert env_int("LAB_TEST_NUMBER", 10) == 10
    monkeypatch.setenv("LAB_TEST_NUMBER", "0")
    assert env_int("LAB_TEST_NUMBER", 1, minimum=0) == 0


@pytest.mark.parametrize(("value", "expected"), [("true", True), (" False ", False)])
def test_a_flag_is_true_or_false(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: bool
) -> None:
    monkeypatch.setenv("LAB_TEST_FLAG", value)
    assert env_flag("LAB_TEST_FLAG", not expected) is expected


def test_a_bad_flag_or_choice_stops_the_app_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_TEST_FLAG", "yes")
    with pytest.raises(SystemExit, match="LAB_TEST_FLAG must be true or false, got 'yes'"):
        env_flag("LAB_TEST_FLAG", True)
    monkeypatch.setenv("LAB_TEST_CHOICE", "pooled")
    with pytest.raises(SystemExit, match="LAB_TEST_CHOICE must be one of a, b, got 'pooled'"):
        env_choice("LAB_TEST_CHOICE", "a", ("a", "b"))


def test_the_log_format_is_uvicorns() -> None:
    # The READMEs and the console read "LEVEL:     message".
    record = logging.LogRecord("chat_agent", logging.INFO, __file__, 1, "%s up", ("x",), None)
    assert logging.Formatter(LOG_FORMAT).format(record) == "INFO:     x up"
    assert app_logger("chat_agent").name == "chat_agent"
