"""Runner controls: `daprlab fault ...` and `daprlab where ...` talk to a running `daprlab up`.

The channel is a loopback TCP port with a per-run token, both in the state directory's
runner.json (readable by its owner only, see daprlab/leftovers.py). A request is one JSON line
`{"token", "command", "args"}`, the answer one JSON line `{"ok", "message"}`. The runner carries
requests out on its main thread, between its checks that every process is alive: a process a
control command starts is then a child of the thread that lives as long as the runner, so the
parent-death signal (daprlab/lifeline.py) still ties it to the runner.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import logging
import os
import queue
import re
import secrets
import signal
import socket
import threading
import time
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from daprlab import paths
from daprlab.leftovers import (
    RECORD_FILE,
    ProcessRecord,
    RunRecord,
    StateDirLock,
    cmdline,
    read_record,
    stop_leftovers,
    write_record,
)
from daprlab.netcheck import LOOPBACK
from daprlab.stack import PLACEMENT_TABLE_LOG, Instance, ManagedProcess, Stack, StackError
from daprlab.wait import DeadlineExceeded, wait_for

logger = logging.getLogger(__name__)

MAX_PAUSE_SECONDS = 120
# How long a client waits for the runner's answer: a `start` waits for readiness (60 s at most).
ANSWER_TIMEOUT_SECONDS = 150
REQUEST_READ_TIMEOUT_SECONDS = 5
ACCEPT_POLL_SECONDS = 0.5
MAX_REQUEST_BYTES = 64 * 1024
WATCH_INTERVAL_SECONDS = 0.2
CONTROL_PLANE = ("redis", "placement", "scheduler")
ACTIONS = ("pause", "stop", "start", "kill")
ACTOR_TYPE = "ChatAgent"
# Dapr's placement hashes each host onto its ring this many times (its --replicationFactor).
PLACEMENT_REPLICATION_FACTOR = 100
STATE_DIR_ENV = "DAPRLAB_STATE_DIR"
# daprd logs this once a placement table is in use (dapr/dapr pkg/actors/placement).
APPLIED_TABLE = re.compile(rf"{PLACEMENT_TABLE_LOG}, version: (\d+)")
SIDECAR_TABLE_TIMEOUT_SECONDS = 10
# placement logs this when each sidecar of a namespace has its table (dapr/dapr pkg/placement).
DISSEMINATED = re.compile(
    r"Completed dissemination for namespace (\S*?)\. .*streams: (\d+).*table generation: (\d+)"
)
DEFAULT_NAMESPACE = "default"
PLACEMENT_STATE_TIMEOUT_SECONDS = 5
EXIT_FAILED = 1


class ControlError(RuntimeError):
    """A control request that cannot be carried out; the message says why, in one line."""


def default_state_dir() -> Path:
    """.lab/ in the repo, or DAPRLAB_STATE_DIR: the directory every subcommand looks in."""
    return Path(os.environ.get(STATE_DIR_ENV) or paths.LOCAL_STATE_DIR)


# ---- where an actor lives: Dapr's consistent hashing, as each sidecar computes it --------------
def ring_hash(key: str) -> int:
    """dapr/dapr pkg/placement/hashing: the first 8 bytes of BLAKE2b-512, little-endian."""
    return int.from_bytes(hashlib.blake2b(key.encode()).digest()[:8], "little")


@dataclass
class Ring:
    """The placement table of one actor type: each host at PLACEMENT_REPLICATION_FACTOR points."""

    points: list[int] = field(default_factory=list)
    owners: dict[int, str] = field(default_factory=dict)

    @classmethod
    def of(cls, hosts: list[str]) -> Ring:
        ring = cls()
        for host in hosts:
            for i in range(PLACEMENT_REPLICATION_FACTOR):
                ring.owners[ring_hash(f"{host}{i}")] = host
        ring.points = sorted(ring.owners)
        return ring

    def host(self, actor_id: str) -> str:
        """The host of an actor id: the first point at or after its hash, wrapping around."""
        index = bisect_left(self.points, ring_hash(actor_id))
        return self.owners[self.points[index % len(self.points)]]


# ---- the runner's side ------------------------------------------------------------------------
@dataclass
class Request:
    command: str
    args: dict
    answered: threading.Event = field(default_factory=threading.Event)
    ok: bool = False
    message: str = ""


class ControlServer:
    """Accepts requests on a loopback port; hands each to the runner's main thread."""

    def __init__(self) -> None:
        self.token = secrets.token_hex(16)
        self.requests: queue.Queue[Request] = queue.Queue()
        self._socket = socket.create_server((LOOPBACK, 0))
        self._socket.settimeout(ACCEPT_POLL_SECONDS)
        self.port: int = self._socket.getsockname()[1]
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="control", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._closing.set()
        self._thread.join(timeout=ANSWER_TIMEOUT_SECONDS)
        self._socket.close()
        # Whoever still waits hears that the runner stopped.
        while not self.requests.empty():
            request = self.requests.get_nowait()
            request.message = "the runner stopped before carrying this out"
            request.answered.set()

    def _serve(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(REQUEST_READ_TIMEOUT_SECONDS)
        try:
            raw = conn.makefile("rb").readline(MAX_REQUEST_BYTES)
            data = json.loads(raw)
            if not hmac.compare_digest(str(data.get("token", "")), self.token):
                reply = {"ok": False, "message": "wrong token: read it from this run's runner.json"}
            else:
                request = Request(str(data["command"]), dict(data.get("args", {})))
                self.requests.put(request)
                while not request.answered.wait(ACCEPT_POLL_SECONDS):
                    if self._closing.is_set():
                        break
                reply = {"ok": request.ok, "message": request.message or "the runner stopped"}
            conn.sendall(json.dumps(reply).encode() + b"\n")
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            logger.warning("a control request failed: %s", err)


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
    def _replica(self, inst: Instance) -> str:
        return f"replica-{inst.index + 1}"

    def names(self) -> list[str]:
        """The names a control command accepts, as the runner prints them, and replica-N."""
        found = [name for name in CONTROL_PLANE if name in self.stack.control]
        for inst in self.stack.instances:
            found += [f"daprd{inst.suffix}", f"app{inst.suffix}"]
        if len(self.stack.instances) > 1:
            found += [self._replica(inst) for inst in self.stack.instances]
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
            if name == self._replica(inst):
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
                wait_for(lambda proc=proc: not proc.alive, 10, f"{proc.name} to die")
            how = "killed (SIGKILL)"
        return f"{how} {' and '.join(targets)}; `uv run daprlab fault start {name}` starts it again"

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
        # daprd registers with placement as DAPR_HOST_IP:<its internal gRPC port>.
        replicas = {
            f"{LOOPBACK}:{inst.ports.dapr_internal}": self._replica(inst)
            for inst in self.stack.instances
        }
        if hosted_by is not None and hosted_by not in replicas.values():
            valid = ", ".join(replicas.values())
            raise ControlError(f"no replica named {hosted_by!r}; valid: {valid}")
        tables = self._tables(actor_type)
        self._wait_for_sidecars(tables)
        rings = {ns: Ring.of(hosts) for ns, hosts in tables.items()}
        # One placement table per namespace: an id has a host in each.
        placed_in = {
            ns: {actor_id: replicas[ring.host(actor_id)] for actor_id in ids}
            for ns, ring in rings.items()
        }
        if hosted_by is not None:
            return "\n".join(
                actor_id
                for placed in placed_in.values()
                for actor_id, where in placed.items()
                if where == hosted_by
            )
        answers = [self._summary(ids, actor_type, placed) for placed in placed_in.values()]
        if len(answers) == 1:
            return answers[0]
        return "; ".join(
            f"{answer} (namespace {ns})" for ns, answer in zip(placed_in, answers, strict=True)
        )

    @staticmethod
    def _summary(ids: list[str], actor_type: str, placed: dict[str, str]) -> str:
        if len(ids) == 1:
            return f"{actor_type} {ids[0]} is on {placed[ids[0]]}"
        counts = [
            f"{replica} {n}"
            for replica in sorted(set(placed.values()))
            if (n := sum(1 for r in placed.values() if r == replica))
        ]
        return f"{len(ids)} {actor_type} actors: {', '.join(counts)}"

    def _wait_for_sidecars(self, tables: dict[str, list[str]]) -> None:
        """Wait until placement has sent each namespace's table with its current hosts, and
        every running sidecar of the namespace says it applied it: then the answer is the
        sidecars' own view, not only placement's."""
        placement = self.stack.control.get("placement")

        def behind() -> list[str]:
            sent: dict[str, tuple[int, int]] = {}  # namespace: (streams, table generation)
            for line in list(placement.lines) if placement else []:
                if found := DISSEMINATED.search(line):
                    sent[namespace_name(found[1])] = (int(found[2]), int(found[3]))
            late = []
            for namespace, hosts in tables.items():
                streams, generation = sent.get(namespace_name(namespace), (0, 0))
                if streams != len(hosts):
                    late.append(f"placement has yet to send namespace {namespace}'s table")
                    continue
                for daprd in self._sidecars(namespace_name(namespace)):
                    if (applied := applied_table(daprd)) < generation:
                        late.append(f"{daprd.name} has table {applied} of {generation}")
            return late

        try:
            wait_for(lambda: not behind(), SIDECAR_TABLE_TIMEOUT_SECONDS, "the sidecars' tables")
        except DeadlineExceeded:
            raise ControlError(
                f"the sidecars have not all applied placement's current table within "
                f"{SIDECAR_TABLE_TIMEOUT_SECONDS} s ({', '.join(behind())}): ask again"
            ) from None

    def _sidecars(self, namespace: str) -> list[ManagedProcess]:
        """The running sidecars of one namespace."""
        namespaces = self.stack.config.namespaces
        return [
            inst.daprd
            for inst in self.stack.instances
            if inst.daprd is not None
            and inst.daprd.alive
            and namespace_name(namespaces[inst.index] if inst.index < len(namespaces) else "")
            == namespace
        ]

    def _tables(self, actor_type: str) -> dict[str, list[str]]:
        """The hosts of `actor_type` in placement's tables, by namespace: what it sends the
        sidecars of each namespace."""
        ports = self.stack.config.control_ports
        url = f"http://{LOOPBACK}:{ports.placement_health}/placement/state"
        try:
            state = httpx.get(url, timeout=PLACEMENT_STATE_TIMEOUT_SECONDS).json()
        except (httpx.HTTPError, ValueError) as err:
            raise ControlError(f"placement does not answer at {url} ({err}): is it up?") from err
        tables: dict[str, list[str]] = {}
        for host in state.get("hostList", []):
            if actor_type in host.get("actorTypes", []):
                tables.setdefault(host.get("namespace", ""), []).append(host["name"])
        if not tables:
            raise ControlError(f"no replica hosts {actor_type} now (placement's table is empty)")
        return dict(sorted(tables.items()))


def namespace_name(namespace: str) -> str:
    """A sidecar without NAMESPACE is in Dapr's "default" namespace."""
    return namespace or DEFAULT_NAMESPACE


def applied_table(daprd: ManagedProcess) -> int:
    """The placement table version a sidecar last logged as applied (0: none yet)."""
    for line in reversed(list(daprd.lines)):
        if match := APPLIED_TABLE.search(line):
            return int(match.group(1))
    return 0


def check_pause(seconds: float | None) -> float:
    if seconds is None or not 0 < seconds <= MAX_PAUSE_SECONDS:
        raise ControlError(
            f"pause takes a number of seconds from 0 to {MAX_PAUSE_SECONDS}, got {seconds}: "
            "a longer outage is `daprlab fault stop <name>`, later `daprlab fault start <name>`"
        )
    return seconds


# ---- the client's side: `daprlab fault` and `daprlab where` -----------------------------------
def ask(state_dir: Path, command: str, args: dict) -> tuple[bool, str]:
    """Send one request to the runner on `state_dir`; (ok, its answer)."""
    record = read_record(state_dir)
    no_runner = (
        f"no `daprlab up` is running on {state_dir}: start one in another terminal "
        "(`uv run daprlab up <step>`)"
    )
    if record is None or not record.control_port:
        raise ControlError(no_runner)
    try:
        with socket.create_connection((LOOPBACK, record.control_port), timeout=5) as conn:
            conn.settimeout(ANSWER_TIMEOUT_SECONDS)
            request = {"token": record.token, "command": command, "args": args}
            conn.sendall(json.dumps(request).encode() + b"\n")
            raw = conn.makefile("rb").readline(MAX_REQUEST_BYTES)
    except ConnectionRefusedError:
        raise ControlError(no_runner) from None
    except OSError as err:
        raise ControlError(f"the runner on {state_dir} did not answer: {err}") from err
    try:
        answer = json.loads(raw)
        return bool(answer["ok"]), str(answer["message"])
    except (ValueError, KeyError, TypeError):
        raise ControlError(f"the runner on {state_dir} gave no answer (did it stop?)") from None


def _answer(state_dir: Path, command: str, args: dict) -> int:
    try:
        ok, message = ask(state_dir, command, args)
    except ControlError as err:
        print(f"error: {err}")
        return EXIT_FAILED
    print(message if ok else f"error: {message}")
    return 0 if ok else EXIT_FAILED


def cmd_fault(args: argparse.Namespace) -> int:
    if args.action == "pause":
        try:
            check_pause(args.seconds)
        except ControlError as err:
            print(f"error: {err}")
            return EXIT_FAILED
    request = {"action": args.action, "name": args.name, "seconds": args.seconds}
    return _answer(args.state_dir, "fault", request)


def cmd_where(args: argparse.Namespace) -> int:
    request = {"ids": args.actor_ids, "actor_type": args.type, "hosted_by": args.hosted_by}
    return _answer(args.state_dir, "where", request)


def add_commands(sub: argparse._SubParsersAction) -> None:
    """`fault` and `where`, for daprlab/cli.py's parser."""
    state_dir_help = f"the runner's --state-dir (default: {STATE_DIR_ENV} or .lab/ in the repo)"
    fault = sub.add_parser("fault", help="pause, stop, start or kill one process of a running `up`")
    fault.add_argument("action", choices=ACTIONS)
    fault.add_argument("name", help="a process as the runner names it (redis, daprd-2, replica-3)")
    fault.add_argument(
        "seconds", nargs="?", type=float, help=f"pause only: 0 to {MAX_PAUSE_SECONDS}"
    )
    fault.add_argument("--state-dir", type=Path, default=default_state_dir(), help=state_dir_help)
    fault.set_defaults(func=cmd_fault)
    where = sub.add_parser("where", help="which replica of a running `up` hosts an actor")
    where.add_argument("actor_ids", nargs="+", metavar="actor_id")
    where.add_argument("--type", default=ACTOR_TYPE, help=f"actor type (default: {ACTOR_TYPE})")
    where.add_argument("--hosted-by", metavar="REPLICA", help="print the ids this replica hosts")
    where.add_argument("--state-dir", type=Path, default=default_state_dir(), help=state_dir_help)
    where.set_defaults(func=cmd_where)
