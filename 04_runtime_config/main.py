# >>> feature: 04_runtime_config
"""Step 04 - runtime configuration: every actor runtime knob from the environment.

Run: `uv run daprlab up 04_runtime_config`, then open http://127.0.0.1:8000/docs
"""
# <<< feature

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta
from typing import Annotated, Any, Literal, TypeVar

import aiohttp
from dapr.actor import Actor, ActorId, ActorInterface, ActorProxy, ActorRuntime, actormethod
from dapr.actor.client.proxy import ActorFactoryBase
from dapr.actor.runtime.config import ActorRuntimeConfig
from dapr.actor.runtime.context import ActorRuntimeContext
from dapr.clients import DaprActorClientBase, DaprActorHttpClient, DaprInternalError
from dapr.clients.http.client import DaprHttpClient
from dapr.clients.http.conf import CONTENT_TYPE_HEADER, DAPR_API_TOKEN_HEADER
from dapr.conf import settings
from dapr.ext.fastapi import DaprActor
from dapr.serializers import DefaultJSONSerializer
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field, ValidationError, field_validator

# A step's own imports sit in its marked block below, apart from the sorted base imports.
# isort: split
# >>> feature: 04_runtime_config
from dapr.actor.runtime.config import ActorReentrancyConfig, ActorTypeConfig

# <<< feature


# ---- settings ---------------------------------------------------------------------------------
def env_int(name: str, default: int, minimum: int = 1) -> int:
    """A whole number from the environment; a bad value stops the app with a one-line reason."""
    raw = os.environ.get(name, str(default))
    if not raw.strip().isdecimal() or int(raw) < minimum:
        raise SystemExit(f"{name} must be a whole number of at least {minimum}, got {raw!r}")
    return int(raw)


ACTOR_TYPE = "ChatAgent"
HISTORY_KEY = "history"
# History keeps this many user/assistant pairs; older pairs are dropped whole.
HISTORY_MAX_PAIRS = env_int("HISTORY_MAX_PAIRS", 10)
CONTENT_MAX_LENGTH = 4000
ACTOR_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
# Whole seconds only: the SDK's duration encoder mishandles fractions of a second.
ACTOR_IDLE_TIMEOUT = timedelta(seconds=env_int("ACTOR_IDLE_TIMEOUT_SECONDS", 3600))
# How long an HTTP request waits for the actor before answering 504.
ACTOR_CALL_TIMEOUT_SECONDS = env_int("ACTOR_CALL_TIMEOUT_SECONDS", 30)


# >>> feature: 04_runtime_config
def env_flag(name: str, default: bool) -> bool:
    """A "true"/"false" switch from the environment; anything else stops the app with the reason."""
    raw = os.environ.get(name, str(default)).strip().lower()
    if raw not in ("true", "false"):
        raise SystemExit(f"{name} must be true or false, got {raw!r}")
    return raw == "true"


# Every other knob of the actor runtime, from the environment, with the runtime's defaults but one.
ACTOR_SCAN_INTERVAL = timedelta(seconds=env_int("ACTOR_SCAN_INTERVAL_SECONDS", 30))
DRAIN_ONGOING_CALL_TIMEOUT = timedelta(seconds=env_int("DRAIN_ONGOING_CALL_TIMEOUT_SECONDS", 20))
DRAIN_REBALANCED_ACTORS = env_flag("DRAIN_REBALANCED_ACTORS", True)
REENTRANCY_ENABLED = env_flag("REENTRANCY_ENABLED", False)
REENTRANCY_MAX_STACK_DEPTH = env_int("REENTRANCY_MAX_STACK_DEPTH", 32)
REMINDERS_STORAGE_PARTITIONS = env_int("REMINDERS_STORAGE_PARTITIONS", 0, minimum=0)
# A second actor type with settings of its own (entitiesConfig), to compare with ChatAgent.
QUICK_ACTOR_TYPE = "QuickChatAgent"
QUICK_IDLE_TIMEOUT = timedelta(seconds=env_int("QUICK_IDLE_TIMEOUT_SECONDS", 10))
# <<< feature


# ---- models -----------------------------------------------------------------------------------
class ChatMessage(BaseModel):
    role: Literal["user"] = "user"
    content: str = Field(min_length=1, max_length=CONTENT_MAX_LENGTH)

    @field_validator("content")
    @classmethod
    def not_blank(cls, content: str) -> str:
        if not content.strip():
            raise ValueError("content must not be blank")
        return content  # kept exactly as written: no stripping, no parsing


class Message(BaseModel):
    role: Literal["user", "assistant"]
    content: str


class ChatReply(BaseModel):
    actor_id: str
    reply: Message


class History(BaseModel):
    actor_id: str
    messages: list[Message]


# ---- interface and actor ----------------------------------------------------------------------
class ChatAgentInterface(ActorInterface):
    @actormethod(name="ProcessMessage")
    async def process_message(self, message: dict) -> dict: ...

    @actormethod(name="GetConversationHistory")
    async def get_conversation_history(self) -> list: ...


class ChatAgent(
    Actor,
    ChatAgentInterface,
):
    """One conversation per actor id; the history lives in the actor state store."""

    @property
    def actor_type(self) -> str:
        return self.runtime_ctx.actor_type_info.type_name

    async def _on_activate(self) -> None:
        logger.info("%s %s activated", self.actor_type, self.id.id)

    async def _on_deactivate(self) -> None:
        logger.info("%s %s deactivated", self.actor_type, self.id.id)

    async def process_message(self, message: dict) -> dict:
        message = accepted_message(message)  # daprd's own actor API skips the route's checks
        history = await self.get_conversation_history()
        reply = {"role": "assistant", "content": compose_reply(message["content"])}
        history = trim_history(
            [*history, {"role": message["role"], "content": message["content"]}, reply]
        )
        await self._state_manager.set_state(HISTORY_KEY, history)
        with state_store_errors():
            await self._state_manager.save_state()
        logger.info("%s %s recorded message %d", self.actor_type, self.id.id, len(history) - 1)
        return reply

    async def get_conversation_history(self) -> list:
        with state_store_errors():
            found, history = await self._state_manager.try_get_state(HISTORY_KEY)
        return list(history) if found else []


# >>> feature: 04_runtime_config
class QuickChatAgent(ChatAgent):
    """The same agent under its own actor type, so entitiesConfig can give it its own settings."""


# <<< feature


# ---- runtime config ---------------------------------------------------------------------------
RUNTIME_CONFIG = ActorRuntimeConfig(
    actor_idle_timeout=ACTOR_IDLE_TIMEOUT,
    # >>> feature: 04_runtime_config
    actor_scan_interval=ACTOR_SCAN_INTERVAL,
    # 20 s by default, not the runtime's 60 s: from Dapr 1.17.7 on, 30 s or more is cut to 24 s.
    drain_ongoing_call_timeout=DRAIN_ONGOING_CALL_TIMEOUT,
    drain_rebalanced_actors=DRAIN_REBALANCED_ACTORS,
    reentrancy=ActorReentrancyConfig(
        enabled=REENTRANCY_ENABLED, maxStackDepth=REENTRANCY_MAX_STACK_DEPTH
    ),
    reminders_storage_partitions=REMINDERS_STORAGE_PARTITIONS,
    actor_type_configs=[
        # An entry does not inherit the global values: each one left out gets the runtime default.
        # Reentrancy and reminder partitions are left out on purpose: the tests show they stay off.
        ActorTypeConfig(
            QUICK_ACTOR_TYPE,
            actor_idle_timeout=QUICK_IDLE_TIMEOUT,
            drain_ongoing_call_timeout=DRAIN_ONGOING_CALL_TIMEOUT,
            drain_rebalanced_actors=DRAIN_REBALANCED_ACTORS,
        )
    ],
    # <<< feature
)


# ---- app and routes ---------------------------------------------------------------------------
@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    ActorRuntime.set_actor_config(RUNTIME_CONFIG)
    # daprd asks GET /dapr/config once, maybe before registration: advertise the types already.
    RUNTIME_CONFIG.update_entities([ACTOR_TYPE])
    async with sidecar_connections():  # one keep-alive pool for every call to daprd
        if await sidecar_ready():
            await register_actors()
            yield
        else:
            waiting = asyncio.create_task(register_when_sidecar_is_up())
            yield
            waiting.cancel()


app = FastAPIOffline(title="ChatAgent", lifespan=lifespan)  # /docs served by the app itself
dapr_actor = DaprActor(app)
# The actor id in a route's path, checked before any actor is called.
ActorIdParam = Annotated[
    str, PathParam(pattern=ACTOR_ID_PATTERN, description="letters, digits, - or _")
]


@app.post("/chat/{actor_id}", response_model=ChatReply)
async def chat(actor_id: ActorIdParam, message: ChatMessage) -> ChatReply:
    agent = chat_agent_proxy(actor_id)
    reply = await call_actor(agent, agent.ProcessMessage(message.model_dump()))
    return ChatReply(actor_id=actor_id, reply=Message(**reply))


@app.get("/chat/{actor_id}/history", response_model=History)
async def history(actor_id: ActorIdParam) -> History:
    agent = chat_agent_proxy(actor_id)
    messages = await call_actor(agent, agent.GetConversationHistory())
    return History(actor_id=actor_id, messages=[Message(**m) for m in messages])


# >>> feature: 04_runtime_config
def quick_chat_agent_proxy(actor_id: str) -> ActorProxy:
    return ActorProxy.create(
        QUICK_ACTOR_TYPE, ActorId(actor_id), ChatAgentInterface, proxy_factory()
    )


@app.post("/quick-chat/{actor_id}", response_model=ChatReply)
async def quick_chat(actor_id: ActorIdParam, message: ChatMessage) -> ChatReply:
    agent = quick_chat_agent_proxy(actor_id)
    reply = await call_actor(agent, agent.ProcessMessage(message.model_dump()))
    return ChatReply(actor_id=actor_id, reply=Message(**reply))


@app.get("/quick-chat/{actor_id}/history", response_model=History)
async def quick_history(actor_id: ActorIdParam) -> History:
    agent = quick_chat_agent_proxy(actor_id)
    messages = await call_actor(agent, agent.GetConversationHistory())
    return History(actor_id=actor_id, messages=[Message(**m) for m in messages])


@app.get("/runtime/actors")
async def active_actors() -> dict[str, int]:
    """Active actors per type, as the sidecar counts them (GET /v1.0/metadata)."""
    try:
        async with aiohttp.ClientSession() as session:
            timeout = aiohttp.ClientTimeout(total=SIDECAR_CHECK_TIMEOUT_SECONDS)
            async with session.get(f"{SIDECAR_URL}/v1.0/metadata", timeout=timeout) as resp:
                resp.raise_for_status()  # an error page must not read as "no active actors"
                metadata = await resp.json()
    except TimeoutError as err:
        reason = f"no answer within {SIDECAR_CHECK_TIMEOUT_SECONDS}s"
        raise HTTPException(503, sidecar_metadata_problem(reason)) from err
    except (aiohttp.ClientError, ValueError) as err:
        raise HTTPException(503, sidecar_metadata_problem(str(err))) from err
    counts = {actor_type: 0 for actor_type in (ACTOR_TYPE, QUICK_ACTOR_TYPE)}
    for entry in metadata.get("actorRuntime", {}).get("activeActors", []):
        counts[entry["type"]] = int(entry.get("count", 0))  # a zero count is left out
    return counts


def sidecar_metadata_problem(reason: str) -> str:
    """The 503 detail of /runtime/actors: what went wrong and how to fix it."""
    return (
        f"cannot read the Dapr sidecar's metadata at {SIDECAR_URL}/v1.0/metadata ({reason}): "
        "is daprd running? `uv run daprlab up 04_runtime_config` starts it with the app"
    )


# <<< feature


# ======= Not the lesson: below, the same plumbing in every step (a step's own lines marked) =======
logging.basicConfig(
    level=os.environ.get("LOG_LEVEL", "INFO").upper(), format="%(levelname)s:     %(message)s"
)
logger = logging.getLogger("chat_agent")


def compose_reply(content: str) -> str:
    """The assistant's answer: a deterministic echo. Plug a model in here."""
    return f"You said: {content}"


def trim_history(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """Keep the newest HISTORY_MAX_PAIRS user/assistant pairs; never split a pair."""
    return messages[-2 * HISTORY_MAX_PAIRS :]


# ---- errors: each way an actor call fails, as a clear HTTP error -------------------------------
T = TypeVar("T")
ACTOR_ERROR_WRAPPING = "error from actor service: "  # daprd's prefix to a failed method's body


def unwrap_actor_error(err: DaprInternalError) -> tuple[str, str]:
    """(errorCode, message) of a failed actor or state call, without daprd's wrapping around it."""
    details = err.as_dict()
    message, code = details["message"] or "", details["errorCode"]
    _, wrapped, body = message.partition(ACTOR_ERROR_WRAPPING)
    if wrapped:
        if body.startswith("("):  # from Dapr 1.15 on, the app's HTTP status first: "(500) {...}"
            body = body.partition(") ")[2]
        try:
            inner = json.loads(body)
            message, code = inner["message"], inner["errorCode"]
        except (ValueError, KeyError, TypeError):
            pass  # not an error our actors sent: keep daprd's message as it is
    return code, message


@contextmanager
def state_store_errors() -> Iterator[None]:
    """Raise a failed state operation anew: the SDK cannot encode the raw bytes `err` carries (it
    would answer a bare "Internal Server Error"); still a DaprInternalError, so it drops changes."""
    try:
        yield
    except DaprInternalError as err:
        code, message = unwrap_actor_error(err)
        raise DaprInternalError(f"the actor state store failed: {message}", code) from err


def error_answer(status: int, detail: str) -> HTTPException:
    """The HTTP error a route answers, logged too: the access log is off by default."""
    logger.warning("answered %d: %s", status, detail)
    return HTTPException(status, detail)


async def call_actor(agent: ActorProxy, call: Awaitable[T]) -> T:
    """Await one call on `agent` and turn each way it can fail into a clear HTTP error."""
    who = f"{agent.actor_type} {agent.actor_id}"
    try:
        return await call
    except aiohttp.ClientConnectionError as err:
        raise error_answer(
            503,
            f"Dapr sidecar not reachable at {SIDECAR_URL} ({err}): is daprd running? "
            "`uv run daprlab up <step>` starts it with the app",
        ) from err
    except TimeoutError as err:
        waited = f"{who} did not answer within {ACTOR_CALL_TIMEOUT_SECONDS}s"
        status = await placement_status()
        if status != "placement: connected":
            # Without placement, daprd holds actor calls until it is back.
            raise error_answer(
                503, f"{waited}: the sidecar reports '{status}': is the placement service running?"
            ) from err
        raise error_answer(504, waited) from err
    except DaprInternalError as err:
        code, message = unwrap_actor_error(err)
        if "did not find address for actor" in message:
            raise error_answer(
                503,
                f"no host for {who}: is the placement service running and "
                f"the actor state store configured? ({message})",
            ) from err
        raise error_answer(500, f"{who} failed: {code}: {message}") from err


SIDECAR_URL = f"http://{settings.DAPR_RUNTIME_HOST}:{settings.DAPR_HTTP_PORT}"
SIDECAR_CHECK_TIMEOUT_SECONDS = 1


async def sidecar_ready() -> bool:
    """True once daprd answers; the SDK's own wait would block the event loop instead."""
    try:
        async with aiohttp.ClientSession() as session:
            timeout = aiohttp.ClientTimeout(total=SIDECAR_CHECK_TIMEOUT_SECONDS)
            async with session.get(f"{SIDECAR_URL}/v1.0/healthz/outbound", timeout=timeout) as resp:
                return resp.status < 300
    except (aiohttp.ClientError, TimeoutError):
        return False


async def placement_status() -> str:
    """The sidecar's word on its placement connection ("placement: connected" when all is well)."""
    try:
        async with aiohttp.ClientSession() as session:
            timeout = aiohttp.ClientTimeout(total=SIDECAR_CHECK_TIMEOUT_SECONDS)
            async with session.get(f"{SIDECAR_URL}/v1.0/metadata", timeout=timeout) as resp:
                metadata = await resp.json()
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return "no answer from the sidecar"
    return str(metadata.get("actorRuntime", {}).get("placement", "unknown"))


# ---- one pool of keep-alive connections to the sidecar -----------------------------------------
# The SDK opens a new aiohttp session, so a new TCP connection, for each call to daprd; these send
# every call the app makes (actor proxies, actor state, timers, reminders) through one session.
sidecar_session: dict[str, aiohttp.ClientSession] = {}


@asynccontextmanager
async def sidecar_connections() -> AsyncIterator[None]:
    """The shared session, open while the app runs. A connection daprd closed (a sidecar
    restart) leaves the pool by itself; the next call opens a new one."""
    sidecar_session["current"] = aiohttp.ClientSession()
    try:
        yield
    finally:
        await sidecar_session.pop("current").close()


class SharedSessionHttpClient(DaprHttpClient):
    """The SDK's HTTP client to daprd, sending through the shared session."""

    def __init__(self, message_serializer: Any, timeout_seconds: int) -> None:
        super().__init__(message_serializer, timeout=timeout_seconds)
        self.timeout_seconds = timeout_seconds

    async def send_bytes(
        self,
        method: str,
        url: str,
        data: bytes | None,
        headers: dict[str, bytes | str] | None = None,
        query_params: Mapping | None = None,
        timeout: int | None = None,
    ) -> tuple[bytes, aiohttp.ClientResponse]:
        sent = {CONTENT_TYPE_HEADER: "application/json", **(headers or {})}
        if settings.DAPR_API_TOKEN is not None:
            sent[DAPR_API_TOKEN_HEADER] = settings.DAPR_API_TOKEN
        request = {
            "method": method,
            "url": url,
            "data": data,
            "headers": sent,
            "sslcontext": self.get_ssl_context(),
            "params": query_params,
            "timeout": aiohttp.ClientTimeout(total=timeout or self.timeout_seconds),
        }
        resp = await self.retry_policy.make_http_call(sidecar_session["current"], request)
        if 200 <= resp.status < 300:
            return await resp.read(), resp
        raise await self.convert_to_error(resp)


class SharedSessionActorClient(DaprActorHttpClient):
    """The SDK's actor client, its calls through the shared session.

    The one override of SDK internals: DaprActorHttpClient keeps its HTTP client in `_client`
    and takes no other (dapr 1.14); tests/test_shared_session.py fails if that changes.
    """

    def __init__(self, message_serializer: Any, timeout_seconds: int) -> None:
        super().__init__(message_serializer, timeout=timeout_seconds)
        self._client = SharedSessionHttpClient(message_serializer, timeout_seconds)


class SharedSessionProxyFactory(ActorFactoryBase):
    """ActorProxy.create's `actor_proxy_factory`: proxies that call through one client."""

    def __init__(self, message_serializer: Any, timeout_seconds: int) -> None:
        self.client = SharedSessionActorClient(message_serializer, timeout_seconds)
        self.message_serializer = message_serializer

    def create(
        self,
        actor_type: str,
        actor_id: ActorId,
        actor_interface: type[ActorInterface] | None = None,
    ) -> ActorProxy:
        return ActorProxy(
            self.client, actor_type, actor_id, actor_interface, self.message_serializer
        )


def shared_session_actors(
    client: DaprActorClientBase,
) -> Callable[[ActorRuntimeContext, ActorId], Actor]:
    """register_actor's `actor_factory`: each actor's state, timers and reminders use `client`."""
    contexts: dict[str, ActorRuntimeContext] = {}

    def create(ctx: ActorRuntimeContext, actor_id: ActorId) -> Actor:
        info = ctx.actor_type_info
        if info.type_name not in contexts:
            contexts[info.type_name] = ActorRuntimeContext(
                info, ctx.message_serializer, ctx.state_serializer, client
            )
        return info.implementation_type(contexts[info.type_name], actor_id)

    return create


# ---- registration: host the actors once the sidecar answers ------------------------------------
class ExactJSONSerializer(DefaultJSONSerializer):
    """Decodes JSON as plain JSON: the SDK's default decoder turns text that looks like a duration
    ("5s") or a date into timedelta/datetime objects (or fails on it); a chat keeps the text."""

    def deserialize(
        self,
        data: bytes,
        data_type: type | None = object,
        custom_hook: Callable[[Any], Any] | None = None,
    ) -> Any:
        obj = json.loads(data)
        return custom_hook(obj) if callable(custom_hook) else obj


SERIALIZER = ExactJSONSerializer()
# Made at registration: the SDK's HTTP client blocks until the sidecar answers.
proxy_factories: dict[str, SharedSessionProxyFactory] = {}
actors_registered = asyncio.Event()


def proxy_factory() -> SharedSessionProxyFactory:
    """Where actor proxies come from; 503 with the fix until the actors are registered."""
    if not actors_registered.is_set():
        raise error_answer(
            503,
            f"no Dapr sidecar at {SIDECAR_URL}: start the app with its sidecar "
            "(`uv run daprlab up <step>`)",
        )
    return proxy_factories["default"]


def chat_agent_proxy(actor_id: str) -> ActorProxy:
    return ActorProxy.create(ACTOR_TYPE, ActorId(actor_id), ChatAgentInterface, proxy_factory())


async def register_actors() -> None:
    actors = shared_session_actors(
        SharedSessionActorClient(SERIALIZER, settings.DAPR_HTTP_TIMEOUT_SECONDS)
    )
    await dapr_actor.register_actor(
        ChatAgent,
        message_serializer=SERIALIZER,
        state_serializer=SERIALIZER,
        actor_factory=actors,
    )
    proxy_factories["default"] = SharedSessionProxyFactory(SERIALIZER, ACTOR_CALL_TIMEOUT_SECONDS)
    logger.info("%s registered; sidecar at %s", ACTOR_TYPE, SIDECAR_URL)
    # >>> feature: 04_runtime_config
    await dapr_actor.register_actor(
        QuickChatAgent,
        message_serializer=SERIALIZER,
        state_serializer=SERIALIZER,
        actor_factory=actors,
    )
    # <<< feature
    actors_registered.set()


async def register_when_sidecar_is_up() -> None:
    logger.warning(
        "no Dapr sidecar at %s yet: /chat answers 503 until one is up. "
        "Start the app with its sidecar: `uv run daprlab up <step>`",
        SIDECAR_URL,
    )
    while not await sidecar_ready():
        await asyncio.sleep(SIDECAR_CHECK_TIMEOUT_SECONDS)
    await register_actors()


# ---- the sidecar's routes: only daprd may call them, and /docs leaves them out ---------------
# daprd sends APP_API_TOKEN in this header on every call to the app; `daprlab up` (a fresh token
# each run) and the Kubernetes Secret chat-agent-app-token give daprd and the app the same one.
APP_API_TOKEN = os.environ.get("APP_API_TOKEN", "")
APP_TOKEN_HEADER = "dapr-api-token"
SDK_ROUTES_TAG = "Actor"  # DaprActor's tag on the routes it adds for daprd (and /healthz)
# ChatMessage.not_blank() as a schema pattern: a character that str.strip() would keep. Listed
# as \uXXXX: a regex's \s differs between Python and JSON Schema (\x1f, \ufeff).
SPACES = "".join(f"\\u{c:04x}" for c in range(0x10000) if chr(c).isspace())
NOT_BLANK_PATTERN = f"[^{SPACES}]"


def accepted_message(message: object) -> dict[str, str]:
    """ProcessMessage's input, held to the public API's rules whoever sent it."""
    try:
        return ChatMessage.model_validate(message).model_dump()
    except ValidationError as err:
        raise ValueError(f"ProcessMessage refused: {err}") from err


def sidecar_only(path: str) -> bool:
    """The routes daprd calls: the actor callbacks and the actor config (not /healthz)."""
    return path.startswith("/actors/") or path.rstrip("/") == "/dapr/config"


class JSONBody(Response):
    """JSON that escapes what UTF-8 cannot hold (a lone surrogate echoed from the input)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, separators=(",", ":"), default=str)
        return text.encode("utf-8", "backslashreplace")  # a lone surrogate: the escape \ud800


def has_app_token(request: Request) -> bool:
    given = request.headers.get(APP_TOKEN_HEADER, "").encode("latin-1")
    return hmac.compare_digest(given, APP_API_TOKEN.encode())  # in constant time


@app.middleware("http")
async def refuse_callers_without_the_app_token(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    path = request.scope["path"]  # percent-decoded, as the routes see it
    if APP_API_TOKEN and sidecar_only(path) and not has_app_token(request):
        detail = f"only the Dapr sidecar may call {path}: no valid {APP_TOKEN_HEADER} header"
        return JSONBody({"detail": detail}, status_code=401)
    return await call_next(request)


if not APP_API_TOKEN:
    logger.warning(
        "APP_API_TOKEN is not set: the actor callbacks (/actors/..., /dapr/config) answer anyone "
        "who reaches this port. `uv run daprlab up <step>` sets it for daprd and the app"
    )


def lab_openapi() -> dict[str, Any]:
    """The lab's API only: the SDK's routes stay served (daprd calls them) but out of /docs."""
    if app.openapi_schema is None:
        schema = FastAPI.openapi(app)  # FastAPI's own, which keeps it in app.openapi_schema
        schema["paths"] = {
            path: operations
            for path, operations in schema["paths"].items()
            if not any(SDK_ROUTES_TAG in op.get("tags", []) for op in operations.values())
        }
        content = schema["components"]["schemas"]["ChatMessage"]["properties"]["content"]
        content["pattern"] = NOT_BLANK_PATTERN
    return app.openapi_schema


app.openapi = lab_openapi


# ---- bad input that FastAPI would answer with a 500, or a 400 that names no field --------------
@app.exception_handler(RequestValidationError)
async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
    return JSONBody({"detail": exc.errors()}, status_code=422)


@app.exception_handler(400)  # FastAPI's answer to a body it cannot decode (not UTF-8, too deep)
async def unreadable_body(request: Request, exc: Exception) -> Response:
    error = {"type": "json_invalid", "loc": ["body"], "msg": f"unreadable body: {exc.__cause__}"}
    return await invalid_request(request, RequestValidationError([error]))
