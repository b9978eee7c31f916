"""Make a Dapr runtime (daprd, placement, scheduler) available: the learner's, or the pin.

Which one (`daprlab up --runtime`, or DAPR_LAB_RUNTIME for every command and the tests):
- `auto` (the default): the release `dapr init --slim` installed in ~/.dapr/bin when it is one
  the lab runs on (daprlab.releases: 1.14 to 1.18), else the pin;
- `pinned`: the pinned release (CI tests this one alone);
- a folder: the daprd, placement and scheduler in it, of any supported release (a runtime built
  by hand, say).
The pin is found, in this order, in the lab's cache outside the repo, ~/.dapr/bin, PATH;
otherwise built from the Go module proxy into the cache, with the Go that daprlab.toolchain
chooses (the one on PATH, or the lab's own). Dapr's code and binaries never enter the repository.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from daprlab import releases
from daprlab.paths import cache_dir
from daprlab.toolchain import (
    FIX_COMMAND,
    GoToolchain,
    GoUnavailable,
    choose_go,
    go_at_least,
    go_mod_minimum,
)
from daprlab.versions import pins

logger = logging.getLogger(__name__)

BINARIES = ("daprd", "placement", "scheduler")
DAPR_MODULE = "github.com/dapr/dapr"
# daprd panics at start without one of these tags; "stablecomponents" includes state.redis.
BUILD_TAGS = "stablecomponents"
VERSION_PROBE_TIMEOUT_SECONDS = 10
PROGRESS_EVERY_PACKAGES = 100
BUILD_TAIL_LINES = 20
# Which runtime to use: "auto", "pinned" or a folder (see the module docstring).
RUNTIME_ENV = "DAPR_LAB_RUNTIME"
AUTO, PINNED = "auto", "pinned"


class RuntimeMissing(RuntimeError):
    """The pinned runtime is neither installed nor buildable here; the message says what to do."""


@dataclass(frozen=True)
class Runtime:
    version: str
    bin_dir: Path
    # Where it came from, for the banner: "the pin", "dapr init", "DAPR_LAB_RUNTIME", ...
    origin: str = field(default="the pin", compare=False)

    def path(self, name: str) -> str:
        return str(self.bin_dir / name)

    @property
    def release(self) -> releases.Release:
        """What this release does where releases differ (daprlab.releases)."""
        return releases.of(self.version)

    def banner(self) -> str:
        return f"Dapr {self.version} from {self.bin_dir} ({self.origin})"


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


def dapr_init_dir() -> Path:
    """Where `dapr init --slim` installs the runtime."""
    return Path.home() / ".dapr" / "bin"


def runtime_in(folder: Path, origin: str) -> Runtime:
    """The runtime in `folder`, of a supported release; RuntimeMissing says what is wrong."""
    missing = [name for name in BINARIES if not (folder / name).is_file()]
    if missing:
        raise RuntimeMissing(
            f"{folder} ({origin}) has no {', '.join(missing)}: a Dapr runtime folder holds "
            f"{', '.join(BINARIES)}"
        )
    version = daprd_version(folder / "daprd")
    if version is None or not releases.is_supported(version):
        raise RuntimeMissing(
            f"{folder / 'daprd'} ({origin}) reports version {version!r}; the lab runs on Dapr "
            f"{releases.supported_range()}.\nFix: pick another folder, or `--runtime pinned`."
        )
    return Runtime(version.removeprefix("v"), folder, origin)


def find_runtime(version: str | None = None) -> Runtime | None:
    """A folder that holds all three binaries with daprd reporting the pinned version."""
    version = version or pins().dapr_runtime
    for folder in _candidate_dirs():
        if all((folder / name).is_file() for name in BINARIES):
            if daprd_version(folder / "daprd") == version:
                return Runtime(version, folder)
            logger.debug("ignoring %s: daprd is not version %s", folder, version)
    return None


def _not_found(version: str) -> str:
    return (
        f"Dapr runtime {version} (daprd, placement, scheduler) was not found in "
        f"{cached_bin_dir(version)}, ~/.dapr/bin or on PATH"
    )


def not_built_message(version: str) -> str:
    """Nothing found and building not allowed here (the test harness): the command that fixes it."""
    return f"{_not_found(version)}.\nFix: run `{FIX_COMMAND}` (it finds or builds the runtime)."


def check_go(module_dir: Path, version: str, go: GoToolchain) -> None:
    """Fail before a long build when the installed Go is older than the module's `go` line.

    The build runs with GOTOOLCHAIN=local (it never downloads a toolchain), so Go itself would
    refuse, later and less clearly.
    """
    required = go_mod_minimum((module_dir / "go.mod").read_text())
    if required is None:
        return
    if not go_at_least(go.version, required):
        raise RuntimeMissing(
            f"Dapr {version} needs Go {required} or newer (its go.mod says `go {required}`), "
            f"but {go.go} is {go.version}.\n"
            f"Fix: install Go >= {required}, then run `{FIX_COMMAND}`."
        )


def _module_dir(version: str, go: GoToolchain) -> Path:
    with tempfile.TemporaryDirectory() as scratch:
        out = subprocess.run(
            [str(go.go), "mod", "download", "-json", f"{DAPR_MODULE}@v{version}"],
            cwd=scratch,
            env=go.env(),
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


def choose_toolchain(lab_go: bool = False, say: Callable[[str], None] = print) -> GoToolchain:
    """daprlab.toolchain.choose_go, its GoUnavailable raised as RuntimeMissing."""
    try:
        return choose_go(lab_go=lab_go, say=say)
    except GoUnavailable as err:
        raise RuntimeMissing(str(err)) from None


def dapr_module_dir(version: str | None = None) -> Path:
    """The pinned Dapr module in the Go module cache (downloaded if needed): charts, CRDs."""
    return _module_dir(version or pins().dapr_runtime, choose_toolchain(say=logger.info))


def build_runtime(version: str, go: GoToolchain, say: Callable[[str], None] = print) -> Runtime:
    """Build the three binaries from the Go module proxy into the lab's cache, with `go`."""
    started = time.monotonic()
    say(
        f"building Dapr {version} from the Go module proxy "
        "(first time only: about 5 minutes on 2 cores, more on a slow network)"
    )
    source = _module_dir(version, go)
    check_go(source, version, go)
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
    cmd = [str(go.go), "build", "-v", "-trimpath", "-buildvcs=false", "-tags", BUILD_TAGS]
    cmd += ["-ldflags", ldflags, "-o", f"{staging}/"]
    cmd += [f"./cmd/{name}" for name in BINARIES]
    # Its own process group, so that one signal stops `go build` and the compilers it runs.
    proc = subprocess.Popen(
        cmd,
        cwd=work,
        env=go.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        tail = _follow_build(proc, started, say)
    finally:
        # Ctrl-C, SIGTERM or an error in between: never leave a build running behind us.
        if proc.poll() is None:
            logger.info("stopping go build (pid %s)", proc.pid)
            _kill_group(proc.pid)
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    if proc.returncode != 0:
        raise RuntimeMissing("building Dapr failed:\n" + "\n".join(tail))
    target = cached_bin_dir(version)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    shutil.rmtree(work, ignore_errors=True)
    say(f"built Dapr {version} into {target} in {time.monotonic() - started:.0f}s")
    return Runtime(version, target)


def _follow_build(
    proc: subprocess.Popen[str], started: float, say: Callable[[str], None]
) -> list[str]:
    """Report downloads and progress while `go build` runs; return its last lines."""
    assert proc.stdout is not None
    compiled = 0
    tail: list[str] = []
    for raw in proc.stdout:
        line = raw.rstrip()
        if line.startswith("go: downloading"):
            say(line)
        else:
            compiled += 1
            tail = [*tail[-BUILD_TAIL_LINES:], line]
            if compiled % PROGRESS_EVERY_PACKAGES == 0:
                say(f"compiled {compiled} packages ({time.monotonic() - started:.0f}s)")
    proc.wait()
    return tail


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def ensure_runtime(
    build: bool = True, say: Callable[[str], None] = print, lab_go: bool = False
) -> Runtime:
    """The pinned runtime, found (and said to be reused) or, if allowed, built.

    The build uses the `go` on PATH when it is new enough, else the lab's own Go (installed into
    its cache on first need; `lab_go` asks for it regardless). RuntimeMissing says what to
    install or choose (build=True) or which command to run (build=False).
    """
    version = pins().dapr_runtime
    found = find_runtime(version)
    if found:
        say(f"reusing Dapr {version} in {found.bin_dir}")
        return found
    if not build:
        raise RuntimeMissing(not_built_message(version))
    return build_runtime(version, choose_toolchain(lab_go, say), say)


def runtime_choice(flag: str | None = None) -> str:
    """The --runtime flag, else DAPR_LAB_RUNTIME, else "auto"."""
    return (flag or os.environ.get(RUNTIME_ENV) or AUTO).strip()


def choose_runtime(
    choice: str | None = None,
    build: bool = True,
    say: Callable[[str], None] = print,
    lab_go: bool = False,
) -> Runtime:
    """The runtime `choice` (see runtime_choice and the module docstring) names.

    `auto` takes a supported release from ~/.dapr/bin, else the pin (found or, when `build`,
    built). A folder must hold a supported runtime: RuntimeMissing says what it holds.
    """
    choice = runtime_choice(choice)
    if choice == PINNED:
        return ensure_runtime(build=build, say=say, lab_go=lab_go)
    if choice == AUTO:
        try:
            found = runtime_in(dapr_init_dir(), "installed by `dapr init`, found by --runtime auto")
        except RuntimeMissing as err:
            logger.debug("auto: not using ~/.dapr/bin: %s", err)
        else:
            if found.version != pins().dapr_runtime:
                return found
        pinned = ensure_runtime(build=build, say=say, lab_go=lab_go)
        return Runtime(pinned.version, pinned.bin_dir, "the pin, chosen by --runtime auto")
    folder = Path(choice).expanduser()
    if not folder.is_dir():
        raise RuntimeMissing(
            f"--runtime / {RUNTIME_ENV} is {choice!r}: not `{AUTO}`, `{PINNED}` or a folder.\n"
            f"Fix: name a folder holding {', '.join(BINARIES)}, or use `{AUTO}` or `{PINNED}`."
        )
    return runtime_in(folder.resolve(), f"the folder named by --runtime or {RUNTIME_ENV}")
