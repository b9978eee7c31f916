"""What stands between the app and its callers: the app token on daprd's routes, exact 422s for
bad input, /docs that list the lab's API only, and the actor's own check of what daprd hands it."""

from __future__ import annotations

import hmac
import json
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel

from lab_plumbing.idempotency import KEY_FIELD, key_of

logger = logging.getLogger(__name__)

# daprd sends APP_API_TOKEN in this header on every call to the app; `daprlab up` (a fresh token
# each run) and the Kubernetes Secret chat-agent-app-token give daprd and the app the same one.
APP_TOKEN_SETTING = "APP_API_TOKEN"
APP_TOKEN_HEADER = "dapr-api-token"
SDK_ROUTES_TAG = "Actor"  # DaprActor's tag on the routes it adds for daprd (and /healthz)
# A not-blank validator (str.strip() keeps a character) as a schema pattern. Listed as \uXXXX: a
# regex's \s differs between Python and JSON Schema (\x1f, \ufeff).
SPACES = "".join(f"\\u{c:04x}" for c in range(0x10000) if chr(c).isspace())
NOT_BLANK_PATTERN = f"[^{SPACES}]"


def accepted(model: type[BaseModel], payload: object, method: str) -> dict[str, Any]:
    """An actor method's input, held to the public API's rules whoever sent it: daprd's own actor
    API (PUT /v1.0/actors/...) skips the route's checks. An idempotency key comes along, checked
    like the header."""
    try:
        fields = model.model_validate(payload).model_dump()
        key = key_of(payload)
    except ValueError as err:  # a pydantic ValidationError too
        raise ValueError(f"{method} refused: {err}") from err
    return fields if key is None else {**fields, KEY_FIELD: key}


def sidecar_only(path: str) -> bool:
    """True for the routes daprd calls: the actor callbacks and the actor config (not /healthz)."""
    return path.startswith("/actors/") or path.rstrip("/") == "/dapr/config"


class JSONBody(Response):
    """JSON that escapes what UTF-8 cannot hold (a lone surrogate echoed from the input)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, separators=(",", ":"), default=str)
        return text.encode("utf-8", "backslashreplace")  # a lone surrogate: the escape \ud800


async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
    """A 422 that names each field, whatever the input held (a lone surrogate too)."""
    return JSONBody({"detail": exc.errors()}, status_code=422)


async def unreadable_body(request: Request, exc: Exception) -> Response:
    """FastAPI's 400 for a body it cannot decode (not UTF-8, too deep), as a 422 like the rest."""
    error = {"type": "json_invalid", "loc": ["body"], "msg": f"unreadable body: {exc.__cause__}"}
    return await invalid_request(request, RequestValidationError([error]))


def guard(app: FastAPI, message_model: type[BaseModel], text_field: str = "content") -> None:
    """Install on `app`: daprd's routes refuse callers without the app token, bad input gets a
    422 that says why, and /docs shows the lab's API (with `message_model.text_field` not blank)."""
    token = os.environ.get(APP_TOKEN_SETTING, "")
    if not token:
        logger.warning(
            "APP_API_TOKEN is not set: the actor callbacks (/actors/..., /dapr/config) answer "
            "anyone who reaches this port. `uv run daprlab up <step>` sets it for daprd and the app"
        )

    def has_app_token(request: Request) -> bool:
        given = request.headers.get(APP_TOKEN_HEADER, "").encode("latin-1")
        return hmac.compare_digest(given, token.encode())  # in constant time

    @app.middleware("http")
    async def refuse_callers_without_the_app_token(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        path = request.scope["path"]  # percent-decoded, as the routes see it
        if token and sidecar_only(path) and not has_app_token(request):
            detail = f"only the Dapr sidecar may call {path}: no valid {APP_TOKEN_HEADER} header"
            return JSONBody({"detail": detail}, status_code=401)
        return await call_next(request)

    def lab_openapi() -> dict[str, Any]:
        """The lab's API only: the SDK's routes stay served (daprd calls them) but out of /docs."""
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)  # FastAPI's own, which keeps it in app.openapi_schema
            schema["paths"] = {
                path: operations
                for path, operations in schema["paths"].items()
                if not any(SDK_ROUTES_TAG in op.get("tags", []) for op in operations.values())
            }
            model = schema["components"]["schemas"][message_model.__name__]
            model["properties"][text_field]["pattern"] = NOT_BLANK_PATTERN
        return app.openapi_schema

    app.openapi = lab_openapi  # type: ignore[method-assign]
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(400, unreadable_body)  # FastAPI's answer to an undecodable body
