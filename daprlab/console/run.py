"""Start the console: beside a local stack (`daprlab up`), or on its own under Tilt
(`daprlab console`, reading through the port-forwards and `kubectl logs -f`; its parser is in
daprlab/cli.py)."""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass

from daprlab import netcheck
from daprlab.console.server import DEFAULT_PORT, ConsoleServer
from daprlab.console.sources import Targets
from daprlab.console.state import ConsoleState, StepSettings
from daprlab.paths import step_dir
from daprlab.stack.command_lines import APP_ID
from daprlab.stack.process import ManagedProcess
from daprlab.stack.stack import Stack
from daprlab.wait import wait_for

ENV_INT_DEFAULT = r'env_int\("{name}", (\d+)'
CHAT_TYPES = ("ChatAgent", "FollowUpAgent")
# How often `daprlab console` checks its log followers (`kubectl logs -f` ends with its pod).
FOLLOW_CHECK_SECONDS = 1.0
__all__ = ["DEFAULT_PORT", "LabConsole", "cmd_console", "stack_targets", "tee"]
QUICK_TYPE = "QuickChatAgent"


def _setting(source: str, env: dict[str, str], name: str) -> int | None:
    """A step setting as the app reads it: the env's value, else its main.py default."""
    found = re.search(ENV_INT_DEFAULT.format(name=name), source)
    if found is None:
        return None  # not a setting of this step
    raw = env.get(name, found.group(1))
    return int(raw) if raw.strip().isdecimal() else None


def step_settings(step: str, env: dict[str, str]) -> StepSettings:
    """The timings the page counts down with, from the step's main.py and the app's env."""
    source = (step_dir(step) / "main.py").read_text()
    idle = _setting(source, env, "ACTOR_IDLE_TIMEOUT_SECONDS")
    idle_timeouts = {actor_type: idle for actor_type in CHAT_TYPES if idle}
    quick = _setting(source, env, "QUICK_IDLE_TIMEOUT_SECONDS")
    if quick:
        idle_timeouts[QUICK_TYPE] = quick
    return StepSettings(
        timer_period=_setting(source, env, "TIMER_PERIOD_SECONDS"),
        timer_ttl=_setting(source, env, "TIMER_TTL_SECONDS"),
        idle_timeouts=idle_timeouts,
    )


def stack_processes(stack: Stack) -> Callable[[], dict[str, bool]]:
    """The runner's own children, up or not; a Redis it did not start, by PING."""

    def processes() -> dict[str, bool]:
        found = {proc.name: proc.alive for proc in stack.processes()}
        found.setdefault("redis", netcheck.redis_ping(stack.redis_port))
        return found

    return processes


def stack_targets(stack: Stack) -> Targets:
    inst = stack.instances[0]
    return Targets(
        dapr_url=inst.dapr_url,
        metrics_url=inst.metrics_url,
        redis_host=netcheck.LOOPBACK,
        redis_port=stack.redis_port,
        app_id=APP_ID,
        processes=stack_processes(stack),
    )


class LabConsole:
    """The console's state (fed by `sink`, a LineSink) and its server, started on demand."""

    def __init__(self, step: str, app_env: dict[str, str]) -> None:
        self.state = ConsoleState(step, step_settings(step, app_env))
        self.server: ConsoleServer | None = None

    def sink(self, process: str, line: str) -> None:
        self.state.feed(process, line)

    def serve(self, targets: Targets, port: int) -> str:
        """Start serving on loopback; returns the page's URL."""
        self.server = ConsoleServer(self.state, targets, port)
        self.server.start()
        return self.server.url

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


def tee(*sinks: Callable[[str, str], None]) -> Callable[[str, str], None]:
    """One LineSink that hands each line to every one of `sinks`."""

    def sink(process: str, line: str) -> None:
        for each in sinks:
            each(process, line)

    return sink


# ---- `daprlab console`: under Tilt -------------------------------------------------------------
@dataclass
class Probe:
    """A health check standing for one process the console cannot see directly."""

    name: str
    url: str | None = None
    redis_port: int | None = None

    def up(self) -> bool:
        if self.redis_port is not None:
            return netcheck.redis_ping(self.redis_port)
        assert self.url is not None
        status = netcheck.http_status(self.url)
        return status is not None and status < 300


def probed_processes(
    probes: list[Probe], followers: dict[str, ManagedProcess]
) -> Callable[[], dict[str, bool]]:
    """Health checks for the pods' processes, and whether each log follower still runs."""

    def processes() -> dict[str, bool]:
        found = {probe.name: probe.up() for probe in probes}
        found |= {f"{name} log": follower.alive for name, follower in followers.items()}
        return found

    return processes


def log_follower(spec: str, sink: Callable[[str, str], None]) -> ManagedProcess:
    """`NAME=COMMAND` (e.g. `app=kubectl logs -f deploy/chat-agent -c app`): its lines as NAME's."""
    name, sep, command = spec.partition("=")
    if not sep or not name or not command.strip():
        raise ValueError(f"--log wants NAME=COMMAND, got {spec!r}")
    return ManagedProcess(
        name,
        shlex.split(command),
        sink,
        start_fix="check that the command (kubectl?) is installed and on PATH",
    )


def cmd_console(args: argparse.Namespace, say: Callable[[str], None]) -> int:
    step_dir(args.step)  # fails early with the list of valid steps
    console = LabConsole(args.step, dict(args.setting))
    specs = [spec for spec in args.log]
    followers = {spec: log_follower(spec, console.sink) for spec in specs}
    by_name = {spec.partition("=")[0]: proc for spec, proc in followers.items()}
    probes = [
        Probe("app", url=f"{args.app_url}/healthz"),
        Probe("daprd", url=f"{args.dapr_url}/v1.0/healthz"),
        Probe("redis", redis_port=args.redis_port),
    ]
    targets = Targets(
        dapr_url=args.dapr_url,
        metrics_url=args.metrics_url or None,
        redis_host=netcheck.LOOPBACK,
        redis_port=args.redis_port,
        app_id=APP_ID,
        processes=probed_processes(probes, by_name),
    )
    try:
        for follower in followers.values():
            follower.start()
        say(f"console    {console.serve(targets, args.port)}")
        while True:
            # `kubectl logs -f` ends when its pod goes (a live update, a crash): follow again.
            ended = wait_for(
                lambda: next((s for s, f in followers.items() if not f.alive), None),
                float("inf"),
                "a log follower to end",
                FOLLOW_CHECK_SECONDS,
            )
            say(f"{ended.partition('=')[0]} log ended ({followers[ended].exit_reason()}): again")
            followers[ended] = log_follower(ended, console.sink)
            by_name[ended.partition("=")[0]] = followers[ended]
            followers[ended].start()
    finally:
        console.stop()
        for follower in followers.values():
            follower.stop()
