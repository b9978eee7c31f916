"""Where things are: the repository, its step folders, and the lab's cache outside the repo."""

from __future__ import annotations

import os
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
COMPONENTS_DIR = REPO_ROOT / "components"
PYPROJECT = REPO_ROOT / "pyproject.toml"
# Local runs keep Redis and scheduler data here (ignored by git).
LOCAL_STATE_DIR = REPO_ROOT / ".lab"
# Overrides LOCAL_STATE_DIR for every subcommand (up, fault, where).
STATE_DIR_ENV = "DAPRLAB_STATE_DIR"
STEP_PATTERN = re.compile(r"^\d\d_[a-z_]+$")
CACHE_ENV = "DAPR_LAB_CACHE"


def cache_dir() -> Path:
    """The lab's cache outside the repo, e.g. ~/.cache/dapr-lab (override with DAPR_LAB_CACHE)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dapr-lab"


def default_state_dir() -> Path:
    """.lab/ in the repo, or DAPRLAB_STATE_DIR: the directory every subcommand looks in."""
    return Path(os.environ.get(STATE_DIR_ENV) or LOCAL_STATE_DIR)


def steps() -> list[str]:
    """Names of the step folders, in order (the folders are the source of truth)."""
    return sorted(
        p.name
        for p in REPO_ROOT.iterdir()
        if STEP_PATTERN.match(p.name) and (p / "main.py").is_file()
    )


def step_dir(name: str) -> Path:
    """The folder of one step; raises ValueError naming the valid steps."""
    valid = steps()
    if name not in valid:
        raise ValueError(f"unknown step {name!r}; valid steps: {', '.join(valid)}")
    return REPO_ROOT / name
