"""How the stack's own Redis keeps its data: the one place that says what survives a crash.

`fsync-always` (the default): an append-only file, written and fsynced before Redis answers a
write, so an actor state change daprd was told "OK" about is on disk before the app answers the
learner; a SIGKILL of every process (a power cut, an OOM kill) loses nothing that was answered.
`snapshots`: the lab's old setting, a snapshot at most once a second and no append-only file;
kept to show the difference (EXPERIMENTS.md, "What survives a crash"), in a data dir of its own
so that the two never share files.

A state dir from before the append-only file holds only dump.rdb: the first start with
`fsync-always` loads it, then turns the append-only file on (`CONFIG SET appendonly yes`, which
rewrites the whole dataset into it), so a learner's earlier conversations are kept.
"""

from __future__ import annotations

import os
from pathlib import Path

import redis

from daprlab.netcheck import LOOPBACK
from daprlab.stack.process import StackError
from daprlab.wait import DeadlineExceeded, wait_for

REDIS_PERSISTENCE_ENV = "REDIS_PERSISTENCE"
FSYNC_ALWAYS = "fsync-always"
SNAPSHOTS = "snapshots"
CHOICES = (FSYNC_ALWAYS, SNAPSHOTS)
DEFAULT = FSYNC_ALWAYS
# Each setting's data dir, in the state dir.
DATA_DIRS = {FSYNC_ALWAYS: "redis", SNAPSHOTS: "redis-snapshots"}
ARGS = {
    FSYNC_ALWAYS: ["--appendonly", "yes", "--appendfsync", "always", "--save", ""],
    SNAPSHOTS: ["--save", "1 1", "--appendonly", "no"],
}
# While migrating: load dump.rdb (no append-only file yet), take no snapshots.
MIGRATION_ARGS = ["--appendonly", "no", "--appendfsync", "always", "--save", ""]
RDB_FILE = "dump.rdb"
AOF_DIR = "appendonlydir"  # Redis 7's multi-part append-only file
AOF_REWRITE_TIMEOUT_SECONDS = 120
AOF_POLL_SECONDS = 0.1


def check(value: str) -> str:
    """`value` if it names a setting; a clear error naming the valid ones otherwise."""
    if value not in CHOICES:
        raise ValueError(
            f"{REDIS_PERSISTENCE_ENV} (or --redis-persistence) is one of {', '.join(CHOICES)}, "
            f"got {value!r}"
        )
    return value


def default() -> str:
    """The setting of REDIS_PERSISTENCE in the environment, else fsync-always."""
    return check(os.environ.get(REDIS_PERSISTENCE_ENV) or DEFAULT)


def data_dir(state_dir: Path, persistence: str) -> Path:
    return state_dir / DATA_DIRS[check(persistence)]


def needs_migration(data: Path, persistence: str) -> bool:
    """An old state dir: a snapshot and no append-only file, about to start with one."""
    return (
        persistence == FSYNC_ALWAYS
        and (data / RDB_FILE).is_file()
        and not (data / AOF_DIR).exists()
    )


def server_args(persistence: str, migrate: bool) -> list[str]:
    """redis-server's persistence flags for `persistence` (the migration's first start: none)."""
    return list(MIGRATION_ARGS if migrate else ARGS[check(persistence)])


def enable_aof(port: int, timeout: float = AOF_REWRITE_TIMEOUT_SECONDS) -> int:
    """Turn the append-only file on in a running Redis and wait until the rewrite that fills it
    with the whole dataset is done; return the number of keys it holds (every database)."""
    client = redis.Redis(host=LOOPBACK, port=port, socket_timeout=timeout)
    try:
        client.config_set("appendonly", "yes")

        def rewritten() -> bool:
            info = client.info("persistence")
            done = (
                info.get("aof_enabled") == 1
                and info.get("aof_rewrite_in_progress") == 0
                and info.get("aof_rewrite_scheduled") == 0
            )
            if done and info.get("aof_last_bgrewrite_status") != "ok":
                raise StackError(
                    "Redis could not write its append-only file (aof_last_bgrewrite_status "
                    f"{info.get('aof_last_bgrewrite_status')}): see its log"
                )
            return done

        wait_for(rewritten, timeout, "Redis to write its append-only file", AOF_POLL_SECONDS)
        return sum(int(db["keys"]) for db in client.info("keyspace").values())
    except (redis.RedisError, DeadlineExceeded) as err:
        raise StackError(
            f"Redis on {LOOPBACK}:{port} did not turn on its append-only file: {err}; "
            "its log (redis.log in the state dir's logs/) says why"
        ) from err
    finally:
        client.close()
