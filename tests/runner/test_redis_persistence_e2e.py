"""The stack's Redis under a crash, each persistence setting on the real redis-server.

200 writes, each answered, then SIGKILL (Stack.crash) and Redis again on the same state dir:
`snapshots` (the lab's old setting) loses them, `fsync-always` (the default) keeps every one.
And a state dir from before the append-only file (only dump.rdb) keeps its data on the first
start with fsync-always, and from then on through a crash.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import redis

from daprlab.harness import report_measured
from daprlab.netcheck import LOOPBACK
from daprlab.runtime import Runtime
from daprlab.stack import redis_persistence
from daprlab.stack.ports import ControlPorts
from daprlab.stack.stack import Stack, StackConfig

pytestmark = pytest.mark.e2e
WRITES = 200


class RedisAlone:
    """The stack's own Redis start (its argv, its data dir, the migration) and nothing else."""

    def __init__(self, state_dir: Path, runtime: Runtime) -> None:
        self.lines: list[str] = []
        config = StackConfig(step="01_actor_timers", state_dir=state_dir)
        config.control_ports = ControlPorts.free()
        self.stack = Stack(config, runtime, lambda name, line: self.lines.append(line))
        self.stack.log_dir.mkdir(parents=True, exist_ok=True)

    def start(self, persistence: str) -> redis.Redis:
        self.stack.config.redis_persistence = persistence
        self.stack.start_redis()
        return redis.Redis(host=LOOPBACK, port=self.stack.redis_port, decode_responses=True)

    def write(self, client: redis.Redis, prefix: str) -> None:
        for n in range(WRITES):  # one at a time: each answered before the next
            assert client.set(f"{prefix}:{n}", n) is True

    def kept(self, client: redis.Redis, prefix: str) -> int:
        return len(list(client.scan_iter(f"{prefix}:*", count=1000)))


@pytest.fixture
def alone(tmp_path: Path, dapr_runtime: Runtime):
    started = RedisAlone(tmp_path / "lab", dapr_runtime)
    yield started
    started.stack.stop()


@pytest.mark.parametrize(
    ("persistence", "all_kept"),
    [(redis_persistence.SNAPSHOTS, False), (redis_persistence.FSYNC_ALWAYS, True)],
)
def test_what_a_crash_keeps_of_answered_writes(
    alone: RedisAlone, request: pytest.FixtureRequest, persistence: str, all_kept: bool
) -> None:
    client = alone.start(persistence)
    alone.write(client, "answered")
    killed = alone.stack.crash()
    assert killed == ["redis"]
    kept = alone.kept(alone.start(persistence), "answered")
    report_measured(request.config, f"redis {persistence}: {kept}/{WRITES} answered SETs kept")
    if all_kept:
        assert kept == WRITES
    else:  # at most one snapshot a second: the writes since the last one are gone
        assert kept < WRITES
    data = redis_persistence.data_dir(alone.stack.config.state_dir, persistence)
    other = set(redis_persistence.CHOICES) - {persistence}
    assert data.is_dir() and not redis_persistence.data_dir(data.parent, other.pop()).exists()


def test_an_old_state_dir_keeps_its_data_through_the_move_to_the_append_only_file(
    alone: RedisAlone,
) -> None:
    # An old state dir: `redis/` holding only the snapshot the old setting wrote.
    old = alone.start(redis_persistence.SNAPSHOTS)
    alone.write(old, "old")
    assert old.save()
    alone.stack.control.pop("redis").stop()
    state_dir = alone.stack.config.state_dir
    new_dir = redis_persistence.data_dir(state_dir, redis_persistence.FSYNC_ALWAYS)
    shutil.rmtree(new_dir, ignore_errors=True)
    shutil.move(redis_persistence.data_dir(state_dir, redis_persistence.SNAPSHOTS), new_dir)
    assert sorted(p.name for p in new_dir.iterdir()) == [redis_persistence.RDB_FILE]

    client = alone.start(redis_persistence.FSYNC_ALWAYS)
    moved = f"moved {WRITES} keys from dump.rdb into the append-only file"
    assert any(moved in line for line in alone.lines), alone.lines
    assert (new_dir / redis_persistence.AOF_DIR).is_dir()
    assert client.config_get("appendonly") == {"appendonly": "yes"}
    assert client.config_get("appendfsync") == {"appendfsync": "always"}
    alone.write(client, "new")
    alone.stack.crash()

    again = alone.start(redis_persistence.FSYNC_ALWAYS)
    assert (alone.kept(again, "old"), alone.kept(again, "new")) == (WRITES, WRITES)
    assert sum(moved in line for line in alone.lines) == 1, "migrated twice"
