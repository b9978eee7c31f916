"""The runner's record and lock in its state directory: who runs there now, what it started, and
what an earlier runner that died left running.

`<state dir>/runner.json` names the runner (pid and command line), its control channel (a
loopback port and a per-run token, see daprlab/runner/control_channel.py) and every process of
its stack.
`<state dir>/runner.lock` is held (flock) for as long as the runner lives, so a second runner on
the same directory is refused. A record left by a runner that died names its leftovers: those
still alive with the same pid *and* command line are the lab's own, and are stopped.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

from daprlab.stack.process import StackError, process_gone
from daprlab.wait import DeadlineExceeded, wait_for

logger = logging.getLogger(__name__)

RECORD_FILE = "runner.json"
LOCK_FILE = "runner.lock"
LEFTOVER_STOP_SECONDS = 10


@dataclass
class ProcessRecord:
    name: str
    pid: int
    cmdline: list[str]


@dataclass
class RunRecord:
    runner_pid: int
    runner_cmdline: list[str]
    control_port: int = 0
    token: str = ""
    processes: list[ProcessRecord] = field(default_factory=list)


def cmdline(pid: int) -> list[str] | None:
    """The command line of a running process (Linux /proc), or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    if process_gone(pid):
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def read_record(state_dir: Path) -> RunRecord | None:
    try:
        data = json.loads((state_dir / RECORD_FILE).read_text())
        processes = [ProcessRecord(**p) for p in data.pop("processes", [])]
        return RunRecord(**data, processes=processes)
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as err:
        logger.warning("ignoring an unreadable %s: %s", state_dir / RECORD_FILE, err)
        return None


def write_record(state_dir: Path, record: RunRecord) -> None:
    """Write the record readable by this user only: it holds the control channel's token."""
    path = state_dir / RECORD_FILE
    partial = path.with_suffix(".tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(asdict(record), out, indent=1)
    partial.replace(path)


def alive_as_recorded(proc: ProcessRecord) -> bool:
    return cmdline(proc.pid) == proc.cmdline


class StateDirLock:
    """Exclusive use of one state directory by one runner, for as long as the runner lives."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        self._file = open(self.state_dir / LOCK_FILE, "w")  # held until release()
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            self._file.close()
            self._file = None
            if err.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            record = read_record(self.state_dir)
            who = f" (pid {record.runner_pid})" if record else ""
            stop = f"`kill {record.runner_pid}`" if record else "Ctrl-C in its terminal"
            raise StackError(
                f"another `daprlab up`{who} is running on {self.state_dir}: stop it ({stop}) "
                "or give this one another --state-dir"
            ) from None

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def stop_leftovers(state_dir: Path, say: Callable[[str], None]) -> None:
    """Stop what an earlier runner on `state_dir` left running, and say so in one line.

    Only processes whose pid and command line both match the record are touched: a pid the
    system reused for something else is left alone. Call with the state directory locked.
    """
    record = read_record(state_dir)
    if record is None:
        return
    leftovers = [p for p in record.processes if alive_as_recorded(p)]
    if not leftovers:
        return
    for proc in leftovers:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        except PermissionError:
            pids = " ".join(str(p.pid) for p in leftovers)
            raise StackError(
                f"an earlier run on {state_dir} left processes this user cannot stop: "
                f"{', '.join(f'{p.name} (pid {p.pid})' for p in leftovers)}; "
                f"stop them with `sudo kill -9 {pids}`, then try again"
            ) from None
    for proc in leftovers:
        try:
            wait_for(
                lambda proc=proc: not alive_as_recorded(proc),
                LEFTOVER_STOP_SECONDS,
                f"{proc.name} (pid {proc.pid}) to stop",
            )
        except DeadlineExceeded:
            os.killpg(proc.pid, signal.SIGKILL)
            wait_for(
                lambda proc=proc: not alive_as_recorded(proc),
                LEFTOVER_STOP_SECONDS,
                f"{proc.name} (pid {proc.pid}) to die",
            )
    names = ", ".join(f"{p.name} (pid {p.pid})" for p in leftovers)
    say(f"stopped the leftovers of an earlier run on {state_dir}: {names}")
