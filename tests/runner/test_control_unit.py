"""Runner controls without a runner: the command line's own checks, and the guide's shape."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from daprlab.paths import REPO_ROOT
from daprlab.runner import actor_placement
from daprlab.stack import redis_persistence
from tests.support import readme_check

GUIDE = (REPO_ROOT / "EXPERIMENTS.md").read_text()
EXPERIMENTS = readme_check.experiments(GUIDE)
KUBERNETES = "On Kubernetes (not run by the tests)"
EXPERIMENT_SECTIONS = [
    "Goal",
    "Run",
    "Try it",
    "What to look for",
    "What it proves",
    "Check yourself",
    KUBERNETES,
]


def daprlab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daprlab", *args], capture_output=True, text=True, cwd=REPO_ROOT
    )


@pytest.mark.parametrize(
    "args", [("fault", "stop", "redis"), ("fault", "pause", "redis", "5"), ("where", "alice")]
)
def test_a_control_command_without_a_runner_says_so_in_one_line(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    done = daprlab(*args, "--state-dir", str(tmp_path))
    assert done.returncode == 1
    assert done.stdout == (
        f"error: no `daprlab up` is running on {tmp_path}: start one in another terminal "
        "(`uv run daprlab up <step>`)\n"
    )


@pytest.mark.parametrize("seconds", ["121", "0", "-1"])
def test_pause_outside_0_to_120_seconds_is_refused(tmp_path: Path, seconds: str) -> None:
    done = daprlab("fault", "pause", "redis", seconds, "--state-dir", str(tmp_path))
    assert done.returncode == 1
    assert done.stdout.startswith(
        f"error: pause takes a number of seconds from 0 to 120, got {float(seconds)}"
    )
    assert done.stdout.count("\n") == 1


def test_pause_needs_its_seconds(tmp_path: Path) -> None:
    done = daprlab("fault", "pause", "redis", "--state-dir", str(tmp_path))
    assert done.returncode == 1
    assert "got None" in done.stdout


def test_replicas_are_bounded() -> None:
    done = daprlab("up", "01_actor_timers", "--replicas", "9")
    assert done.returncode == 2
    assert "a whole number from 1 to 5, got '9'" in done.stderr


def test_the_ring_is_daprs_hash_over_each_host_and_point() -> None:
    hosts = ["127.0.0.1:50002", "127.0.0.1:50012", "127.0.0.1:50022"]
    ring = actor_placement.Ring.of(hosts)
    assert len(ring.points) == len(hosts) * actor_placement.PLACEMENT_REPLICATION_FACTOR
    # Removing a host moves only its own ids (the point of consistent hashing).
    smaller = actor_placement.Ring.of([hosts[0], hosts[2]])
    ids = [f"talk-{i}" for i in range(1, 31)]
    for actor_id in ids:
        if ring.host(actor_id) != hosts[1]:
            assert smaller.host(actor_id) == ring.host(actor_id)


def test_the_guides_where_counts_are_those_of_the_default_ports() -> None:
    """With the default ports (50002 + 10 per replica) a learner sees the guide's counts."""
    hosts = [f"127.0.0.1:{50002 + 10 * i}" for i in range(3)]
    names = {host: f"replica-{i + 1}" for i, host in enumerate(hosts)}
    ids = [f"talk-{i}" for i in range(1, 31)]

    def counts(ring: actor_placement.Ring) -> str:
        placed = [names[ring.host(actor_id)] for actor_id in ids]
        return ", ".join(f"{r} {placed.count(r)}" for r in sorted(set(placed)))

    text = EXPERIMENTS["Scaling out"]
    assert f"30 ChatAgent actors: {counts(actor_placement.Ring.of(hosts))}\n" in text
    assert f"30 ChatAgent actors: {counts(actor_placement.Ring.of([hosts[0], hosts[2]]))}\n" in text


def test_the_guide_is_linked_from_the_root_readme_and_its_links_resolve() -> None:
    assert "(EXPERIMENTS.md)" in (REPO_ROOT / "README.md").read_text()
    links = readme_check.relative_links(GUIDE, REPO_ROOT)
    assert links
    for target in links:
        assert target.exists(), target


def test_each_experiment_has_the_sections_of_a_step_readme() -> None:
    assert list(EXPERIMENTS) == [
        "Fault tolerance",
        "Scaling out",
        "Namespaces",
        "Idle reclaim at scale",
        "What survives a crash",
        "A retried request",
        "A model behind the agent",
    ]
    for title, text in EXPERIMENTS.items():
        assert re.findall(r"^### (.+)$", text, re.M) == EXPERIMENT_SECTIONS, title


def test_check_yourself_selects_the_experiments_walkthrough() -> None:
    for title, text in EXPERIMENTS.items():
        (block,) = readme_check.blocks(readme_check.section(text, "Check yourself", level=3))
        slug = re.sub(r"\W+", "_", title.lower()).strip("_")
        assert block.body.split() == [
            "uv", "run", "pytest", "tests/runner/test_experiments_e2e.py",
            "-k", slug.split("_at_")[0],
        ]  # fmt: skip


def test_the_kubernetes_commands_are_never_run_and_name_real_resources() -> None:
    manifests = "".join(p.read_text() for p in (REPO_ROOT / "kubernetes").glob("*.yaml"))
    manifests += "".join(p.read_text() for p in (REPO_ROOT / "components").glob("*.yaml"))
    for title, text in EXPERIMENTS.items():
        section = readme_check.section(text, KUBERNETES, level=3)
        found = readme_check.blocks(section)
        # ```text: shown, never played (the walkthrough runs ```bash blocks of "Try it" only).
        assert found and all(block.lang == "text" for block in found), title
        for name in re.findall(r"(?:deploy/|resiliency )([\w-]+)", section):
            assert f"name: {name}\n" in manifests, f"{title}: no resource named {name}"


def test_kill_all_without_a_runner_says_so_in_one_line(tmp_path: Path) -> None:
    done = daprlab("fault", "kill", "all", "--state-dir", str(tmp_path))
    assert done.returncode == 1
    assert done.stdout.startswith(f"error: no `daprlab up` is running on {tmp_path}")


def test_redis_persistence_is_one_of_its_settings(tmp_path: Path) -> None:
    done = daprlab("up", "01_actor_timers", "--redis-persistence", "sometimes")
    assert done.returncode == 2
    assert "argument --redis-persistence: invalid choice: 'sometimes'" in done.stderr
    env = {**os.environ, "REDIS_PERSISTENCE": "sometimes"}
    done = subprocess.run(
        [sys.executable, "-m", "daprlab", "up", "01_actor_timers", "--state-dir", str(tmp_path)],
        capture_output=True, text=True, cwd=REPO_ROOT, env=env,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stdout.endswith(
        "error: REDIS_PERSISTENCE (or --redis-persistence) is one of fsync-always, snapshots, "
        "got 'sometimes'\n"
    )


def test_each_redis_setting_has_its_own_data_dir_and_flags(tmp_path: Path) -> None:
    fsync, snaps = redis_persistence.FSYNC_ALWAYS, redis_persistence.SNAPSHOTS
    assert redis_persistence.server_args(fsync, migrate=False) == [
        "--appendonly", "yes", "--appendfsync", "always", "--save", "",
    ]  # fmt: skip
    assert redis_persistence.server_args(snaps, migrate=False) == [
        "--save", "1 1", "--appendonly", "no",
    ]  # fmt: skip
    data_dirs = {redis_persistence.data_dir(tmp_path, s) for s in redis_persistence.CHOICES}
    assert len(data_dirs) == len(redis_persistence.CHOICES)
    data = redis_persistence.data_dir(tmp_path, fsync)
    data.mkdir()
    assert not redis_persistence.needs_migration(data, fsync)  # a new state dir
    (data / redis_persistence.RDB_FILE).write_bytes(b"")
    assert redis_persistence.needs_migration(data, fsync)  # an old one: a snapshot only
    assert not redis_persistence.needs_migration(data, snaps)
    (data / redis_persistence.AOF_DIR).mkdir()
    assert not redis_persistence.needs_migration(data, fsync)  # moved already
