"""The resources daprd loads: the shared components/ folder, or a copy without resiliency."""

from __future__ import annotations

import shutil
from pathlib import Path

from daprlab.paths import COMPONENTS_DIR

RESILIENCY_FILE = "resiliency.yaml"
WITHOUT_RESILIENCY_DIR = "components-without-resiliency"


def resources_dir(state_dir: Path, resiliency: bool = True) -> Path:
    """components/ itself, or (resiliency off) a copy of it in `state_dir` without
    resiliency.yaml: daprd then applies no retry or timeout policy to the state store."""
    if resiliency:
        return COMPONENTS_DIR
    copy = state_dir / WITHOUT_RESILIENCY_DIR
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(COMPONENTS_DIR, copy, ignore=shutil.ignore_patterns(RESILIENCY_FILE))
    return copy
