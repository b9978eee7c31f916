"""The runner's lifetime: what `daprlab up` adds to its stack, from claiming the state directory
to its watch loop, and the control commands it carries out (faults, `where`).

The runner carries requests out on its main thread, between its checks that every process is
alive: a process a control command starts is then a child of the thread that lives as long as
the runner, so the parent-death signal (daprlab/stack/parent_death.py) still ties it to the
runner. The requests arrive over daprlab/runner/control_channel.py.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable

from daprlab.runner import actor_placement
from daprlab.runner.control_channel import ControlError, ControlServer, Request
from daprlab.runner.run_record import (
    RECORD_FILE,
    ProcessRecord,
    RunRecord,
    StateDirLock,
    cmdline,
    stop_leftovers,
    write_record,
)
from daprlab.stack.ports import Instance
from daprlab.stack.process import ManagedProcess, StackError
from daprlab.stack.stack import Stack
from daprlab.wait import wait_for

logger = logging.getLogger(__name__)

MAX_PAUSE_SECONDS = 120
WATCH_INTERVAL_SECONDS = 0.2
# How long a killed process has to be gone before the answer says so.
KILL_WAIT_SECONDS = 10
# The stack's shared processes, and the local model server when `up --model local` started one.
CONTROL_PLANE = ("redis", "placement", "scheduler", "model")
ACTIONS = ("pause", "stop", "start", "kill")
# `fault kill all`: every process of the stack at once, a power cut.
ALL = "all"
ACTOR_TYPE = "ChatAgent"


class Runner:
    """What `daprlab up` adds to its stack: the state-dir lock, the record, the control channel."""

    def __init__(self, stack: Stack, say: Callable[[str], None]) -> None:
        self.stack = stack
        self.state_dir = stack.config.state_dir
        self.say = say
        self.lock = StateDirLock(self.state_dir)
        self.server: ControlServer | None = None
        self.record: RunRecord | None = None
        # Processes a control command took down on purpose: their exit does not stop the runner.
        self.down: set[str] = set()
        self.paused: dict[str, tuple[float, float]] = {}  # name: (resume at, seconds)

    # -- lifetime --
    def claim(self) -> None:
        """Lock the state dir (a second runner is refused), stop an earlier run's leftovers,
        open the control channel and write this run's record."""
        self.lock.acquire()
        stop_leftovers(self.state_dir, self.say)
        self.server = ControlServer()
        self.server.start()
        me = os.getpid()
        self.record = RunRecord(me, cmdline(me) or [], self.server.port, self.server.token)
        self.stack.on_spawn = lambda _proc: self.write()
        self.write()

    def write(self) -> None:
        """Record every live process of the stack, with the command line /proc shows for it
        (Redis rewrites its own)."""
        if self.record is None:
            return
        self.record.processes = [
            ProcessRecord(proc.name, proc.pid, cmdline(proc.pid) or proc.argv)
            for proc in self.stack.processes()
            if proc.pid is not None and proc.alive
        ]
        write_record(self.state_dir, self.record)

    def stop_stack(self) -> None:
        """Resume what is paused (a stopped process would ignore SIGTERM), then stop it all."""
        for name in list(self.paused):
            self._resume(name)
        self.stack.stop()

    def release(self) -> None:
        if self.server is not None:
            self.server.close()
        if self.record is not None:
            (self.state_dir / RECORD_FILE).unlink(missing_ok=True)
        self.lock.release()

    # -- the watch loop --
    def watch(self) -> ManagedProcess:
        """Serve control requests until a process exits that no control command took down."""
        return wait_for(self._tick, float("inf"), "a process to exit", WATCH_INTERVAL_SECONDS)

    def _tick(self) -> ManagedProcess | None:
        now = time.monotonic()
        for name, (resume_at, _seconds) in list(self.paused.items()):
            if now >= resume_at:
                self._resume(name)
        assert self.server is not None
        while not self.server.requests.empty():
            self._carry_out(self.server.requests.get_nowait())
        exited = [p for p in self.stack.processes() if p.returncode is not None]
        return next((p for p in exited if p.name not in self.down), None)

    def _carry_out(self, request: Request) -> None:
        try:
            if request.command == "fault":
                request.message = self.fault(
                    request.args["action"], request.args["name"], request.args.get("seconds")
                )
            elif request.command == "where":
                request.message = self.where(
                    list(request.args["ids"]),
                    request.args.get("actor_type", ACTOR_TYPE),
                    request.args.get("hosted_by"),
                )
            else:
                raise ControlError(f"unknown request {request.command!r}")
            request.ok = True
            summary = request.message.splitlines()  # `where --hosted-by` may find none
            self.say(f"control: {summary[0] if summary else 'where: none'}")
        except (ControlError, StackError) as err:
            request.message = str(err)
            self.say(f"control refused: {request.message.splitlines()[0]}")
        except (KeyError, TypeError, ValueError) as err:
            request.message = f"malformed request: {err}"
        finally:
            self.write()
            request.answered.set()

    # -- names --
    def names(self) -> list[str]:
        """The names a control command accepts, as the runner prints them, and replica-N."""
        found = [name for name in CONTROL_PLANE if name in self.stack.control]
        for inst in self.stack.instances:
            found += [f"daprd{inst.suffix}", f"app{inst.suffix}"]
        if len(self.stack.instances) > 1:
            found += [inst.replica_name for inst in self.stack.instances]
        return found

    def _resolve(self, name: str) -> list[str]:
        """The process names behind `name` (a replica is its daprd and its app)."""
        if name not in self.names():
            if name == "redis":
                raise ControlError(
                    f"redis is not this runner's own: it uses the Redis already on port "
                    f"{self.stack.redis_port} (start `daprlab up` with --free-ports for a "
                    "private one); valid names: " + ", ".join(self.names())
                )
            raise ControlError(f"no process named {name!r}; valid names: {', '.join(self.names())}")
        for inst in self.stack.instances:
            if name == inst.replica_name:
                return [f"daprd{inst.suffix}", f"app{inst.suffix}"]
        return [name]

    def _instance(self, name: str) -> Instance | None:
        return next(
            (i for i in self.stack.instances if name in (f"daprd{i.suffix}", f"app{i.suffix}")),
            None,
        )

    def _process(self, name: str) -> ManagedProcess | None:
        if name in self.stack.control:
            return self.stack.control[name]
        inst = self._instance(name)
        if inst is None:
            return None
        return inst.daprd if name.startswith("daprd") else inst.app

    def _running(self, name: str) -> ManagedProcess:
        proc = self._process(name)
        if proc is None or not proc.alive:
            fix = f"`uv run daprlab fault start {name}` starts it"
            raise ControlError(f"{name} is not running: {fix}")
        return proc

    # -- faults --
    def fault(self, action: str, name: str, seconds: float | None = None) -> str:
        if action not in ACTIONS:
            raise ControlError(f"unknown action {action!r}; valid actions: {', '.join(ACTIONS)}")
        if name == ALL:
            return self._crash(action)
        targets = self._resolve(name)
        if action == "pause":
            return self._pause(name, targets, check_pause(seconds))
        if action == "start":
            return self._start(name, targets)
        procs = [self._running(target) for target in targets]
        for target in targets:
            if target in self.paused:  # a frozen process would not act on SIGTERM
                self._resume(target)
        self.down.update(targets)
        if action == "stop":
            for proc in procs:
                proc.stop()
            how = "stopped"
        else:
            for proc in procs:
                proc.signal(signal.SIGKILL)
            for proc in procs:
                wait_for(lambda proc=proc: not proc.alive, KILL_WAIT_SECONDS, f"{proc.name} to die")
            how = "killed (SIGKILL)"
        return f"{how} {' and '.join(targets)}; `uv run daprlab fault start {name}` starts it again"

    def _crash(self, action: str) -> str:
        """`kill all`: SIGKILL to every process at once, as a power cut would; the runner stays,
        with nothing running, until Ctrl-C."""
        if action != "kill":
            raise ControlError(f"`all` goes with kill only (a power cut), not with {action}")
        for name in list(self.paused):
            self._resume(name)
        running = [p.name for p in self.stack.processes() if p.alive]
        if not running:
            raise ControlError("nothing of the stack is running")
        self.down.update(p.name for p in self.stack.processes())
        killed = self.stack.crash()
        return (
            f"killed (SIGKILL) {', '.join(killed)} at once, as a power cut would; "
            "press Ctrl-C in the runner's terminal, then the same `uv run daprlab up ...` again "
            "starts from what was on disk"
        )

    def _pause(self, name: str, targets: list[str], seconds: float) -> str:
        procs = [self._running(target) for target in targets]
        if any(target in self.paused for target in targets):
            raise ControlError(f"{name} is paused already")
        for proc in procs:
            proc.signal(signal.SIGSTOP)
            self.paused[proc.name] = (time.monotonic() + seconds, seconds)
        return f"paused {' and '.join(targets)} for {seconds:g} s (SIGSTOP); it resumes by itself"

    def _resume(self, name: str) -> None:
        _, seconds = self.paused.pop(name)
        proc = self._process(name)
        if proc is not None and proc.alive:
            proc.signal(signal.SIGCONT)
            self.say(f"control: resumed {name} after {seconds:g} s (SIGCONT)")

    def _start(self, name: str, targets: list[str]) -> str:
        for target in targets:
            proc = self._process(target)
            if proc is not None and proc.alive:
                raise ControlError(f"{target} is running already")
        inst = self._instance(targets[0])
        if inst is None:
            getattr(self.stack, f"start_{name}")()
        elif len(targets) == 2:
            self.stack.start_instance(inst)
        elif targets[0].startswith("daprd"):
            self.stack.start_sidecar(inst)
            self.stack.wait_outbound(inst)
            if inst.app is not None and inst.app.alive:
                self.stack.wait_ready(inst)
        else:
            self.stack.start_app(inst)
            self.stack.wait_ready(inst)
        self.down.difference_update(targets)
        return f"started {' and '.join(targets)} again: ready"

    # -- where --
    def where(self, ids: list[str], actor_type: str, hosted_by: str | None) -> str:
        return actor_placement.where(self.stack, ids, actor_type, hosted_by)


def check_pause(seconds: float | None) -> float:
    if seconds is None or not 0 < seconds <= MAX_PAUSE_SECONDS:
        raise ControlError(
            f"pause takes a number of seconds from 0 to {MAX_PAUSE_SECONDS}, got {seconds}: "
            "a longer outage is `daprlab fault stop <name>`, later `daprlab fault start <name>`"
        )
    return seconds
