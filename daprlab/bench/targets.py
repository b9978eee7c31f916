"""What the bench drives: step stacks as `daprlab up` runs them (free ports, a private Redis
each), the floor app (daprlab/bench/floor_app.py), and HTTP fan-out to them for pre-fill,
activation and timers."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp

from daprlab import netcheck
from daprlab.bench.wrk_driver import Target
from daprlab.netcheck import LOOPBACK
from daprlab.paths import REPO_ROOT
from daprlab.runtime import Runtime
from daprlab.stack import redis_persistence
from daprlab.stack.command_lines import LOG_LEVEL_ENV, uvicorn_argv
from daprlab.stack.ports import ControlPorts, InstancePorts
from daprlab.stack.process import ManagedProcess, StackError
from daprlab.stack.stack import Stack, StackConfig
from daprlab.wait import wait_for

FLOOR_APP = "daprlab.bench.floor_app:app"
BODY = b'{"content":"hi"}'
HTTP_TIMEOUT_SECONDS = 30
START_TIMEOUT_SECONDS = 60


async def _post_all(urls: list[str], concurrency: int) -> list[tuple[float, float, int]]:
    """POST the chat body to every url, `concurrency` at a time; (sent, answered, status) each."""
    results: list[tuple[float, float, int]] = [(0.0, 0.0, 0)] * len(urls)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(len(urls)):
        queue.put_nowait(index)
    timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_SECONDS)
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(timeout=timeout, headers=headers) as session:

        async def worker() -> None:
            while not queue.empty():
                index = queue.get_nowait()
                sent = time.time()
                async with session.post(urls[index], data=BODY) as resp:
                    await resp.read()
                    results[index] = (sent, time.time(), resp.status)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


def post_all(urls: list[str], concurrency: int = 16) -> list[tuple[float, float, int]]:
    try:
        results = asyncio.run(_post_all(urls, concurrency))
    except (aiohttp.ClientError, TimeoutError) as err:
        raise StackError(f"a chat to {urls[0].rsplit('/', 1)[0]}/... failed: {err!r}") from err
    failed = [(url, r[2]) for url, r in zip(urls, results, strict=True) if r[2] != 200]
    if failed:
        raise StackError(f"{len(failed)} of {len(urls)} chats failed, e.g. {failed[0]}")
    return results


def discard(_process: str, _line: str) -> None:
    """The chat stack's lines: kept by each process (for errors), not printed."""


def new_stack(
    step: str, runtime: Runtime, scratch: Path, name: str, sink: Callable[[str, str], None],
    app_env: dict[str, str] | None = None, persistence: str = redis_persistence.DEFAULT,
) -> Stack:  # fmt: skip
    config = StackConfig(
        step=step,
        state_dir=scratch / name,
        control_ports=ControlPorts.free(),
        instance_ports=[InstancePorts.free()],
        app_env=dict(app_env or {}),
        redis_persistence=persistence,
    )
    return Stack(config, runtime, sink)


def pids_of(stack: Stack) -> dict[str, int]:
    inst = stack.instances[0]
    assert inst.app and inst.daprd and inst.app.pid and inst.daprd.pid
    redis = stack.control["redis"].pid
    assert redis is not None
    return {"app": inst.app.pid, "daprd": inst.daprd.pid, "redis": redis}


def start_floor(redis_port: int, redis_pid: int) -> tuple[ManagedProcess, Target]:
    port = netcheck.free_port()
    argv = uvicorn_argv(FLOOR_APP, REPO_ROOT, port, os.environ.get(LOG_LEVEL_ENV, ""))
    floor = ManagedProcess("floor", argv, discard, env={"FLOOR_REDIS_PORT": str(redis_port)})
    floor.start()
    url = f"http://{LOOPBACK}:{port}"

    def up() -> bool:
        if not floor.alive:
            tail = "\n".join(list(floor.lines)[-15:])
            raise StackError(f"the floor app {floor.exit_reason()}:\n{tail}")
        return netcheck.http_status(f"{url}/openapi.json") == 200

    wait_for(up, START_TIMEOUT_SECONDS, "the floor app")
    assert floor.pid is not None
    return floor, Target("floor", url, "pool", {"app": floor.pid, "redis": redis_pid})


def prefill(target: Target, pool: int, messages: int) -> None:
    """Every pool id gets its history to the state the measured chats see."""
    urls = [f"{target.url}p{i}" for i in range(pool)] * messages
    post_all(urls)


@contextmanager
def stacks_started(stacks: list[Stack]) -> Iterator[None]:
    """Start the stacks one after the other; stop every one of them at the end, whatever happens.

    From this thread: a child dies with the thread that started it
    (daprlab/stack/parent_death.py), so a pool's short-lived threads would take the stacks down
    with them."""
    try:
        for stack in stacks:
            stack.start()
        yield
    finally:
        for stack in stacks:
            stack.stop()
