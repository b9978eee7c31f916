"""The console's web server: the page, its push channel (server-sent events) and actor state.

Runs on loopback in a thread of the process that starts it (`daprlab up`, `daprlab console`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import uvicorn
from redis.exceptions import RedisError
from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from daprlab import netcheck
from daprlab.console.sources import Poller, Targets
from daprlab.console.state import ConsoleState
from daprlab.wait import wait_for

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
DEFAULT_PORT = 8089
# With nothing new, the stream still sends the summary this often: countdowns and "last read".
PUSH_IDLE_SECONDS = 1.0
# At most this many pushes a second to one page: a burst of log lines goes out as one update.
PUSH_MIN_GAP_SECONDS = 0.05
# The chart's points go out at most this often (each push carries the counts themselves).
SERIES_PUSH_SECONDS = 1.0
SERVER_START_TIMEOUT_SECONDS = 15
SHUTDOWN_GRACE_SECONDS = 2
# The same ids the app accepts (ACTOR_ID_PATTERN in each main.py).
ACTOR_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class Changes:
    """Wakes every open stream when the state changes (notify may be called from any thread).

    A stream takes `current()` before it reads the state, then waits on it: a change that
    comes in between sets that same event, so none is missed.
    """

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        self.closed = False  # the server is stopping: every stream ends

    def bind(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._event = asyncio.Event()

    def current(self) -> asyncio.Event:
        assert self._event is not None
        return self._event

    def _wake(self) -> None:
        assert self._event is not None
        self._event.set()
        self._event = asyncio.Event()

    def notify(self) -> None:
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._wake)

    def close(self) -> None:
        self.closed = True
        self.notify()


async def wait_or_timeout(event: asyncio.Event, timeout: float) -> None:
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except TimeoutError:
        return


def create_app(state: ConsoleState, targets: Targets, changes: Changes) -> Starlette:
    poller = Poller(state, targets)
    state.on_change(changes.notify)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        changes.bind()
        await poller.start()
        yield
        await poller.stop()

    async def index(_request: Request) -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    async def snapshot(_request: Request) -> JSONResponse:
        return JSONResponse(
            {**state.summary(), "actors": state.actors_since(0), "events": state.events_since(0)}
        )

    async def stream(request: Request) -> EventSourceResponse:
        async def messages() -> AsyncIterator[dict[str, str]]:
            seen_version, seen_seq, series_sent_at = 0, 0, -SERIES_PUSH_SECONDS
            while not changes.closed and not await request.is_disconnected():
                changed = changes.current()
                summary = state.summary()
                if time.monotonic() - series_sent_at < SERIES_PUSH_SECONDS:
                    del summary["series"]  # the page keeps the points it has
                else:
                    series_sent_at = time.monotonic()
                actors = state.actors_since(seen_version)
                events = state.events_since(seen_seq)
                seen_version = summary["version"]
                if events:
                    seen_seq = events[-1]["seq"]
                payload: dict[str, Any] = {"summary": summary, "actors": actors, "events": events}
                yield {"event": "update", "data": json.dumps(payload)}
                await wait_or_timeout(changed, PUSH_IDLE_SECONDS)
                await asyncio.sleep(PUSH_MIN_GAP_SECONDS)  # a rate limit, not a wait for a state

        return EventSourceResponse(messages())

    async def actor_state(request: Request) -> JSONResponse:
        actor_type, actor_id = request.path_params["actor_type"], request.path_params["actor_id"]
        if not (actor_type.isidentifier() and ACTOR_ID.fullmatch(actor_id)):
            return JSONResponse(
                {"error": "an actor type is a name; an actor id is letters, digits, - or _"},
                status_code=400,
            )
        try:
            found = await poller.actor_state(actor_type, actor_id)
        except (RedisError, OSError) as err:
            where = f"{targets.redis_host}:{targets.redis_port}"
            return JSONResponse(
                {"error": f"cannot read Redis at {where}: {err}; is Redis running?"},
                status_code=503,
            )
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            return JSONResponse(
                {"error": f"cannot read the reminders from daprd at {targets.dapr_url}: {err}"},
                status_code=503,
            )
        return JSONResponse(found)

    return Starlette(
        routes=[
            Route("/", index),
            Route("/api/snapshot", snapshot),
            Route("/api/stream", stream),
            Route("/api/actors/{actor_type}/{actor_id}", actor_state),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ],
        lifespan=lifespan,
    )


class ConsoleServer:
    """The console on http://127.0.0.1:<port>/, served from a background thread."""

    def __init__(self, state: ConsoleState, targets: Targets, port: int = DEFAULT_PORT) -> None:
        self.port = port
        self._changes = Changes()
        config = uvicorn.Config(
            create_app(state, targets, self._changes),
            host=netcheck.LOOPBACK,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="console", daemon=True)

    def _serve(self) -> None:
        try:
            self._server.run()
        except SystemExit:  # uvicorn's answer to a port it cannot bind; start() says so
            return

    @property
    def url(self) -> str:
        return f"http://{netcheck.LOOPBACK}:{self.port}/"

    def start(self) -> None:
        self._thread.start()
        wait_for(
            lambda: self._server.started or not self._thread.is_alive(),
            SERVER_START_TIMEOUT_SECONDS,
            f"the console on {self.url}",
        )
        if not self._server.started:
            raise OSError(
                f"cannot listen on {self.url}: is port {self.port} in use? "
                "(`--free-ports` picks a free one, `--no-console` leaves the console out)"
            )

    def stop(self) -> None:
        self._changes.close()  # open pages' streams end, so the server need not wait for them
        self._server.should_exit = True
        self._thread.join(timeout=SERVER_START_TIMEOUT_SECONDS)
