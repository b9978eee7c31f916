"""`daprlab`: provision the Dapr runtime and run one step of the lab locally.

daprlab up 01_actor_timers     # Redis, placement, scheduler, daprd and the app, with logs
daprlab runtime                # find or build the pinned daprd/placement/scheduler
daprlab steps                  # list the steps
daprlab pins                   # print the pinned versions
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from daprlab import paths
from daprlab.runtime import RuntimeMissing, ensure_runtime
from daprlab.stack import (
    ControlPorts,
    InstancePorts,
    ManagedProcess,
    Stack,
    StackConfig,
    StackError,
)
from daprlab.versions import pins
from daprlab.wait import wait_for

NAME_WIDTH = 10
# How long `up` waits between checks that every process is still alive.
WATCH_INTERVAL_SECONDS = 0.2
EXIT_INTERRUPTED = 130

_print_lock = threading.Lock()


def say(line: str) -> None:
    with _print_lock:
        print(f"{'daprlab':<{NAME_WIDTH}}| {line}", flush=True)


def print_line(name: str, line: str) -> None:
    with _print_lock:
        print(f"{name:<{NAME_WIDTH}}| {line}", flush=True)


def cmd_runtime(_args: argparse.Namespace) -> int:
    runtime = ensure_runtime(say=say)
    say(f"Dapr {runtime.version}: {runtime.bin_dir}")
    return 0


def cmd_steps(_args: argparse.Namespace) -> int:
    for step in paths.steps():
        print(step)
    return 0


def cmd_pins(_args: argparse.Namespace) -> int:
    current = pins()
    print(f"dapr-runtime={current.dapr_runtime}\nredis={current.redis}\npython={current.python}")
    return 0


class Interrupted(Exception):
    """Ctrl-C or SIGTERM reached the runner."""


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


def cmd_up(args: argparse.Namespace) -> int:
    paths.step_dir(args.step)  # fails early with the list of valid steps
    runtime = ensure_runtime(say=say)
    config = StackConfig(
        step=args.step,
        state_dir=args.state_dir,
        control_ports=ControlPorts.free() if args.free_ports else ControlPorts.fixed(),
        instance_ports=[InstancePorts.free() if args.free_ports else InstancePorts.fixed()],
        reuse_redis=not args.free_ports,
    )
    stack = Stack(config, runtime, print_line)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        say(f"starting {args.step} with Dapr {runtime.version} ({runtime.bin_dir})")
        stack.start()
        say(f"ready: API docs   {stack.app_url}/docs")
        say(f"       sidecar    {stack.dapr_url}/v1.0/metadata")
        say(
            f"       try it     curl -X POST {stack.app_url}/chat/alice "
            "-H 'Content-Type: application/json' -d '{\"content\": \"hello\"}'"
        )
        say("press Ctrl-C to stop everything")
        dead: ManagedProcess = wait_for(
            stack.dead, float("inf"), "a process to exit", WATCH_INTERVAL_SECONDS
        )
        say(f"{dead.name} {dead.exit_reason()}; stopping the rest. Its last lines:")
        for line in list(dead.lines)[-10:]:
            print_line(dead.name, line)
        return 1
    except Interrupted as why:
        say(f"{why}: stopping")
        return EXIT_INTERRUPTED
    except StackError as err:
        say(f"error: {err}")
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stack.stop()
        say("stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="daprlab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run one step locally: Redis, Dapr and the app")
    up.add_argument("step", help="a step folder, e.g. 01_actor_timers")
    up.add_argument(
        "--free-ports",
        action="store_true",
        help="let the OS pick every port (and start a private Redis) instead of 8000, 3500, ...",
    )
    up.add_argument(
        "--state-dir",
        type=Path,
        default=paths.LOCAL_STATE_DIR,
        help="where Redis and the scheduler keep their data (default: .lab/ in the repo)",
    )
    up.set_defaults(func=cmd_up)
    sub.add_parser("runtime", help="find or build the pinned Dapr runtime").set_defaults(
        func=cmd_runtime
    )
    sub.add_parser("steps", help="list the steps").set_defaults(func=cmd_steps)
    sub.add_parser("pins", help="print the pinned versions").set_defaults(func=cmd_pins)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, RuntimeMissing) as err:
        say(f"error: {err}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
