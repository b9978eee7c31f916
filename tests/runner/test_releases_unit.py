"""daprlab.releases: one row per range of Dapr releases, and the lines each row matches."""

from __future__ import annotations

import pytest

from daprlab import releases
from daprlab.runner import actor_placement
from daprlab.versions import pins


@pytest.mark.parametrize(
    ("version", "label"),
    [
        ("1.14.0", "1.14"),
        ("1.14.4", "1.14"),
        ("v1.15.0", "1.15-1.16"),
        ("1.16.5", "1.15-1.16"),
        ("1.17.7", "1.17-1.18"),
        ("1.18.3", "1.17-1.18"),
        ("1.18.0-rc.1", "1.17-1.18"),
    ],
)
def test_each_supported_version_has_its_row(version: str, label: str) -> None:
    assert releases.of(version).label == label


@pytest.mark.parametrize("version", ["1.13.1", "1.19.0", "2.0.0", "edge", ""])
def test_a_version_outside_the_range_is_refused_by_name(version: str) -> None:
    assert not releases.is_supported(version)
    with pytest.raises(releases.UnsupportedRelease, match=r"supported: 1\.14 to 1\.18"):
        releases.of(version)


def test_the_pin_is_supported() -> None:
    assert releases.of(pins().dapr_runtime).label == "1.14"


def test_rows_are_newest_first_and_cover_the_range_once() -> None:
    starts = [row.since for row in releases.RELEASES]
    assert starts == sorted(starts, reverse=True)
    assert starts[-1] == releases.OLDEST_SUPPORTED


# Lines as each release logs them (1.14.4 and 1.16.5 in the lab's runs; 1.18.3 too).
TABLE_LINES = {
    "1.14.4": 'time="t" level=info msg="Placement tables updated, version: 3" scope=x',
    "1.16.5": 'time="t" level=info msg="Placement tables updated, version: 2" scope=x',
    "1.18.3": (
        'time="t" level=info msg="Dissemination complete for version 4 (changed types '
        '[ChatAgent]), unlocking disseminator default/chat-agent" scope=x'
    ),
}


@pytest.mark.parametrize("version", TABLE_LINES)
def test_readiness_reads_each_releases_own_line(version: str) -> None:
    rel = releases.of(version)
    assert releases.table_applied_version(rel, TABLE_LINES[version]) in (2, 3, 4)
    others = [
        line
        for other, line in TABLE_LINES.items()
        if releases.of(other).table_applied != rel.table_applied
    ]
    assert others and all(releases.table_applied_version(rel, line) is None for line in others)


def test_the_idle_timeout_is_logged_on_1_14_only() -> None:
    old, new = releases.of("1.14.4"), releases.of("1.18.3")
    found = old.actor_runtime_started.search("Actor runtime started. Idle timeout: 1h0m0s")
    assert old.logs_idle_timeout and found and found["idle"] == "1h0m0s"
    assert not new.logs_idle_timeout
    line = 'time="t" level=info msg="Actor runtime started" app_id=chat-agent scope=x'
    assert new.actor_runtime_started.search(line)
    assert not old.actor_runtime_started.search(line)


def test_reminders_leave_the_state_store_from_1_15() -> None:
    assert releases.of("1.14.4").reminders_in_state_store
    assert not releases.of("1.15.0").reminders_in_state_store
    assert releases.of("1.18.3").missing_reminder_status == 404


# placement's GET /placement/state, as 1.14.4 (and 1.16.5) and 1.18.3 answered it.
STATE_HOST_LIST = {
    "hostList": [
        {"name": "127.0.0.1:1", "namespace": "default", "appId": "a", "actorTypes": ["ChatAgent"]},
        {"name": "127.0.0.1:2", "namespace": "ns2", "appId": "a", "actorTypes": ["Other"]},
    ],
    "tableVersion": 2,
}
STATE_TABLES = {
    "tables": {
        "default": {
            "hosts": [{"name": "127.0.0.1:1", "entities": ["ChatAgent"], "namespace": "default"}],
            "version": 2,
        },
        "ns2": {"hosts": [{"name": "127.0.0.1:2", "entities": ["Other"]}], "version": 1},
    }
}


@pytest.mark.parametrize(
    ("version", "state"), [("1.14.4", STATE_HOST_LIST), ("1.18.3", STATE_TABLES)]
)
def test_placement_state_is_read_in_the_releases_shape(version: str, state: dict) -> None:
    hosts = actor_placement.placement_hosts(state, releases.of(version))
    assert hosts == [
        ("default", "127.0.0.1:1", ["ChatAgent"]),
        ("ns2", "127.0.0.1:2", ["Other"]),
    ]
    other = STATE_TABLES if state is STATE_HOST_LIST else STATE_HOST_LIST
    assert actor_placement.placement_hosts(other, releases.of(version)) == []
