"""The local runner (`daprlab up`): it serves a step, and one dead process stops them all."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from daprlab import cli, netcheck
from daprlab.netcheck import LOOPBACK
from daprlab.paths import REPO_ROOT
from daprlab.runtime import Runtime
from daprlab.stack.command_lines import APP_ID
from daprlab.stack.ports import ControlPorts, InstancePorts
from daprlab.stack.process import ManagedProcess, StackError, process_gone
from daprlab.stack.stack import Stack, StackConfig
from daprlab.wait import holds_for, wait_for
from tests.support.up_process import BANNER_END, SHUTDOWN_SECONDS, STARTUP_SECONDS, Runner, run_up

pytestmark = pytest.mark.e2e
PROCESS_NAMES = ["redis", "placement", "scheduler", "daprd", "app"]
SCREEN_LINES_TO_READY = 25
# daprd checks the app's health every few seconds.
IDLE_SECONDS = 30
# Several of daprd's health-check intervals: long enough for a line to appear if one would.
IDLE_QUIET_SECONDS = 12


def assert_all_gone(stack: Stack) -> None:
    """Every process the stack started has exited (stop() waits for each of them)."""
    assert stack.started
    alive = [(name, pid) for name, pid in stack.started if not process_gone(pid)]
    assert alive == []


@pytest.fixture
def runner(tmp_path: Path, dapr_runtime: Runtime) -> Iterator[Runner]:
    with run_up(tmp_path) as running:
        yield running


def test_runner_serves_the_step_and_stops_on_ctrl_c(runner: Runner, dapr_runtime: Runtime) -> None:
    # Its first lines say which Dapr runs, from where, and why that one (DAPR_LAB_RUNTIME).
    banner = runner.find(r"starting 01_actor_timers with Dapr (\S+) from (\S+) \((.+)\)$")
    assert banner, "\n".join(runner.lines)
    assert (banner.group(1), banner.group(2)) == (dapr_runtime.version, str(dapr_runtime.bin_dir))
    docs = runner.find(r"API docs\s+(http://\S+)/docs")
    assert docs
    base = docs.group(1)
    assert httpx.get(f"{base}/docs").status_code == 200
    sidecar = runner.find(r"sidecar\s+(http://\S+/v1.0/metadata)")
    assert sidecar and httpx.get(sidecar.group(1)).status_code == 200
    try_it = runner.find(r"try it\s+(\S+), section \"Try it\"")
    assert try_it and Path(try_it.group(1)).read_text().count("## Try it") == 1
    reply = httpx.post(f"{base}/chat/runner", json={"content": "hi"}, timeout=30)
    assert reply.json()["reply"]["content"] == "You said: hi"
    children = runner.children()
    assert set(children) == set(PROCESS_NAMES)
    # The lab console, on loopback, sees every process up and the actor the message activated.
    console = runner.find(r"console\s+(http://127\.0\.0\.1:\d+/)$")
    assert console, "\n".join(runner.lines)
    assert "Lab console" in httpx.get(console.group(1)).text
    seen = wait_for(
        lambda: (s := httpx.get(f"{console.group(1)}api/snapshot").json())["actors"] and s,
        STARTUP_SECONDS,
        "the console to see the actor",
    )
    assert seen["processes"] == dict.fromkeys(PROCESS_NAMES, True)
    assert [(a["type"], a["id"], a["active"]) for a in seen["actors"]] == [
        ("ChatAgent", "runner", True)
    ]

    runner.proc.send_signal(signal.SIGINT)
    assert runner.proc.wait(timeout=SHUTDOWN_SECONDS) == 130
    assert netcheck.http_status(console.group(1)) is None, "the console outlived the runner"
    for pid in children.values():
        wait_for(
            lambda pid=pid: process_gone(pid),
            SHUTDOWN_SECONDS,
            f"pid {pid} to exit",
        )


def log_folder(runner: Runner) -> Path:
    """The folder the ready banner names for the full logs."""
    named = runner.find(r"daprlab\s*\|\s+logs\s+(\S+)/ ")
    assert named, "the ready banner names no log folder"
    return Path(named.group(1))


def screen_lines(runner: Runner, process: str) -> list[str]:
    return [line for line in list(runner.lines) if re.match(rf"{process}\s*\| ", line)]


def test_default_view_is_short_quiet_and_names_the_full_logs(runner: Runner) -> None:
    banner_end = next(i for i, line in enumerate(runner.lines) if re.search(BANNER_END, line))
    on_screen = banner_end + 1
    assert on_screen <= SCREEN_LINES_TO_READY, "\n".join(runner.lines)
    print(f"lines on screen to the end of the ready banner: {on_screen}")
    # One line per process once it serves.
    ready = [re.search(r"daprlab\s*\| (\S+) ready \(pid", line) for line in runner.lines]
    assert sorted(m.group(1) for m in ready if m) == sorted(PROCESS_NAMES)

    logs = log_folder(runner)
    assert sorted(path.stem for path in logs.glob("*.log")) == sorted(PROCESS_NAMES)
    daprd_log = (logs / "daprd.log").read_text().splitlines()
    info = [line for line in daprd_log if "level=info" in line]
    assert len(info) > len(screen_lines(runner, "daprd")), "the file holds what the screen hides"
    assert [line for line in screen_lines(runner, "daprd") if "level=info" in line] == [
        f"daprd     | {line}" for line in info if "Actor runtime started" in line
    ]
    assert any(
        '"level":"info"' in line for line in (logs / "scheduler.log").read_text().splitlines()
    )
    assert not screen_lines(runner, "scheduler"), "the scheduler's start warnings are expected ones"

    # Idle: the screen stays as it was at the banner; daprd's health checks of the app leave
    # no line anywhere (the access log is off unless LOG_LEVEL=DEBUG).
    holds_for(
        lambda: runner.lines[on_screen:] == [], IDLE_QUIET_SECONDS, "the screen stays as it was"
    )
    assert "/healthz" not in (logs / "app.log").read_text()


def test_verbose_shows_every_line(tmp_path: Path, dapr_runtime: Runtime) -> None:
    # LOG_LEVEL=DEBUG turns the access log on: daprd's health checks of the app show too.
    with run_up(tmp_path, "--verbose", env={"LOG_LEVEL": "DEBUG"}) as runner:
        daprd = screen_lines(runner, "daprd")
        assert len([line for line in daprd if "level=info" in line]) > 5
        assert any('"level":"info"' in line for line in screen_lines(runner, "scheduler"))
        assert any("mTLS is disabled" in line for line in screen_lines(runner, "placement"))
        wait_for(
            lambda: runner.find(r'app\s*\| .*"GET /healthz HTTP/1.1"'),
            IDLE_SECONDS,
            "a health-check access line",
        )
        # The same lines go to the files as to the screen.
        file_lines = (log_folder(runner) / "daprd.log").read_text().splitlines()
        assert daprd == [f"daprd     | {line}" for line in file_lines][: len(daprd)]


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_stop_it_like_ctrl_c(
    runner: Runner, stop_signal: signal.Signals
) -> None:
    children = runner.children()
    assert set(children) == set(PROCESS_NAMES)

    runner.proc.send_signal(stop_signal)
    assert runner.proc.wait(timeout=SHUTDOWN_SECONDS) == 130
    wait_for(
        lambda: runner.find(r"daprlab\s*\| stopped"), SHUTDOWN_SECONDS, "the runner's last line"
    )
    assert runner.find(rf"daprlab\s*\| {stop_signal.name}: stopping")
    assert not runner.find("Traceback")
    for pid in children.values():
        wait_for(
            lambda pid=pid: process_gone(pid),
            SHUTDOWN_SECONDS,
            f"pid {pid} to exit",
        )


@pytest.mark.parametrize("victim", PROCESS_NAMES)
def test_killing_one_process_stops_the_rest_and_names_it(runner: Runner, victim: str) -> None:
    children = runner.children()
    os.kill(children[victim], signal.SIGKILL)

    assert runner.proc.wait(timeout=SHUTDOWN_SECONDS) == 1
    wait_for(
        lambda: runner.find(r"daprlab\s*\| stopped"), SHUTDOWN_SECONDS, "the runner's last line"
    )
    assert runner.find(rf"daprlab\s*\| {victim} killed by signal SIGKILL; stopping the rest")
    # Its last lines are on screen, whatever the quiet view hid before.
    said = next(i for i, line in enumerate(runner.lines) if "stopping the rest" in line)
    last = (log_folder(runner) / f"{victim}.log").read_text().splitlines()[-1]
    assert f"{victim:<10}| {last}" in runner.lines[said:]
    for pid in children.values():
        wait_for(
            lambda pid=pid: process_gone(pid),
            SHUTDOWN_SECONDS,
            f"pid {pid} to exit",
        )


def test_port_in_use_is_named_with_the_fix(tmp_path: Path, dapr_runtime: Runtime) -> None:
    with socket.socket() as squatter:
        squatter.bind((LOOPBACK, 0))
        squatter.listen()
        ports = ControlPorts.free()
        ports.placement = squatter.getsockname()[1]
        stack = Stack(
            StackConfig("01_actor_timers", tmp_path, control_ports=ports), dapr_runtime, print
        )
        with pytest.raises(
            StackError,
            match=rf"port {ports.placement} \(placement gRPC\) is already in use.*ss -ltnp",
        ):
            stack.start()
    assert [name for name, _ in stack.started] == ["redis"]
    assert_all_gone(stack)


def test_missing_redis_server_says_how_to_install_it(
    tmp_path: Path, dapr_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    stack = Stack(StackConfig("01_actor_timers", tmp_path), dapr_runtime, print)
    with pytest.raises(
        StackError,
        match=r"redis-server is not installed: install it .*apt-get install redis-server",
    ):
        stack.start()


def test_missing_binary_is_named(tmp_path: Path, dapr_runtime: Runtime) -> None:
    broken = Runtime(dapr_runtime.version, tmp_path / "nowhere")
    stack = Stack(StackConfig("01_actor_timers", tmp_path), broken, print)
    with pytest.raises(StackError) as err:
        stack.start()
    assert str(err.value) == (
        f"placement: cannot start {tmp_path}/nowhere/placement: No such file or directory; "
        "run `uv run daprlab runtime` to find or build the Dapr binaries"
    )
    assert [name for name, _ in stack.started] == ["redis"]
    assert_all_gone(stack)


def test_unknown_step_lists_the_valid_ones() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "daprlab", "up", "01_timers"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    assert out.returncode == 2
    assert "unknown step '01_timers'; valid steps: 01_actor_timers" in out.stdout


def test_instance_ports_are_distinct() -> None:
    ports = [*vars(ControlPorts.free()).values(), *vars(InstancePorts.free()).values()]
    assert len(set(ports)) == len(ports)


# ---- `daprlab up STEP` without --free-ports: fixed ports, and a Redis already listening --------


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[int]:
    """A redis-server the stack did not start, on a free port; yields the port."""
    port = netcheck.free_port()
    server = ManagedProcess(
        "own-redis",
        ["redis-server", "--bind", LOOPBACK, "--port", str(port), "--dir", str(tmp_path)],
        lambda _name, _line: None,
    )
    server.start()
    try:
        wait_for(lambda: netcheck.redis_ping(port), STARTUP_SECONDS, f"own Redis on {port}")
        yield port
    finally:
        server.stop()


def test_reused_redis_is_used_and_left_running(
    tmp_path: Path, dapr_runtime: Runtime, own_redis: int
) -> None:
    lines: list[str] = []
    ports = ControlPorts.free()
    ports.redis = own_redis
    config = StackConfig("01_actor_timers", tmp_path, control_ports=ports, reuse_redis=True)
    stack = Stack(config, dapr_runtime, lambda name, line: lines.append(f"{name}| {line}"))
    try:
        stack.start()
        reply = httpx.post(f"{stack.app_url}/chat/reused", json={"content": "hi"}, timeout=30)
        assert reply.status_code == 200, reply.text
    finally:
        stack.stop()

    assert (
        f"daprlab| redis ready: using the Redis already listening on {LOOPBACK}:{own_redis}; "
        "what survives a crash is up to its own persistence setting"
    ) in lines
    assert "redis" not in [name for name, _ in stack.started]
    assert "redis" not in stack.control
    assert_all_gone(stack)
    # The conversation is in the Redis that was already there, which the stack left running.
    assert netcheck.redis_ping(own_redis)
    stored = subprocess.run(
        ["redis-cli", "-p", str(own_redis), "EXISTS", f"{APP_ID}||ChatAgent||reused||history"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert stored.stdout.strip() == "1"


def test_something_else_on_the_redis_port_is_one_line(
    tmp_path: Path, dapr_runtime: Runtime
) -> None:
    with socket.socket() as squatter:
        squatter.bind((LOOPBACK, netcheck.free_port()))
        squatter.listen()
        ports = ControlPorts.free()
        ports.redis = squatter.getsockname()[1]
        config = StackConfig("01_actor_timers", tmp_path, control_ports=ports, reuse_redis=True)
        stack = Stack(config, dapr_runtime, print)
        with pytest.raises(StackError) as err:
            stack.start()
    assert str(err.value) == (
        f"port {ports.redis} (redis) is in use by something that is not a usable Redis: "
        f"stop it (`ss -ltnp 'sport = :{ports.redis}'`) or start Redis there"
    )
    assert stack.started == []


def test_up_without_free_ports_uses_the_readme_ports_and_reuses_redis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[StackConfig] = []

    class RecordingStack(Stack):
        def start(self) -> None:
            seen.append(self.config)
            raise StackError("recorded")

    monkeypatch.setattr(cli, "Stack", RecordingStack)
    monkeypatch.setattr(cli, "ensure_runtime", lambda **_: Runtime("0", tmp_path))

    assert cli.main(["up", "01_actor_timers", "--state-dir", str(tmp_path)]) == 1
    [config] = seen
    assert config.reuse_redis is True
    assert config.control_ports == ControlPorts.fixed()
    assert config.control_ports.redis == 6379
    assert [(p.app, p.dapr_http) for p in config.instance_ports] == [(8000, 3500)]


@pytest.mark.parametrize("flags", [[], ["--no-console"]])
def test_up_feeds_the_console_unless_told_not_to(
    flags: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sinks: list[object] = []

    class RecordingStack(Stack):
        def start(self) -> None:
            sinks.append(self.sink)
            raise StackError("recorded")

    def terminal(process: str, line: str) -> None:
        pass

    monkeypatch.setattr(cli, "Stack", RecordingStack)
    monkeypatch.setattr(cli, "ensure_runtime", lambda **_: Runtime("0", tmp_path))
    monkeypatch.setattr(cli, "screen", lambda verbose: terminal)

    assert cli.main(["up", "01_actor_timers", "--state-dir", str(tmp_path), *flags]) == 1
    [sink] = sinks
    # Without the console, the lines go to the terminal's view only; with it, to both.
    assert (sink is terminal) == bool(flags)
