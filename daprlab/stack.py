"""The real lab stack on loopback: Redis, placement, scheduler, and daprd + app per instance.

One piece of code serves both the local runner (`daprlab up`) and the test harness.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from daprlab import lifeline, netcheck, scheduler_flags
from daprlab.paths import step_dir
from daprlab.resources import resources_dir
from daprlab.runtime import Runtime
from daprlab.wait import DeadlineExceeded, wait_for

logger = logging.getLogger(__name__)

APP_ID = "chat-agent"
LOOPBACK = netcheck.LOOPBACK
LOG_LINES_KEPT = 2000
STOP_GRACE_SECONDS = 10
# After a process died: how long to wait for the rest of its output (a child may hold the pipe).
OUTPUT_DRAIN_SECONDS = 2
STARTUP_TIMEOUT_SECONDS = 60
SIDECAR_READY_TIMEOUT_SECONDS = 60
PLACEMENT_TABLE_LOG = "Placement tables updated"
RUNNER = "daprlab"  # the name the stack's own lines carry
LOG_DIR_NAME = "logs"
LOG_SUFFIX = ".log"
DAPR_BINARY_FIX = "run `uv run daprlab runtime` to find or build the Dapr binaries"
DEFAULT_START_FIX = "check that it is installed and executable"
LOG_LEVEL_ENV = "LOG_LEVEL"
# daprd sends this env var's value to the app as the dapr-api-token header; the app refuses
# actor callbacks without it, so only this stack's sidecar can call them.
APP_API_TOKEN_ENV = "APP_API_TOKEN"
# The running stack's token, in its state dir: a learner's curl to /dapr/config reads it there.
APP_API_TOKEN_FILE = "app-api-token"

LineSink = Callable[[str, str], None]


def process_gone(pid: int) -> bool:
    """Whether process `pid` has exited: no /proc entry left, or only a zombie's (Linux)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    # The state follows the command name, which is in parentheses and may hold spaces.
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def uvicorn_argv(app: str, app_dir: Path, port: int, log_level: str = "") -> list[str]:
    """How the lab serves an app: one worker; uvloop and httptools, which uvicorn picks up by
    itself; the access log only at LOG_LEVEL=DEBUG (a line per request costs CPU under load)."""
    argv = [
        sys.executable, "-m", "uvicorn", app,
        "--app-dir", str(app_dir),
        "--host", LOOPBACK,
        "--port", str(port),
        "--workers", "1",
    ]  # fmt: skip
    return argv if log_level.strip().upper() == "DEBUG" else [*argv, "--no-access-log"]


class StackError(RuntimeError):
    """A part of the stack could not start or died; the message names it and says why."""


@dataclass
class ControlPorts:
    redis: int
    placement: int
    placement_health: int
    placement_raft: int
    scheduler: int
    scheduler_health: int
    scheduler_etcd_client: int
    scheduler_etcd_peer: int

    @classmethod
    def fixed(cls) -> ControlPorts:
        """The local runner's ports: Redis' and Dapr's defaults where they don't clash."""
        return cls(6379, 50005, 58080, 8201, 50006, 58081, 52379, 52380)

    @classmethod
    def free(cls) -> ControlPorts:
        return cls(*(netcheck.free_port() for _ in range(8)))


@dataclass
class InstancePorts:
    app: int
    dapr_http: int
    dapr_grpc: int
    dapr_internal: int
    # daprd's Prometheus metrics (the lab console reads them); Dapr's default port.
    dapr_metrics: int = 9090

    @classmethod
    def fixed(cls, index: int = 0) -> InstancePorts:
        """Replica `index`'s ports: 8000, 3500, 50001, 50002, 9090 for the first, then +1 (app,
        HTTP, metrics) and +10 (gRPC, clear of placement's 50005 and the scheduler's 50006)."""
        return cls(8000 + index, 3500 + index, 50001 + 10 * index, 50002 + 10 * index, 9090 + index)

    @classmethod
    def free(cls) -> InstancePorts:
        return cls(*(netcheck.free_port() for _ in range(5)))


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
                preexec_fn=lifeline.die_with_parent(),
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


@dataclass
class Instance:
    """One app replica: daprd and the step's app, with their ports and processes."""

    index: int
    ports: InstancePorts
    app_env: dict[str, str]
    daprd: ManagedProcess | None = None
    app: ManagedProcess | None = None

    @property
    def suffix(self) -> str:
        return "" if self.index == 0 else f"-{self.index + 1}"

    @property
    def app_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports.app}"

    @property
    def dapr_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports.dapr_http}"

    @property
    def metrics_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports.dapr_metrics}/metrics"


@dataclass
class StackConfig:
    step: str
    state_dir: Path
    control_ports: ControlPorts = field(default_factory=ControlPorts.free)
    instance_ports: list[InstancePorts] = field(default_factory=lambda: [InstancePorts.free()])
    app_env: dict[str, str] = field(default_factory=dict)
    # True: use a Redis already answering on the Redis port instead of starting one.
    reuse_redis: bool = False
    # daprd's NAMESPACE for each instance, in order; missing or empty: Dapr's "default".
    namespaces: list[str] = field(default_factory=list)
    log_level: str = "info"
    # False: daprd runs without components/resiliency.yaml (no state-store retries).
    resiliency: bool = True
    # True: the state store of instance i (of namespace i) is Redis database i + 1.
    store_per_namespace: bool = False
    # Fresh for every stack: the shared secret of its sidecars and apps.
    app_api_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))


class Stack:
    def __init__(self, config: StackConfig, runtime: Runtime, sink: LineSink) -> None:
        self.config = config
        self.runtime = runtime
        self.sink = sink
        self.step_dir = step_dir(config.step)
        self.control: dict[str, ManagedProcess] = {}
        # Per control process: how to tell it serves, and what that is called in an error.
        self._control_ready: dict[str, tuple[Callable[[], object], str, str]] = {}
        # Every process this stack ever started, as (name, pid); kept after stop(), so that
        # a caller can check that none of them outlived the stack.
        self.started: list[tuple[str, int]] = []
        self.instances = [
            Instance(i, p, dict(config.app_env)) for i, p in enumerate(config.instance_ports)
        ]
        # Called with each process just started (the runner records its pid).
        self.on_spawn: Callable[[ManagedProcess], None] = lambda _proc: None
        # The full output of every process, one file each (daprd.log, app-2.log, ...).
        self.log_dir = config.state_dir / LOG_DIR_NAME
        self.app_api_token_file = config.state_dir / APP_API_TOKEN_FILE

    # ---- what tests and the runner look at -------------------------------------------------
    @property
    def app_url(self) -> str:
        return self.instances[0].app_url

    @property
    def dapr_url(self) -> str:
        return self.instances[0].dapr_url

    @property
    def redis_port(self) -> int:
        return self.config.control_ports.redis

    def processes(self) -> list[ManagedProcess]:
        procs = list(self.control.values())
        for inst in self.instances:
            procs += [p for p in (inst.daprd, inst.app) if p is not None]
        return procs

    def dead(self) -> ManagedProcess | None:
        """The first process that has exited, if any."""
        return next((p for p in self.processes() if p.returncode is not None), None)

    # ---- start and stop --------------------------------------------------------------------
    def start(self) -> None:
        """Redis first (daprd loads its state store at start); then everything else at once:
        daprd connects to placement only once the app is up, seconds later."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        # Readable by its owner only, like any secret.
        self.app_api_token_file.touch(mode=0o600)
        self.app_api_token_file.chmod(0o600)
        self.app_api_token_file.write_text(self.config.app_api_token)
        # Each start begins new log files; the restarts of one stack append to them.
        for old in self.log_dir.glob(f"*{LOG_SUFFIX}"):
            old.unlink()
        try:
            self.start_redis()
            self.start_placement(wait=False)
            self.start_scheduler(wait=False)
            for inst in self.instances:
                self.start_sidecar(inst)
                self.start_app(inst)
            for name in ("placement", "scheduler"):
                self.wait_control(name)
            for inst in self.instances:
                self.wait_outbound(inst)
                self.wait_ready(inst)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for inst in reversed(self.instances):
            self.stop_instance(inst)
        for name in reversed(list(self.control)):
            self.control.pop(name).stop()

    def _spawn(
        self, name: str, argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> ManagedProcess:
        dapr_binary = Path(argv[0]).parent == self.runtime.bin_dir
        fix = DAPR_BINARY_FIX if dapr_binary else DEFAULT_START_FIX
        log_file = self.log_dir / f"{name}{LOG_SUFFIX}"
        proc = ManagedProcess(
            name, argv, self.sink, env=env, cwd=cwd, start_fix=fix, log_file=log_file
        )
        proc.start()
        assert proc.pid is not None
        self.started.append((name, proc.pid))
        self.on_spawn(proc)
        return proc

    def _ready(self, proc: ManagedProcess, where: str) -> None:
        """The one line per process: it serves, with its pid and where."""
        self.sink(RUNNER, f"{proc.name} ready (pid {proc.pid}): {where}")

    def _wait(
        self, procs: list[ManagedProcess], check: Callable[[], object], what: str, timeout: float
    ) -> None:
        def ready() -> object:
            for proc in procs:
                if not proc.alive:
                    tail = "\n".join(list(proc.lines)[-15:])
                    raise StackError(f"{proc.name} {proc.exit_reason()} while starting:\n{tail}")
            return check()

        try:
            wait_for(ready, timeout, what)
        except DeadlineExceeded as err:
            tails = "".join(
                f"\n{proc.name}'s last lines:\n" + "\n".join(list(proc.lines)[-10:])
                for proc in procs
            )
            names = " and ".join(proc.name for proc in procs)
            raise StackError(
                f"{names} not ready: {err}; is something else slowing it down? "
                f"Full logs in {self.log_dir}{tails}"
            ) from err

    def _require_free(self, name: str, ports: dict[str, int]) -> None:
        for label, port in ports.items():
            if netcheck.port_in_use(port):
                raise StackError(
                    f"port {port} ({name} {label}) is already in use: stop what listens there "
                    f"(find it with `ss -ltnp 'sport = :{port}'`), then try again"
                )

    def _start_control(
        self,
        name: str,
        argv: list[str],
        ready: Callable[[], object],
        what: str,
        where: str,
        cwd: Path | None = None,
        wait: bool = True,
    ) -> None:
        """Start one control-plane process; `wait`: until `ready()` says it serves."""
        self.control[name] = self._spawn(name, argv, cwd=cwd)
        self._control_ready[name] = (ready, what, where)
        if wait:
            self.wait_control(name)

    def wait_control(self, name: str) -> None:
        ready, what, where = self._control_ready[name]
        proc = self.control[name]
        self._wait([proc], ready, what, STARTUP_TIMEOUT_SECONDS)
        self._ready(proc, where)

    def start_redis(self) -> None:
        port = self.config.control_ports.redis
        if netcheck.port_in_use(port):
            if self.config.reuse_redis and netcheck.redis_ping(port):
                self.sink(
                    RUNNER, f"redis ready: using the Redis already listening on {LOOPBACK}:{port}"
                )
                return
            raise StackError(
                f"port {port} (redis) is in use by something that is not a usable Redis: "
                f"stop it (`ss -ltnp 'sport = :{port}'`) or start Redis there"
            )
        server = shutil.which("redis-server")
        if server is None:
            raise StackError(
                f"Redis is not running on {LOOPBACK}:{port} and redis-server is not installed: "
                "install it (Debian/Ubuntu: `sudo apt-get install redis-server`) "
                "or start a Redis there"
            )
        data = self.config.state_dir / "redis"
        data.mkdir(parents=True, exist_ok=True)
        argv = [server, "--bind", LOOPBACK, "--port", str(port), "--dir", str(data)]
        argv += ["--save", "1 1", "--appendonly", "no", "--protected-mode", "yes"]
        self._start_control(
            "redis",
            argv,
            lambda: netcheck.redis_ping(port),
            f"Redis on {port}",
            f"{LOOPBACK}:{port}",
        )

    def start_placement(self, wait: bool = True) -> None:
        ports = self.config.control_ports
        self._require_free(
            "placement",
            {
                "gRPC": ports.placement,
                "healthz": ports.placement_health,
                "raft": ports.placement_raft,
            },
        )
        argv = [
            self.runtime.path("placement"),
            "--port", str(ports.placement),
            "--listen-address", LOOPBACK,
            "--healthz-port", str(ports.placement_health),
            "--initial-cluster", f"dapr-placement-0={LOOPBACK}:{ports.placement_raft}",
            "--enable-metrics=false",
            # GET /placement/state on the healthz port: the hosts `daprlab where` hashes over.
            "--metadata-enabled",
            "--log-level", self.config.log_level,
        ]  # fmt: skip
        url = f"http://{LOOPBACK}:{ports.placement_health}/healthz"
        self._start_control(
            "placement",
            argv,
            lambda: netcheck.http_status(url) == 200,
            url,
            f"{LOOPBACK}:{ports.placement}",
            wait=wait,
        )

    def start_scheduler(self, wait: bool = True) -> None:
        ports = self.config.control_ports
        self._require_free(
            "scheduler",
            {
                "gRPC": ports.scheduler,
                "healthz": ports.scheduler_health,
                "etcd client": ports.scheduler_etcd_client,
                "etcd peer": ports.scheduler_etcd_peer,
            },
        )
        # A persistent data dir: reminders and jobs survive a scheduler restart.
        data = self.config.state_dir / "scheduler"
        data.mkdir(parents=True, exist_ok=True)
        url = f"http://{LOOPBACK}:{ports.scheduler_health}/healthz"
        self._start_control(
            "scheduler",
            self.scheduler_argv(data),
            lambda: netcheck.http_status(url) == 200,
            url,
            f"{LOOPBACK}:{ports.scheduler}",
            cwd=data,
            wait=wait,
        )

    def scheduler_argv(self, data: Path) -> list[str]:
        """The scheduler's command line, with the etcd flags of the runtime's release."""
        ports = self.config.control_ports
        node = "dapr-scheduler-server-0"
        return [
            self.runtime.path("scheduler"),
            "--port", str(ports.scheduler),
            "--listen-address", LOOPBACK,
            "--healthz-port", str(ports.scheduler_health),
            "--enable-metrics=false",
            "--etcd-data-dir", str(data),
            *scheduler_flags.etcd_args(
                self.runtime.version,
                node,
                peer_url=f"http://localhost:{ports.scheduler_etcd_peer}",
                client_port=ports.scheduler_etcd_client,
            ),
            "--log-level", self.config.log_level,
        ]  # fmt: skip

    def daprd_argv(self, inst: Instance) -> list[str]:
        ports, control = inst.ports, self.config.control_ports
        redis_db = inst.index + 1 if self.config.store_per_namespace else None
        resources = resources_dir(self.config.state_dir, self.config.resiliency, redis_db)
        return [
            self.runtime.path("daprd"),
            "--app-id", APP_ID,
            "--app-port", str(ports.app),
            "--app-protocol", "http",
            "--app-channel-address", LOOPBACK,
            "--dapr-http-port", str(ports.dapr_http),
            "--dapr-grpc-port", str(ports.dapr_grpc),
            "--dapr-internal-grpc-port", str(ports.dapr_internal),
            "--dapr-listen-addresses", LOOPBACK,
            "--placement-host-address", f"{LOOPBACK}:{control.placement}",
            "--scheduler-host-address", f"{LOOPBACK}:{control.scheduler}",
            "--resources-path", str(resources),
            "--enable-metrics=true",
            "--metrics-port", str(ports.dapr_metrics),
            "--metrics-listen-address", LOOPBACK,
            "--log-level", self.config.log_level,
        ]  # fmt: skip

    def start_instance(self, inst: Instance) -> None:
        """daprd, then the app at once: the app's import overlaps daprd's start, and the app
        finds daprd's outbound health up when it asks in its lifespan. Then readiness."""
        self.start_sidecar(inst)
        self.start_app(inst)
        self.wait_outbound(inst)
        self.wait_ready(inst)

    def start_sidecar(self, inst: Instance) -> None:
        ports = inst.ports
        self._require_free(
            f"daprd{inst.suffix}",
            {
                "HTTP": ports.dapr_http,
                "gRPC": ports.dapr_grpc,
                "internal gRPC": ports.dapr_internal,
                "metrics": ports.dapr_metrics,
            },
        )
        env = {
            # daprd exits on a host with no non-loopback address unless told which IP to use.
            "DAPR_HOST_IP": LOOPBACK,
            # components/statestore.yaml reads the Redis address from here (envRef).
            "REDIS_HOST": f"{LOOPBACK}:{self.config.control_ports.redis}",
            APP_API_TOKEN_ENV: self.config.app_api_token,
        }
        if inst.index < len(self.config.namespaces) and self.config.namespaces[inst.index]:
            env["NAMESPACE"] = self.config.namespaces[inst.index]
        inst.daprd = self._spawn(f"daprd{inst.suffix}", self.daprd_argv(inst), env=env)

    def wait_outbound(self, inst: Instance) -> None:
        """Until daprd answers the app's calls (its outbound health), what the SDK waits for."""
        url = f"{inst.dapr_url}/v1.0/healthz/outbound"
        procs = [p for p in (inst.daprd, inst.app) if p is not None]
        self._wait(
            procs,
            lambda: netcheck.http_status(url) == 204,
            "daprd outbound health",
            STARTUP_TIMEOUT_SECONDS,
        )

    def start_app(self, inst: Instance) -> None:
        self._require_free(f"app{inst.suffix}", {"HTTP": inst.ports.app})
        log_level = inst.app_env.get(LOG_LEVEL_ENV, os.environ.get(LOG_LEVEL_ENV, ""))
        argv = uvicorn_argv("main:app", self.step_dir, inst.ports.app, log_level)
        env = {
            "DAPR_RUNTIME_HOST": LOOPBACK,
            "DAPR_HTTP_PORT": str(inst.ports.dapr_http),
            "DAPR_GRPC_PORT": str(inst.ports.dapr_grpc),
            "PYTHONUNBUFFERED": "1",
            APP_API_TOKEN_ENV: self.config.app_api_token,
            **inst.app_env,
        }
        inst.app = self._spawn(f"app{inst.suffix}", argv, env=env, cwd=self.step_dir)

    def wait_ready(self, inst: Instance) -> None:
        procs = [p for p in (inst.daprd, inst.app) if p is not None]
        app_health = f"{inst.app_url}/healthz"
        self._wait(
            procs,
            lambda: netcheck.http_status(app_health) == 200,
            "the app's /healthz",
            STARTUP_TIMEOUT_SECONDS,
        )
        assert inst.app is not None
        self._ready(inst.app, inst.app_url)
        dapr_health = f"{inst.dapr_url}/v1.0/healthz"
        self._wait(
            procs,
            lambda: netcheck.http_status(dapr_health) == 204,
            "daprd /v1.0/healthz",
            SIDECAR_READY_TIMEOUT_SECONDS,
        )
        # Dapr 1.14's healthz is green before the first placement table arrives; until then
        # actor calls wait. The log line is the only signal the sidecar gives of it.
        daprd = inst.daprd
        assert daprd is not None
        self._wait(
            procs,
            lambda: any(PLACEMENT_TABLE_LOG in line for line in list(daprd.lines)),
            "daprd's first placement table",
            SIDECAR_READY_TIMEOUT_SECONDS,
        )
        self._ready(daprd, f"{inst.dapr_url}, with its first placement table")

    def stop_instance(self, inst: Instance) -> None:
        for proc in (inst.app, inst.daprd):
            if proc is not None:
                proc.stop()
        inst.app = inst.daprd = None

    # ---- durability drills -----------------------------------------------------------------
    def restart_app(self, index: int = 0) -> None:
        inst = self.instances[index]
        if inst.app is not None:
            inst.app.stop()
        self.start_app(inst)
        self.wait_ready(inst)

    def restart_placement(self) -> None:
        """Stop placement, start it again on the same ports, and wait until every running
        sidecar has a placement table from the new process (actor calls wait until then)."""
        marks = [(inst.daprd, inst.daprd.mark()) for inst in self.instances if inst.daprd]
        self.control.pop("placement").stop()
        self.start_placement()
        for daprd, mark in marks:
            self._wait(
                [daprd],
                lambda daprd=daprd, mark=mark: any(
                    PLACEMENT_TABLE_LOG in line for line in daprd.lines_since(mark)
                ),
                f"{daprd.name}'s placement table from the restarted placement",
                SIDECAR_READY_TIMEOUT_SECONDS,
            )

    def restart_instance(self, index: int = 0) -> None:
        """Stop the app and its sidecar, then start both again on the same ports."""
        inst = self.instances[index]
        self.stop_instance(inst)
        self.start_instance(inst)
