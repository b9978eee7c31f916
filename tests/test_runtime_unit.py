"""Runtime provisioning: where the binaries are looked for, what is said, and the build's guards.

Every test runs with HOME, PATH and DAPR_LAB_CACHE pointed at empty temporary folders, so the
real cache, ~/.dapr and Go of this machine play no part. Fake daprd/placement/scheduler are shell
scripts; a fake `go` (a Python script) stands in for the module download and the build.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from daprlab import cli, runtime
from daprlab.paths import REPO_ROOT
from daprlab.runtime import (
    BINARIES,
    GO_MINIMUM,
    RuntimeMissing,
    ensure_runtime,
    find_runtime,
    go_at_least,
    go_mod_minimum,
    parse_go_version,
)
from daprlab.stack import process_gone
from daprlab.versions import pins
from daprlab.wait import wait_for

VERSION = pins().dapr_runtime
EXIT_TIMEOUT_SECONDS = 10

FAKE_GO = """\
#!{python}
# A stand-in for `go`: `env GOVERSION`, `mod download -json MODULE@vX`, `build ... -o DIR/`.
import json, os, pathlib, subprocess, sys, time

root = pathlib.Path({root!r})
args = sys.argv[1:]
if args[:2] == ["env", "GOVERSION"]:
    print((root / "goversion").read_text().strip())
elif args[:2] == ["mod", "download"]:
    print(json.dumps({{"Path": "github.com/dapr/dapr", "Dir": str(root / "module")}}))
elif args[:1] == ["build"]:
    (root / "build.pid").write_text(str(os.getpid()))
    print("go: downloading github.com/example/dep v1.0.0", flush=True)
    if (root / "hang").exists():
        # A compiler child in the same process group, as `go build` has.
        child = subprocess.Popen(["/bin/sleep", "600"])
        (root / "compiler.pid").write_text(str(child.pid))
        time.sleep(600)
    out = pathlib.Path(args[args.index("-o") + 1])
    for name in ("daprd", "placement", "scheduler"):
        print(f"github.com/dapr/dapr/cmd/{{name}}")
        script = out / name
        script.write_text("#!/bin/sh\\necho {version}\\n")
        script.chmod(0o755)
else:
    sys.exit(f"fake go: unexpected arguments {{args}}")
"""


@dataclass
class FakeHost:
    """A machine with nothing installed: HOME, PATH and the lab cache are empty folders."""

    tmp: Path
    home: Path
    cache: Path
    path_dir: Path

    @property
    def lab_cache_bin(self) -> Path:
        return self.cache / f"dapr-{VERSION}" / "bin"

    @property
    def dapr_init_bin(self) -> Path:
        return self.home / ".dapr" / "bin"

    def install(self, folder: Path, version: str = VERSION) -> Path:
        """Fake daprd (printing `version`), placement and scheduler in `folder`."""
        folder.mkdir(parents=True, exist_ok=True)
        for name in BINARIES:
            script = folder / name
            body = f"echo {version}\n" if name == "daprd" else "exit 0\n"
            script.write_text(f"#!/bin/sh\n{body}")
            script.chmod(0o755)
        return folder

    def install_go(self, go_version: str, module_go_line: str = GO_MINIMUM) -> Path:
        """A fake `go` on PATH, and the module it "downloads" with that go.mod line."""
        root = self.tmp / "fakego"
        module = root / "module"
        for name in BINARIES:
            (module / "cmd" / name).mkdir(parents=True, exist_ok=True)
        (module / "go.mod").write_text(
            f"module github.com/dapr/dapr\n\ngo {module_go_line}\n\nrequire example.com/x v1.0.0\n"
        )
        (root / "goversion").write_text(go_version)
        go = self.path_dir / "go"
        go.write_text(FAKE_GO.format(python=sys.executable, root=str(root), version=VERSION))
        go.chmod(0o755)
        return root


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHost]:
    fake = FakeHost(tmp_path, tmp_path / "home", tmp_path / "cache", tmp_path / "path")
    for folder in (fake.home, fake.cache, fake.path_dir):
        folder.mkdir()
    monkeypatch.setenv("HOME", str(fake.home))
    monkeypatch.setenv("DAPR_LAB_CACHE", str(fake.cache))
    monkeypatch.setenv("PATH", str(fake.path_dir))
    yield fake


def said() -> tuple[list[str], Callable[[str], None]]:
    lines: list[str] = []
    return lines, lines.append


# ---- where the runtime is looked for ---------------------------------------------------------


def test_search_order_is_lab_cache_then_dapr_init_then_path(host: FakeHost) -> None:
    cache = host.install(host.lab_cache_bin)
    dapr_init = host.install(host.dapr_init_bin)
    host.install(host.path_dir)

    assert find_runtime() == runtime.Runtime(VERSION, cache)
    for name in BINARIES:
        (cache / name).unlink()
    assert find_runtime() == runtime.Runtime(VERSION, dapr_init)
    for name in BINARIES:
        (dapr_init / name).unlink()
    assert find_runtime() == runtime.Runtime(VERSION, host.path_dir)


def test_a_daprd_of_another_version_is_skipped(host: FakeHost) -> None:
    host.install(host.lab_cache_bin, version="1.13.0")
    dapr_init = host.install(host.dapr_init_bin)

    assert find_runtime() == runtime.Runtime(VERSION, dapr_init)


def test_an_incomplete_folder_is_skipped(host: FakeHost) -> None:
    host.install(host.lab_cache_bin)
    (host.lab_cache_bin / "scheduler").unlink()
    host.install(host.path_dir)

    assert find_runtime() == runtime.Runtime(VERSION, host.path_dir)


def test_nothing_found_and_no_go_says_what_to_install(host: FakeHost) -> None:
    host.install(host.dapr_init_bin, version="1.13.0")

    with pytest.raises(RuntimeMissing) as err:
        ensure_runtime(say=print)
    assert str(err.value) == (
        f"Dapr runtime {VERSION} (daprd, placement, scheduler) was not found in "
        f"{host.lab_cache_bin}, ~/.dapr/bin or on PATH, and Go is not installed to build it.\n"
        f"Fix: install Go {GO_MINIMUM} or newer and run `uv run daprlab runtime`, or install the "
        f"Dapr CLI and run `dapr init --slim --runtime-version {VERSION}`."
    )


def test_without_building_the_fix_is_the_runtime_command(host: FakeHost) -> None:
    host.install_go("go1.22.6")  # present, but build=False must not use it

    with pytest.raises(RuntimeMissing) as err:
        ensure_runtime(build=False, say=print)
    assert str(err.value) == (
        f"Dapr runtime {VERSION} (daprd, placement, scheduler) was not found in "
        f"{host.lab_cache_bin}, ~/.dapr/bin or on PATH.\n"
        "Fix: run `uv run daprlab runtime` (it finds or builds the runtime)."
    )
    assert not host.lab_cache_bin.exists()


def test_a_found_runtime_is_said_to_be_reused(host: FakeHost) -> None:
    dapr_init = host.install(host.dapr_init_bin)
    lines, say = said()

    assert ensure_runtime(say=say).bin_dir == dapr_init
    assert lines == [f"reusing Dapr {VERSION} in {dapr_init}"]


def test_cli_runtime_says_reusing(host: FakeHost, capsys: pytest.CaptureFixture[str]) -> None:
    cache = host.install(host.lab_cache_bin)

    assert cli.main(["runtime"]) == 0
    assert f"reusing Dapr {VERSION} in {cache}" in capsys.readouterr().out


def test_cli_runtime_missing_is_two_lines_and_exit_2(
    host: FakeHost, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["runtime"]) == 2
    out = capsys.readouterr().out
    assert out.startswith(f"daprlab   | error: Dapr runtime {VERSION} ")
    assert "Traceback" not in out
    assert out.count("\n") == 2


# ---- building ---------------------------------------------------------------------------------


def test_build_then_a_warm_run_reuses_the_cache(host: FakeHost) -> None:
    host.install_go("go1.22.6")
    lines, say = said()

    built = ensure_runtime(say=say)
    assert built.bin_dir == host.lab_cache_bin
    assert lines[-1].startswith(f"built Dapr {VERSION} into {host.lab_cache_bin} in ")
    assert "go: downloading github.com/example/dep v1.0.0" in lines
    assert sorted(p.name for p in host.lab_cache_bin.iterdir()) == sorted(BINARIES)

    lines.clear()
    assert ensure_runtime(say=say) == built
    assert lines == [f"reusing Dapr {VERSION} in {host.lab_cache_bin}"]


def test_a_go_older_than_the_module_needs_is_refused_before_building(host: FakeHost) -> None:
    root = host.install_go("go1.22.5", module_go_line="1.22.6")

    with pytest.raises(RuntimeMissing) as err:
        ensure_runtime(say=print)
    assert str(err.value) == (
        f"Dapr {VERSION} needs Go 1.22.6 or newer (its go.mod says `go 1.22.6`), "
        "but `go` here is go1.22.5.\n"
        "Fix: install Go >= 1.22.6, then run `uv run daprlab runtime`."
    )
    assert not (root / "build.pid").exists()


def test_the_go_minimum_in_messages_is_the_pinned_modules_go_line() -> None:
    if shutil.which("go") is None and not os.environ.get("CI"):
        pytest.skip("needs Go to fetch the pinned Dapr module's go.mod (CI always has it)")
    go_mod = runtime.dapr_module_dir() / "go.mod"  # from the Go module cache once fetched
    assert go_mod_minimum(go_mod.read_text()) == GO_MINIMUM


def test_an_interrupted_build_stops_go_build_and_its_children(host: FakeHost) -> None:
    root = host.install_go("go1.22.6")
    (root / "hang").touch()

    def interrupt_once_compiling(line: str) -> None:
        if line.startswith("go: downloading"):
            wait_for(lambda: (root / "compiler.pid").exists(), EXIT_TIMEOUT_SECONDS, "a compiler")
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ensure_runtime(say=interrupt_once_compiling)
    for name in ("build.pid", "compiler.pid"):
        pid = int((root / name).read_text())
        wait_for(lambda pid=pid: process_gone(pid), EXIT_TIMEOUT_SECONDS, f"{name} {pid} to exit")
    assert not host.lab_cache_bin.exists()


def test_cli_ctrl_c_during_the_build_is_one_line(
    host: FakeHost, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(**_kwargs: object) -> runtime.Runtime:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "ensure_runtime", interrupted)
    previous = signal.getsignal(signal.SIGTERM)

    assert cli.main(["runtime"]) == cli.EXIT_INTERRUPTED
    assert capsys.readouterr().out == "daprlab   | interrupted: stopped\n"
    assert signal.getsignal(signal.SIGTERM) == previous


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_during_the_build_is_one_line_and_stops_go(
    host: FakeHost, sig: signal.Signals
) -> None:
    root = host.install_go("go1.22.6")
    (root / "hang").touch()
    runner = subprocess.Popen(
        [sys.executable, "-m", "daprlab", "runtime"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(lambda: (root / "compiler.pid").exists(), EXIT_TIMEOUT_SECONDS, "the fake build")
        runner.send_signal(sig)
        out, _ = runner.communicate(timeout=EXIT_TIMEOUT_SECONDS)
    finally:
        runner.kill()
        runner.wait()
    assert runner.returncode == cli.EXIT_INTERRUPTED, out
    assert out.splitlines()[-1] == f"daprlab   | {sig.name}: stopped"
    assert "Traceback" not in out
    for name in ("build.pid", "compiler.pid"):
        pid = int((root / name).read_text())
        wait_for(lambda pid=pid: process_gone(pid), EXIT_TIMEOUT_SECONDS, f"{name} {pid} to exit")


def test_cli_state_dir_that_cannot_be_made_is_one_line_with_a_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_runtime(**_kwargs: object) -> runtime.Runtime:
        raise AssertionError("the state folder is checked before the runtime")

    monkeypatch.setattr(cli, "ensure_runtime", no_runtime)
    blocker = tmp_path / "file"
    blocker.write_text("")
    state = blocker / "state"  # a folder inside a file: mkdir fails

    code = cli.main(["up", "01_actor_timers", "--free-ports", "--state-dir", str(state)])
    out = capsys.readouterr().out
    assert code == 2
    assert out == (
        f"daprlab   | error: cannot use {state}: Not a directory; check the path and its "
        "permissions (for `up`, --state-dir chooses another folder)\n"
    )


# ---- the version comparison -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("installed", "required", "ok"),
    [
        ("go1.22.6", "1.22.6", True),
        ("go1.22.5", "1.22.6", False),
        ("go1.22.10", "1.22.6", True),
        ("go1.23.0", "1.22.6", True),
        ("go1.26.8", "1.22.6", True),
        ("go1.9", "1.22.6", False),
        ("go1.22", "1.22.6", False),
        ("go1.22rc1", "1.22.0", False),
        ("go1.22.0", "1.22rc1", True),
        ("devel go1.23-abc123 Tue Jan 1", "1.22.6", True),
        ("go2.0.0", "1.22.6", True),
    ],
)
def test_go_version_comparison(installed: str, required: str, ok: bool) -> None:
    assert go_at_least(installed, required) is ok


def test_unparseable_go_version_is_an_error() -> None:
    assert parse_go_version("go version unknown") is None
    with pytest.raises(ValueError, match="not a Go version"):
        go_at_least("unknown", "1.22.6")


def test_go_mod_line_is_read_not_the_toolchain_line() -> None:
    go_mod = textwrap.dedent(
        """\
        module github.com/dapr/dapr

        go 1.22.6

        toolchain go1.23.1

        require (
        \tgithub.com/x/y v1.0.0 // go 1.99
        )
        """
    )
    assert go_mod_minimum(go_mod) == "1.22.6"
    assert go_mod_minimum("module x\n") is None
