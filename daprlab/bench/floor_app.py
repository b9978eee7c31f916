"""The benchmark's floor: the lab's chat route doing the same work straight on Redis, no Dapr.

Same route, body, validation and answer as the steps' `POST /chat/{actor_id}`, and the same
stored shape (a hash with `data` and `version`, as Dapr's Redis state store keeps it). Per
request: read the history, append the user's message and the reply, trim, write it back in one
MULTI/EXEC. `daprlab bench` serves it with the same uvicorn settings as a step's app.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Literal

import redis.asyncio as redis
from fastapi import FastAPI
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

REDIS_PORT_ENV = "FLOOR_REDIS_PORT"
KEY_PREFIX = "floor||ChatAgent"
# The steps' defaults: 10 user/assistant pairs, 4000 characters, the same id pattern.
HISTORY_MAX_MESSAGES = 20
CONTENT_MAX_LENGTH = 4000
ACTOR_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


class ChatMessage(BaseModel):
    role: Literal["user"] = "user"
    content: str = Field(min_length=1, max_length=CONTENT_MAX_LENGTH, pattern=r"\S")


class Message(BaseModel):
    role: Literal["user", "assistant"]
    content: str


class ChatReply(BaseModel):
    actor_id: str
    reply: Message


ActorIdParam = Annotated[str, PathParam(pattern=ACTOR_ID_PATTERN)]
store: dict[str, redis.Redis] = {}


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    store["redis"] = redis.Redis(host="127.0.0.1", port=int(os.environ[REDIS_PORT_ENV]))
    yield
    await store.pop("redis").aclose()


app = FastAPI(title="floor", lifespan=lifespan)


@app.post("/chat/{actor_id}", response_model=ChatReply)
async def chat(actor_id: ActorIdParam, message: ChatMessage) -> ChatReply:
    client = store["redis"]
    key = f"{KEY_PREFIX}||{actor_id}||history"
    stored = await client.hget(key, "data")
    history = json.loads(stored) if stored else []
    reply = {"role": "assistant", "content": f"You said: {message.content}"}
    history = [*history, message.model_dump(), reply][-HISTORY_MAX_MESSAGES:]
    async with client.pipeline(transaction=True) as pipe:
        pipe.hset(key, "data", json.dumps(history))
        pipe.hincrby(key, "version", 1)
        await pipe.execute()
    return ChatReply(actor_id=actor_id, reply=Message(**reply))
