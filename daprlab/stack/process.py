"""Process supervision: a child in its own process group, its output read line by line.

Every process the lab starts (Redis, placement, scheduler, daprd, an app, the bench's floor app,
the console's log followers) is a ManagedProcess; each dies with the thread that started it
(daprlab/stack/parent_death.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from daprlab.stack import parent_death

LOG_LINES_KEPT = 2000
STOP_GRACE_SECONDS = 10
# After a process died: how long to wait for the rest of its output (a child may hold the pipe).
OUTPUT_DRAIN_SECONDS = 2
DEFAULT_START_FIX = "check that it is installed and executable"

LineSink = Callable[[str, str], None]


def process_gone(pid: int) -> bool:
    """Whether process `pid` has exited: no /proc entry left, or only a zombie's (Linux)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    # The state follows the command name, which is in parentheses and may hold spaces.
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


class StackError(RuntimeError):
    """A part of the stack could not start or died; the message names it and says why."""


class ManagedProcess:
    """A child process in its own process group, its output read line by line.

    With a `log_file`, every line is also appended to it (and flushed, for `tail -f`).
    """

    def __init__(
        self,
        name: str,
        argv: list[str],
        sink: LineSink,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        start_fix: str = DEFAULT_START_FIX,
        log_file: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = argv
        self.start_fix = start_fix
        self.log_file = log_file
        self.env = {**os.environ, **(env or {})}
        self.cwd = cwd
        self.lines: deque[str] = deque(maxlen=LOG_LINES_KEPT)
        self._lines_read = 0  # all lines ever read, including those `lines` dropped
        self._lines_lock = threading.Lock()
        self._sink = sink
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> None:
        try:
            self._proc = subprocess.Popen(
                self.argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.cwd,
                text=True,
                errors="replace",
                start_new_session=True,
                preexec_fn=parent_death.die_with_parent(),
            )
        except OSError as err:
            raise StackError(
                f"{self.name}: cannot start {self.argv[0]}: {err.strerror}; {self.start_fix}"
            ) from err
        self._reader = threading.Thread(target=self._read, name=f"log-{self.name}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        with ExitStack() as closing:
            log = None
            if self.log_file is not None:
                log = closing.enter_context(self.log_file.open("a", encoding="utf-8"))
            for raw in self._proc.stdout:
                line = raw.rstrip("\n")
                if log is not None:
                    log.write(line + "\n")
                    log.flush()
                with self._lines_lock:
                    self.lines.append(line)
                    self._lines_read += 1
                self._sink(self.name, line)

    def drain(self, timeout: float = OUTPUT_DRAIN_SECONDS) -> None:
        """Wait (at most `timeout`) until the output of an exited process is all read."""
        if self._reader is not None:
            self._reader.join(timeout=timeout)

    def mark(self) -> int:
        """A position in the output, for `lines_since`."""
        with self._lines_lock:
            return self._lines_read

    def lines_since(self, mark: int) -> list[str]:
        """The lines read after `mark` (as many of them as `lines` still holds)."""
        with self._lines_lock:
            new = self._lines_read - mark
            return list(self.lines)[-new:] if new > 0 else []

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc else None

    def exit_reason(self) -> str:
        code = self.returncode
        if code is None:
            return "still running"
        if code < 0:
            return f"killed by signal {signal.Signals(-code).name}"
        return f"exited with code {code}"

    def signal(self, sig: signal.Signals) -> None:
        if self.alive and self._proc is not None:
            os.killpg(self._proc.pid, sig)

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """SIGTERM the process group, then SIGKILL after `grace` seconds."""
        if self._proc is None:
            return
        if self.alive:
            self.signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self._proc.wait()
        else:
            self._proc.wait()
        # The group may hold children that outlived the leader.
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self._reader is not None:
            self._reader.join(timeout=grace)
