"""The console's reads: daprd's metadata and Prometheus metrics, Redis, and the processes.

Each poll writes into ConsoleState; a failed read says which part failed and keeps the last
values (the page greys them), and the next read that works clears it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from daprlab import releases
from daprlab.console.state import ConsoleState

logger = logging.getLogger(__name__)

METADATA_INTERVAL_SECONDS = 0.5
METRICS_INTERVAL_SECONDS = 1.0
REDIS_INTERVAL_SECONDS = 1.0
PROCESS_INTERVAL_SECONDS = 0.5
READ_TIMEOUT_SECONDS = 1.0
# The actor types the console always looks for, besides those the sidecar reports.
KNOWN_ACTOR_TYPES = ("ChatAgent",)
# Dapr 1.14 keeps an actor type's reminders in one state-store hash (partitions 0); from 1.15 on
# the Scheduler keeps them, and the console asks daprd for these (daprlab.releases).
REMINDERS_KEY = "actors||{actor_type}"
REMINDER_URL = "{dapr_url}/v1.0/actors/{actor_type}/{actor_id}/reminders/{name}"
# The reminders the steps register (step 02's expiry), which the console asks daprd about.
KNOWN_REMINDERS = ("clear-history",)
IN_THE_SCHEDULER = "the Scheduler (read through daprd's reminder GET)"
STATE_KEY = "{app_id}||{actor_type}||{actor_id}||{key}"
STATE_KEYS = ("history", "history_expires_at")
ACTOR_METRIC_PREFIX = "dapr_runtime_actor_"
PROM_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][\w:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)")
PROM_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
PENDING_CALLS = "pending_actor_calls"
# What the console calls pending_actor_calls where it counts the calls waiting now (1.15 on).
WAITING_CALLS_LABEL = "calls waiting for the actor lock"
# A sample with success="false" (timers_fired_total, reminders_fired_total) is shown apart.
FAILED_SUFFIX = " failed"


@dataclass
class Targets:
    """Where the console reads from; the same for the local runner and for Tilt's port-forwards."""

    dapr_url: str
    metrics_url: str | None
    redis_host: str
    redis_port: int
    app_id: str
    # Which processes are up: the runner knows its children; under Tilt, health checks answer.
    processes: Callable[[], dict[str, bool]]


def parse_time(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def reminder_due_at(record: dict[str, Any]) -> float | None:
    """When a reminder daprd stored fires next: 1.14 keeps that time as `registeredTime`
    (moved on after each fire, RFC 3339, whole seconds)."""
    return parse_time(str(record.get("registeredTime", "")))


def reminders_of(raw: bytes | None) -> list[dict[str, Any]]:
    """The reminder records in the `data` field of `actors||<type>` (a JSON list, maybe empty)."""
    if not raw:
        return []
    records = json.loads(raw)
    return [r for r in records if isinstance(r, dict)] if isinstance(records, list) else []


def metric_label(name: str, labels: dict[str, str], rel: releases.Release | None) -> str | None:
    """The label the console shows for one of daprd's actor metrics, or None to leave it out.

    pending_actor_calls on 1.14 counts recordings (two per call, never going down), not the calls
    waiting: left out there, and when the release is not known yet (daprlab.releases). Failed
    fires (success="false") are counted apart from the ones that worked.
    """
    if name == PENDING_CALLS:
        if rel is None or rel.pending_actor_calls is not releases.PendingCalls.WAITING:
            return None
        return WAITING_CALLS_LABEL
    if labels.get("success") == "false":
        return f"{name}{FAILED_SUFFIX}"
    return name


def parse_metrics(text: str, rel: releases.Release | None = None) -> dict[str, dict[str, float]]:
    """daprd's actor metrics per actor type: {type: {label: sum over other labels}}, labelled
    for what they count on the running release (metric_label)."""
    by_type: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        if not line.startswith(ACTOR_METRIC_PREFIX):
            continue
        found = PROM_SAMPLE.match(line)
        if found is None:
            continue
        labels = dict(PROM_LABEL.findall(found["labels"] or ""))
        actor_type = labels.get("actor_type")
        name = found["name"].removeprefix(ACTOR_METRIC_PREFIX)
        if not actor_type or name.endswith(("_bucket", "_sum")):
            continue
        label = metric_label(name, labels, rel)
        if label is None:
            continue
        try:
            value = float(found["value"])
        except ValueError:
            continue
        metrics = by_type.setdefault(actor_type, {})
        metrics[label] = metrics.get(label, 0.0) + value
    return by_type


def release_of(version: str) -> releases.Release | None:
    """The running daprd's row in daprlab.releases, once the metadata named its version."""
    return releases.of(version) if releases.is_supported(version) else None


def describe(err: BaseException) -> str:
    return str(err) or type(err).__name__


class Poller:
    """Runs every read on its own interval until stopped."""

    def __init__(self, state: ConsoleState, targets: Targets) -> None:
        self.state = state
        self.targets = targets
        self.redis = aioredis.Redis(
            host=targets.redis_host,
            port=targets.redis_port,
            socket_timeout=READ_TIMEOUT_SECONDS,
            socket_connect_timeout=READ_TIMEOUT_SECONDS,
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=READ_TIMEOUT_SECONDS)
        )
        reads = [
            (self.read_metadata, METADATA_INTERVAL_SECONDS),
            (self.read_redis, REDIS_INTERVAL_SECONDS),
            (self.read_processes, PROCESS_INTERVAL_SECONDS),
        ]
        if self.targets.metrics_url:
            reads.append((self.read_metrics, METRICS_INTERVAL_SECONDS))
        self._tasks = [asyncio.create_task(self._every(r, s)) for r, s in reads]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()
        await self.redis.aclose()

    async def _every(self, read: Callable[[], Any], seconds: float) -> None:
        while True:
            await read()
            await asyncio.sleep(seconds)

    async def _get(self, url: str) -> str:
        assert self._http is not None
        async with self._http.get(url) as resp:
            resp.raise_for_status()  # an error page must not read as "no actors"
            return await resp.text()

    async def read_metadata(self) -> None:
        url = f"{self.targets.dapr_url}/v1.0/metadata"
        try:
            metadata = json.loads(await self._get(url))
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            self.state.set_source("sidecar", False, f"no answer from {url}: {describe(err)}")
            return
        runtime = metadata.get("actorRuntime", {})
        counts = {
            entry["type"]: int(entry.get("count", 0))  # protobuf JSON leaves out a zero count
            for entry in runtime.get("activeActors", [])
        }
        self.state.set_metadata(
            counts, str(metadata.get("runtimeVersion", "")), str(runtime.get("placement", ""))
        )
        self.state.set_source("sidecar", True)

    async def read_metrics(self) -> None:
        url = self.targets.metrics_url
        assert url is not None
        try:
            text = await self._get(url)
        except (aiohttp.ClientError, TimeoutError) as err:
            self.state.set_source("metrics", False, f"no answer from {url}: {describe(err)}")
            return
        rel = release_of(str(self.state.summary()["dapr_version"]))
        self.state.set_metrics(parse_metrics(text, rel))
        self.state.set_source("metrics", True)

    def actor_types(self) -> list[str]:
        summary = self.state.summary()
        return sorted(set(KNOWN_ACTOR_TYPES) | set(summary["active_counts"]))

    def release(self) -> releases.Release | None:
        return release_of(str(self.state.summary()["dapr_version"]))

    async def sidecar_reminders(self, actor_type: str, actor_id: str) -> list[dict[str, Any]]:
        """The actor's known reminders as daprd answers for them (the Scheduler keeps them),
        each with its name; a reminder the release's answer says is gone is left out."""
        rel = self.release()
        assert self._http is not None and rel is not None
        found = []
        for name in KNOWN_REMINDERS:
            url = REMINDER_URL.format(
                dapr_url=self.targets.dapr_url, actor_type=actor_type, actor_id=actor_id, name=name
            )
            async with self._http.get(url) as resp:
                body = await resp.json(content_type=None)
                if releases.reminder_gone(rel, resp.status, body):
                    continue
                resp.raise_for_status()
            if isinstance(body, dict):
                found.append({"name": name, "actorID": actor_id, **body})
        return found

    async def read_scheduler_reminders(self) -> dict[tuple[str, str], float]:
        """(type, id) -> due time of the known reminders of the actors the console has seen."""
        reminders: dict[tuple[str, str], float] = {}
        for actor_type, actor_id in list(self.state.actors):
            for record in await self.sidecar_reminders(actor_type, actor_id):
                # daprd answers the dueTime as registered ("0h0m30s0ms0μs", from then, not
                # when); the expiry reminder carries its due time as its data (step 02).
                data = record.get("data")
                due = parse_time(decode_base64(data) or "") if isinstance(data, str) else None
                if due is not None:
                    reminders[(actor_type, actor_id)] = due
        return reminders

    async def read_redis(self) -> None:
        where = f"Redis at {self.targets.redis_host}:{self.targets.redis_port}"
        reminders: dict[tuple[str, str], float] = {}
        rel = self.release()
        if rel is not None and not rel.reminders_in_state_store:
            try:
                await self.redis.ping()
                reminders = await self.read_scheduler_reminders()
            except (RedisError, OSError) as err:
                self.state.set_source("redis", False, f"no answer from {where}: {describe(err)}")
                return
            except (aiohttp.ClientError, TimeoutError, ValueError) as err:
                self.state.set_source("sidecar", False, f"reminders unreadable: {describe(err)}")
                return
            self.state.set_reminders(reminders)
            self.state.set_source("redis", True)
            return
        try:
            for actor_type in self.actor_types():
                raw = await self.redis.hget(REMINDERS_KEY.format(actor_type=actor_type), "data")
                for record in reminders_of(raw):
                    due = reminder_due_at(record)
                    if due is not None:
                        reminders[(actor_type, str(record.get("actorID", "")))] = due
        except (RedisError, OSError) as err:
            self.state.set_source("redis", False, f"no answer from {where}: {describe(err)}")
            return
        except ValueError as err:
            self.state.set_source("redis", False, f"unreadable reminders in {where}: {err}")
            return
        self.state.set_reminders(reminders)
        self.state.set_source("redis", True)

    async def read_processes(self) -> None:
        self.state.set_processes(await asyncio.to_thread(self.targets.processes))

    async def actor_state(self, actor_type: str, actor_id: str) -> dict[str, Any]:
        """An actor's state as Redis holds it: its keys' `data` and the reminder records."""
        keys: dict[str, Any] = {}
        for key in STATE_KEYS:
            name = STATE_KEY.format(
                app_id=self.targets.app_id, actor_type=actor_type, actor_id=actor_id, key=key
            )
            raw = await self.redis.hget(name, "data")
            if raw is not None or key == STATE_KEYS[0]:
                keys[name] = None if raw is None else decode_value(raw)
        rel = self.release()
        if rel is not None and not rel.reminders_in_state_store:
            reminders_key = IN_THE_SCHEDULER
            records = await self.sidecar_reminders(actor_type, actor_id)
        else:
            reminders_key = REMINDERS_KEY.format(actor_type=actor_type)
            records = [
                record
                for record in reminders_of(await self.redis.hget(reminders_key, "data"))
                if record.get("actorID") == actor_id
            ]
        for record in records:
            data = record.get("data")
            if isinstance(data, str):
                record["data_decoded"] = decode_base64(data)
        return {
            "actor": f"{actor_type} {actor_id}",
            "keys": keys,
            "reminders_key": reminders_key,
            "reminders": records,
        }


def decode_value(raw: bytes) -> Any:
    text = raw.decode(errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def decode_base64(data: str) -> str | None:
    try:
        return base64.b64decode(data, validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None
