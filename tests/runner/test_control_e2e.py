"""Runner controls and a runner that never leaves a mess, against the real `daprlab up`.

One runner (two replicas) serves the module: the controls' bad input, `where` against the apps'
own activation lines, and last, SIGKILL of the runner after control commands paused, killed and
restarted processes. A second pair of runners shows the leftovers of a runner killed without
the parent-death signal being recognised and stopped.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from daprlab.paths import REPO_ROOT
from daprlab.runner import control_channel
from daprlab.runner.run_record import RECORD_FILE, read_record
from daprlab.runtime import Runtime
from daprlab.stack import parent_death
from daprlab.stack import stack as lab_stack
from daprlab.stack.process import StackError, process_gone
from daprlab.stack.stack import LOG_DIR_NAME, Stack, StackConfig
from daprlab.wait import wait_for
from tests.support.up_process import Runner, run_up

pytestmark = pytest.mark.e2e
SLACK_SECONDS = 30
ACTORS = [f"where-{i}" for i in range(20)]
# How long the leftover scheduler keeps a new one from becoming ready, at most, in the test.
SHORT_STARTUP_SECONDS = 8


def daprlab(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daprlab", *args, "--state-dir", str(state_dir)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=control_channel.ANSWER_TIMEOUT_SECONDS,
    )


def every_pid(runner: Runner, state_dir: Path) -> set[int]:
    """Every process the runner started: its ready lines, and its record of live ones."""
    pids = set(runner.pids())
    record = read_record(state_dir)
    return pids | {p.pid for p in record.processes} if record else pids


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("control")


@pytest.fixture(scope="module")
def runner(state_dir: Path, dapr_runtime: Runtime) -> Iterator[Runner]:
    with run_up(state_dir, "--replicas", "2") as running:
        yield running


def test_a_second_runner_on_the_same_state_dir_is_refused(runner: Runner, state_dir: Path) -> None:
    second = daprlab(state_dir, "up", "01_actor_timers", "--free-ports")
    assert second.returncode == 1
    pid = runner.proc.pid
    assert (
        f"another `daprlab up` (pid {pid}) is running on {state_dir}: stop it (`kill {pid}`) "
        "or give this one another --state-dir"
    ) in second.stdout
    assert "started" not in second.stdout and " ready (pid" not in second.stdout
    assert runner.proc.poll() is None


def test_an_unknown_name_lists_the_valid_ones(runner: Runner, state_dir: Path) -> None:
    done = daprlab(state_dir, "fault", "stop", "daprd-9")
    assert done.returncode == 1
    assert done.stdout == (
        "error: no process named 'daprd-9'; valid names: redis, placement, scheduler, daprd, "
        "app, daprd-2, app-2, replica-1, replica-2\n"
    )


def test_the_runner_itself_refuses_a_pause_over_120_seconds(
    runner: Runner, state_dir: Path
) -> None:
    # The command line refuses it before asking (tests/runner/test_control_unit.py); so does the
    # runner.
    ok, message = control_channel.ask(
        state_dir, "fault", {"action": "pause", "name": "redis", "seconds": 121}
    )
    assert not ok
    assert message.startswith("pause takes a number of seconds from 0 to 120, got 121")


def test_a_wrong_token_is_refused(runner: Runner, state_dir: Path) -> None:
    record_path = state_dir / RECORD_FILE
    record = json.loads(record_path.read_text())
    assert oct(record_path.stat().st_mode & 0o777) == "0o600"
    forged = {**record, "token": "0" * 32}
    forged_dir = state_dir / "forged"
    forged_dir.mkdir()
    (forged_dir / RECORD_FILE).write_text(json.dumps(forged))
    ok, message = control_channel.ask(forged_dir, "fault", {"action": "stop", "name": "redis"})
    assert (ok, message) == (False, "wrong token: read it from this run's runner.json")
    assert runner.proc.poll() is None


def test_where_names_the_replica_whose_app_activated_the_actor(
    runner: Runner, state_dir: Path
) -> None:
    app = re.search(r"replica-1 API docs\s+(http://\S+)/docs", "\n".join(runner.lines))
    assert app
    for actor in ACTORS:
        reply = httpx.post(f"{app.group(1)}/chat/{actor}", json={"content": "hi"}, timeout=30)
        assert reply.json()["reply"]["content"] == "You said: hi"
    done = daprlab(state_dir, "where", "--hosted-by", "replica-2", *ACTORS)
    assert done.returncode == 0, done.stdout
    on_second = set(done.stdout.split())
    app_2_log = (state_dir / LOG_DIR_NAME / "app-2.log").read_text()
    activated = set(re.findall(r"ChatAgent (where-\d+) activated", app_2_log))
    assert on_second == activated
    assert 0 < len(on_second) < len(ACTORS)


def test_nothing_a_control_command_started_outlives_a_sigkilled_runner(
    runner: Runner, state_dir: Path
) -> None:
    """Last in the module: it kills the module's runner."""
    for args in (
        ("fault", "kill", "app-2"),
        ("fault", "start", "app-2"),
        ("fault", "kill", "daprd-2"),
        ("fault", "start", "daprd-2"),
        ("fault", "stop", "placement"),
        ("fault", "start", "placement"),
        ("fault", "pause", "daprd-2", "60"),
        ("fault", "kill", "replica-1"),
    ):
        done = daprlab(state_dir, *args)
        assert done.returncode == 0, f"{args}: {done.stdout}"
    pids = every_pid(runner, state_dir)
    # Seven processes of two replicas, and app-2, daprd-2 and placement a second time.
    assert len(pids) == 10, pids

    runner.proc.send_signal(signal.SIGKILL)
    runner.proc.wait(timeout=SLACK_SECONDS)
    for pid in pids:
        wait_for(lambda pid=pid: process_gone(pid), SLACK_SECONDS, f"pid {pid} to die")
    no_runner = daprlab(state_dir, "where", "alice")
    assert no_runner.returncode == 1
    assert no_runner.stdout == (
        f"error: no `daprlab up` is running on {state_dir}: start one in another terminal "
        "(`uv run daprlab up <step>`)\n"
    )


def test_leftovers_of_a_runner_without_the_parent_death_signal_are_stopped(
    tmp_path: Path, dapr_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a runner on a system without PR_SET_PDEATHSIG (macOS) leaves after `kill -9`."""
    without_signal = {parent_death.SWITCH_ENV: "off"}
    with run_up(tmp_path, env=without_signal) as first:
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(timeout=SLACK_SECONDS)
    leftovers = every_pid(first, tmp_path)
    try:
        assert len(leftovers) == 5
        assert not any(process_gone(pid) for pid in leftovers), "nothing was left over"

        # The trap: a new scheduler on the leftover's etcd data never becomes ready. The
        # wait for it has a deadline, and its message names it and gives its last lines.
        monkeypatch.setattr(lab_stack, "STARTUP_TIMEOUT_SECONDS", SHORT_STARTUP_SECONDS)
        trapped = Stack(StackConfig("01_actor_timers", tmp_path), dapr_runtime, lambda *_: None)
        with pytest.raises(StackError) as err:
            trapped.start()
        message = str(err.value)
        assert message.startswith("scheduler not ready: timed out after"), message
        assert "scheduler's last lines:\n" in message
        assert "scheduler" in [name for name, _ in trapped.started]
        assert all(process_gone(pid) for _, pid in trapped.started)

        with run_up(tmp_path) as second:
            stopped = second.find(r"daprlab\s*\| stopped the leftovers of an earlier run on (.*)")
            assert stopped, "\n".join(second.lines)
            assert stopped.group(1).startswith(f"{tmp_path}: redis (pid ")
            for name in ("placement", "scheduler", "daprd", "app"):
                assert f"{name} (pid " in stopped.group(1)
            assert all(process_gone(pid) for pid in leftovers)
            # Ctrl-C while a control command has Redis frozen: the runner resumes it to stop it.
            paused = daprlab(tmp_path, "fault", "pause", "redis", "100")
            assert paused.returncode == 0, paused.stdout
            second.proc.send_signal(signal.SIGINT)
            assert second.proc.wait(timeout=SLACK_SECONDS) == 130
        for pid in every_pid(second, tmp_path):
            wait_for(lambda pid=pid: process_gone(pid), SLACK_SECONDS, f"pid {pid} to exit")
    finally:  # a failure above must not leave the leftovers running
        for pid in leftovers:
            if not process_gone(pid):
                os.killpg(pid, signal.SIGKILL)
