"""Make the pinned Dapr runtime (daprd, placement, scheduler) available.

Found, in this order: the lab's cache outside the repo, where `dapr init --slim` installs
(~/.dapr/bin), PATH. Otherwise, where Go is installed, built from the Go module proxy into the
cache. Dapr's code and binaries never enter the repository.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from daprlab.paths import cache_dir
from daprlab.versions import pins

logger = logging.getLogger(__name__)

BINARIES = ("daprd", "placement", "scheduler")
DAPR_MODULE = "github.com/dapr/dapr"
# daprd panics at start without one of these tags; "stablecomponents" includes state.redis.
BUILD_TAGS = "stablecomponents"
VERSION_PROBE_TIMEOUT_SECONDS = 10
PROGRESS_EVERY_PACKAGES = 100


class RuntimeMissing(RuntimeError):
    """The pinned runtime is neither installed nor buildable here; the message says what to do."""


@dataclass(frozen=True)
class Runtime:
    version: str
    bin_dir: Path

    def path(self, name: str) -> str:
        return str(self.bin_dir / name)


def _go_env() -> dict[str, str]:
    # GOTOOLCHAIN=local: never download a toolchain; CGO off as in Dapr's own Makefile.
    return {**os.environ, "GOTOOLCHAIN": "local", "CGO_ENABLED": "0", "GOFLAGS": "-modcacherw"}


def cached_bin_dir(version: str) -> Path:
    return cache_dir() / f"dapr-{version}" / "bin"


def daprd_version(daprd: Path) -> str | None:
    """What `daprd --version` prints, or None when it cannot run."""
    try:
        out = subprocess.run(
            [str(daprd), "--version"],
            capture_output=True,
            text=True,
            timeout=VERSION_PROBE_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def _candidate_dirs() -> list[Path]:
    dirs = [cached_bin_dir(pins().dapr_runtime), Path.home() / ".dapr" / "bin"]
    for name in BINARIES:
        found = shutil.which(name)
        if found:
            dirs.append(Path(found).parent)
    return dirs


def find_runtime(version: str | None = None) -> Runtime | None:
    """A folder that holds all three binaries with daprd reporting the pinned version."""
    version = version or pins().dapr_runtime
    for folder in _candidate_dirs():
        if all((folder / name).is_file() for name in BINARIES):
            if daprd_version(folder / "daprd") == version:
                return Runtime(version, folder)
            logger.debug("ignoring %s: daprd is not version %s", folder, version)
    return None


def missing_message(version: str) -> str:
    return (
        f"Dapr runtime {version} (daprd, placement, scheduler) was not found in "
        f"{cached_bin_dir(version)}, ~/.dapr/bin or on PATH, and Go is not installed to build it.\n"
        f"Fix: install Go (1.22 or newer) and run `daprlab runtime`, or install the Dapr CLI and "
        f"run `dapr init --slim --runtime-version {version}`."
    )


def _module_dir(version: str) -> Path:
    with tempfile.TemporaryDirectory() as scratch:
        out = subprocess.run(
            ["go", "mod", "download", "-json", f"{DAPR_MODULE}@v{version}"],
            cwd=scratch,
            env=_go_env(),
            capture_output=True,
            text=True,
            check=False,
        )
    info = json.loads(out.stdout or "{}")
    if out.returncode != 0 or "Dir" not in info:
        raise RuntimeMissing(
            f"could not download {DAPR_MODULE}@v{version} from the Go module proxy: "
            f"{info.get('Error') or out.stderr.strip()}"
        )
    return Path(info["Dir"])


def dapr_module_dir(version: str | None = None) -> Path:
    """The pinned Dapr module in the Go module cache (downloaded if needed): charts, CRDs."""
    return _module_dir(version or pins().dapr_runtime)


def build_runtime(version: str, say: Callable[[str], None] = print) -> Runtime:
    """Build the three binaries from the Go module proxy into the lab's cache."""
    if not shutil.which("go"):
        raise RuntimeMissing(missing_message(version))
    started = time.monotonic()
    say(
        f"building Dapr {version} from the Go module proxy "
        "(first time only: about 5 minutes on 2 cores, more on a slow network)"
    )
    source = _module_dir(version)
    # The module's go.mod has replace directives, so `go install pkg@version` refuses it:
    # build inside a writable copy of the module instead.
    work = cache_dir() / "build" / f"dapr-{version}"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(source, work)
    for path in work.rglob("*"):
        path.chmod(path.stat().st_mode | 0o200)
    work.chmod(work.stat().st_mode | 0o200)
    staging = cached_bin_dir(version).with_name("bin.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    ldflags = (
        f"-s -w -X github.com/dapr/dapr/pkg/buildinfo.version={version} "
        f"-X github.com/dapr/kit/logger.DaprVersion={version}"
    )
    cmd = ["go", "build", "-v", "-trimpath", "-buildvcs=false", "-tags", BUILD_TAGS]
    cmd += ["-ldflags", ldflags, "-o", f"{staging}/"]
    cmd += [f"./cmd/{name}" for name in BINARIES]
    proc = subprocess.Popen(
        cmd, cwd=work, env=_go_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    compiled = 0
    tail: list[str] = []
    for line in proc.stdout:
        line = line.rstrip()
        if line.startswith("go: downloading"):
            say(line)
        else:
            compiled += 1
            tail = [*tail[-20:], line]
            if compiled % PROGRESS_EVERY_PACKAGES == 0:
                say(f"compiled {compiled} packages ({time.monotonic() - started:.0f}s)")
    if proc.wait() != 0:
        raise RuntimeMissing("building Dapr failed:\n" + "\n".join(tail))
    target = cached_bin_dir(version)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    shutil.rmtree(work, ignore_errors=True)
    say(f"built Dapr {version} into {target} in {time.monotonic() - started:.0f}s")
    return Runtime(version, target)


def ensure_runtime(build: bool = True, say: Callable[[str], None] = print) -> Runtime:
    """The pinned runtime, found or (if allowed) built; RuntimeMissing says what to install."""
    version = pins().dapr_runtime
    found = find_runtime(version)
    if found:
        return found
    if build and shutil.which("go"):
        return build_runtime(version, say)
    raise RuntimeMissing(missing_message(version))
