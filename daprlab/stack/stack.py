"""The real lab stack on loopback: Redis, placement, scheduler, and daprd + app per instance,
started in order and waited for until each serves.

One piece of code serves both the local runner (`daprlab up`) and the test harness. The
processes are daprlab/stack/process.py's, their ports daprlab/stack/ports.py's, their command
lines daprlab/stack/command_lines.py's.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from daprlab import netcheck
from daprlab.model_server import NAME as MODEL
from daprlab.model_server import ModelServer
from daprlab.netcheck import LOOPBACK
from daprlab.paths import step_dir
from daprlab.runtime import Runtime
from daprlab.stack import command_lines, redis_persistence
from daprlab.stack.components import resources_dir
from daprlab.stack.ports import ControlPorts, Instance, InstancePorts
from daprlab.stack.process import DEFAULT_START_FIX, LineSink, ManagedProcess, StackError
from daprlab.wait import DeadlineExceeded, wait_for

logger = logging.getLogger(__name__)

STARTUP_TIMEOUT_SECONDS = 60
SIDECAR_READY_TIMEOUT_SECONDS = 60
RUNNER = "daprlab"  # the name the stack's own lines carry
LOG_DIR_NAME = "logs"
LOG_SUFFIX = ".log"
DAPR_BINARY_FIX = "run `uv run daprlab runtime` to find or build the Dapr binaries"
# The running stack's token, in its state dir: a learner's curl to /dapr/config reads it there.
APP_API_TOKEN_FILE = "app-api-token"


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
    # How the stack's own Redis keeps its data (daprlab/stack/redis_persistence.py).
    redis_persistence: str = redis_persistence.DEFAULT
    # The local model server (`daprlab up --model local`), its URL in every app's env; None: off.
    model: ModelServer | None = None
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
        app_env = {**(config.model.app_env() if config.model else {}), **config.app_env}
        self.instances = [
            Instance(i, p, dict(app_env)) for i, p in enumerate(config.instance_ports)
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
            if self.config.model is not None:
                self.start_model(wait=False)
            for inst in self.instances:
                self.start_sidecar(inst)
                self.start_app(inst)
            for name in ("placement", "scheduler", MODEL):
                if name in self.control:
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
                    RUNNER,
                    f"redis ready: using the Redis already listening on {LOOPBACK}:{port}; "
                    "what survives a crash is up to its own persistence setting",
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
        persistence = self.config.redis_persistence
        data = redis_persistence.data_dir(self.config.state_dir, persistence)
        data.mkdir(parents=True, exist_ok=True)
        migrate = redis_persistence.needs_migration(data, persistence)
        argv = [server, "--bind", LOOPBACK, "--port", str(port), "--dir", str(data)]
        argv += [*redis_persistence.server_args(persistence, migrate), "--protected-mode", "yes"]
        self._start_control(
            "redis",
            argv,
            lambda: netcheck.redis_ping(port),
            f"Redis on {port}",
            f"{LOOPBACK}:{port}, persistence {persistence} ({data})",
        )
        if migrate:
            keys = redis_persistence.enable_aof(port)
            self.sink(
                RUNNER,
                f"redis: moved {keys} keys from {redis_persistence.RDB_FILE} into the "
                f"append-only file ({persistence})",
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
        argv = command_lines.placement_argv(self.runtime, ports, self.config.log_level)
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

    def start_model(self, wait: bool = True) -> None:
        """The local model server (daprlab/model_server.py), when the stack has one."""
        server = self.config.model
        if server is None:
            raise StackError(f"no model in this stack: `daprlab up <step> --{MODEL} local` has one")
        self._require_free(MODEL, {"HTTP": server.port})
        ready = f"{server.url}/models"
        self._start_control(MODEL, server.argv(), server.ready, ready, server.url, wait=wait)

    def scheduler_argv(self, data: Path) -> list[str]:
        """The scheduler's command line, with the etcd flags of the runtime's release."""
        return command_lines.scheduler_argv(
            self.runtime, self.config.control_ports, data, self.config.log_level
        )

    def daprd_argv(self, inst: Instance) -> list[str]:
        redis_db = inst.index + 1 if self.config.store_per_namespace else None
        resources = resources_dir(self.config.state_dir, self.config.resiliency, redis_db)
        return command_lines.daprd_argv(
            self.runtime, inst, self.config.control_ports, resources, self.config.log_level
        )

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
        namespaces = self.config.namespaces
        env = command_lines.daprd_env(
            self.config.control_ports.redis,
            self.config.app_api_token,
            namespaces[inst.index] if inst.index < len(namespaces) else "",
        )
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
        argv = command_lines.app_argv(self.step_dir, inst)
        env = command_lines.app_env(inst, self.config.app_api_token)
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
        # daprd's healthz is green before the first placement table arrives; until then actor
        # calls wait. Its log line is the only signal the sidecar gives of it, worded by release.
        daprd = inst.daprd
        assert daprd is not None
        applied = self.runtime.release.table_applied
        self._wait(
            procs,
            lambda: any(applied.search(line) for line in list(daprd.lines)),
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
    def crash(self) -> list[str]:
        """A power cut: SIGKILL to every process of the stack at once, none warned first, then
        wait until all are gone. The names of the processes killed."""
        procs = [p for p in self.processes() if p.alive]
        for proc in procs:
            proc.signal(signal.SIGKILL)
        for proc in procs:
            wait_for(
                lambda proc=proc: not proc.alive, STARTUP_TIMEOUT_SECONDS, f"{proc.name} to die"
            )
        return [proc.name for proc in procs]

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
        applied = self.runtime.release.table_applied
        self.control.pop("placement").stop()
        self.start_placement()
        for daprd, mark in marks:
            self._wait(
                [daprd],
                lambda daprd=daprd, mark=mark: any(
                    applied.search(line) for line in daprd.lines_since(mark)
                ),
                f"{daprd.name}'s placement table from the restarted placement",
                SIDECAR_READY_TIMEOUT_SECONDS,
            )

    def restart_instance(self, index: int = 0) -> None:
        """Stop the app and its sidecar, then start both again on the same ports."""
        inst = self.instances[index]
        self.stop_instance(inst)
        self.start_instance(inst)
