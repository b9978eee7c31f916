"""Settings from the environment and the app's log format."""

from __future__ import annotations

import logging
import os

# "LEVEL:     message", like uvicorn's own lines: the READMEs and the console quote them.
LOG_FORMAT = "%(levelname)s:     %(message)s"


def env_int(name: str, default: int, minimum: int = 1) -> int:
    """A whole number from the environment; a bad value stops the app with a one-line reason."""
    raw = os.environ.get(name, str(default))
    if not raw.strip().isdecimal() or int(raw) < minimum:
        raise SystemExit(f"{name} must be a whole number of at least {minimum}, got {raw!r}")
    return int(raw)


def env_flag(name: str, default: bool) -> bool:
    """A "true"/"false" switch from the environment; anything else stops the app with the reason."""
    raw = os.environ.get(name, str(default)).strip().lower()
    if raw not in ("true", "false"):
        raise SystemExit(f"{name} must be true or false, got {raw!r}")
    return raw == "true"


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    """One of `choices` from the environment; anything else stops the app with the reason."""
    raw = os.environ.get(name, default).strip().lower()
    if raw not in choices:
        raise SystemExit(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def app_logger(name: str) -> logging.Logger:
    """The app's logger, its lines (and the plumbing's) at LOG_LEVEL (INFO by default) in
    uvicorn's shape."""
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO").upper(), format=LOG_FORMAT)
    return logging.getLogger(name)
