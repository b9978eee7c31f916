"""A small app guarded like a step's, for the plumbing tests: DaprActor's routes, one public
route that needs the sidecar, and a message model with a not-blank text field."""

from __future__ import annotations

from typing import Literal

from dapr.ext.fastapi import DaprActor
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field, field_validator

from lab_plumbing import Sidecar, guard

CALL_TIMEOUT_SECONDS = 7


class Note(BaseModel):
    role: Literal["user"] = "user"
    content: str = Field(min_length=1, max_length=40)

    @field_validator("content")
    @classmethod
    def not_blank(cls, content: str) -> str:
        if not content.strip():
            raise ValueError("content must not be blank")
        return content


def guarded_app() -> FastAPI:
    """An app with the plumbing installed and no lifespan: nothing registers with a sidecar."""
    sidecar = Sidecar(CALL_TIMEOUT_SECONDS)
    app = FastAPIOffline(title="guarded")
    DaprActor(app)
    guard(app, Note)

    @app.post("/chat/{actor_id}")
    async def chat(actor_id: str, note: Note) -> dict[str, str]:
        sidecar.proxy_factory()  # 503 until the actors are registered
        return {"actor_id": actor_id}

    return app
