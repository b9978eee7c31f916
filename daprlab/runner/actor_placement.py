"""Where an actor lives: Dapr's placement hashing, as each sidecar computes it, over the hosts
placement reports, once every running sidecar says it applied placement's current table.

What `daprlab where` answers (the runner carries it out, daprlab/runner/runner.py).
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any

import httpx

from daprlab import loglines, releases
from daprlab.netcheck import LOOPBACK
from daprlab.runner.control_channel import ControlError
from daprlab.stack.process import ManagedProcess
from daprlab.stack.stack import Stack
from daprlab.wait import DeadlineExceeded, wait_for

# Dapr's placement hashes each host onto its ring this many times (its --replicationFactor).
PLACEMENT_REPLICATION_FACTOR = 100
SIDECAR_TABLE_TIMEOUT_SECONDS = 10
DEFAULT_NAMESPACE = "default"
PLACEMENT_STATE_TIMEOUT_SECONDS = 5


def ring_hash(key: str) -> int:
    """dapr/dapr pkg/placement/hashing: the first 8 bytes of BLAKE2b-512, little-endian."""
    return int.from_bytes(hashlib.blake2b(key.encode()).digest()[:8], "little")


@dataclass
class Ring:
    """The placement table of one actor type: each host at PLACEMENT_REPLICATION_FACTOR points."""

    points: list[int] = field(default_factory=list)
    owners: dict[int, str] = field(default_factory=dict)

    @classmethod
    def of(cls, hosts: list[str]) -> Ring:
        ring = cls()
        for host in hosts:
            for i in range(PLACEMENT_REPLICATION_FACTOR):
                ring.owners[ring_hash(f"{host}{i}")] = host
        ring.points = sorted(ring.owners)
        return ring

    def host(self, actor_id: str) -> str:
        """The host of an actor id: the first point at or after its hash, wrapping around."""
        index = bisect_left(self.points, ring_hash(actor_id))
        return self.owners[self.points[index % len(self.points)]]


def namespace_name(namespace: str) -> str:
    """A sidecar without NAMESPACE is in Dapr's "default" namespace."""
    return namespace or DEFAULT_NAMESPACE


def applied_table(daprd: ManagedProcess, release: releases.Release) -> int:
    """The placement table version a sidecar last logged as applied (0: none yet)."""
    for line in reversed(list(daprd.lines)):
        if (version := releases.table_applied_version(release, line)) is not None:
            return version
    return 0


def placement_state(stack: Stack) -> dict[str, Any]:
    """Placement's GET /placement/state (its healthz port), as JSON."""
    ports = stack.config.control_ports
    url = f"http://{LOOPBACK}:{ports.placement_health}/placement/state"
    try:
        state = httpx.get(url, timeout=PLACEMENT_STATE_TIMEOUT_SECONDS).json()
    except (httpx.HTTPError, ValueError) as err:
        raise ControlError(f"placement does not answer at {url} ({err}): is it up?") from err
    return state if isinstance(state, dict) else {}


def placement_hosts(
    state: dict[str, Any], release: releases.Release
) -> list[tuple[str, str, list[str]]]:
    """(namespace, host, actor types) of each host in placement's state, in the release's shape
    (daprlab.releases `placement_state_tables`)."""
    if release.placement_state_tables:
        return [
            (host.get("namespace", namespace), host["name"], host.get("entities", []))
            for namespace, table in state.get("tables", {}).items()
            for host in table.get("hosts", [])
        ]
    return [
        (host.get("namespace", ""), host["name"], host.get("actorTypes", []))
        for host in state.get("hostList", [])
    ]


def sent_tables(stack: Stack) -> dict[str, tuple[int, int]]:
    """namespace: (hosts, table generation) placement last sent: from its dissemination lines,
    or (releases whose placement logs none) from its state's per-namespace tables."""
    sent: dict[str, tuple[int, int]] = {}
    if stack.runtime.release.placement_state_tables:
        for namespace, table in placement_state(stack).get("tables", {}).items():
            sent[namespace_name(namespace)] = (len(table.get("hosts", [])), table.get("version", 0))
        return sent
    placement = stack.control.get("placement")
    for line in list(placement.lines) if placement else []:
        if found := loglines.DISSEMINATED.search(line):
            sent[namespace_name(found["namespace"])] = (
                int(found["streams"]),
                int(found["generation"]),
            )
    return sent


def placement_tables(stack: Stack, actor_type: str) -> dict[str, list[str]]:
    """The hosts of `actor_type` in placement's tables, by namespace: what it sends the
    sidecars of each namespace."""
    state = placement_state(stack)
    tables: dict[str, list[str]] = {}
    for namespace, host, types in placement_hosts(state, stack.runtime.release):
        if actor_type in types:
            tables.setdefault(namespace, []).append(host)
    if not tables:
        raise ControlError(f"no replica hosts {actor_type} now (placement's table is empty)")
    return dict(sorted(tables.items()))


def sidecars(stack: Stack, namespace: str) -> list[ManagedProcess]:
    """The running sidecars of one namespace."""
    namespaces = stack.config.namespaces
    return [
        inst.daprd
        for inst in stack.instances
        if inst.daprd is not None
        and inst.daprd.alive
        and namespace_name(namespaces[inst.index] if inst.index < len(namespaces) else "")
        == namespace
    ]


def wait_for_sidecars(stack: Stack, tables: dict[str, list[str]]) -> None:
    """Wait until placement has sent each namespace's table with its current hosts, and every
    running sidecar of the namespace says it applied it: then the answer is the sidecars' own
    view, not only placement's."""

    def behind() -> list[str]:
        sent = sent_tables(stack)  # namespace: (streams, table generation)
        late = []
        for namespace, hosts in tables.items():
            streams, generation = sent.get(namespace_name(namespace), (0, 0))
            if streams != len(hosts):
                late.append(f"placement has yet to send namespace {namespace}'s table")
                continue
            for daprd in sidecars(stack, namespace_name(namespace)):
                if (applied := applied_table(daprd, stack.runtime.release)) < generation:
                    late.append(f"{daprd.name} has table {applied} of {generation}")
        return late

    try:
        wait_for(lambda: not behind(), SIDECAR_TABLE_TIMEOUT_SECONDS, "the sidecars' tables")
    except DeadlineExceeded:
        raise ControlError(
            f"the sidecars have not all applied placement's current table within "
            f"{SIDECAR_TABLE_TIMEOUT_SECONDS} s ({', '.join(behind())}): ask again"
        ) from None


def summary(ids: list[str], actor_type: str, placed: dict[str, str]) -> str:
    if len(ids) == 1:
        return f"{actor_type} {ids[0]} is on {placed[ids[0]]}"
    counts = [
        f"{replica} {n}"
        for replica in sorted(set(placed.values()))
        if (n := sum(1 for r in placed.values() if r == replica))
    ]
    return f"{len(ids)} {actor_type} actors: {', '.join(counts)}"


def where(stack: Stack, ids: list[str], actor_type: str, hosted_by: str | None) -> str:
    """Which replica hosts each id (a count per replica for many), or with `hosted_by`, the ids
    that replica hosts."""
    # daprd registers with placement as DAPR_HOST_IP:<its internal gRPC port>.
    replicas = {
        f"{LOOPBACK}:{inst.ports.dapr_internal}": inst.replica_name for inst in stack.instances
    }
    if hosted_by is not None and hosted_by not in replicas.values():
        valid = ", ".join(replicas.values())
        raise ControlError(f"no replica named {hosted_by!r}; valid: {valid}")
    tables = placement_tables(stack, actor_type)
    wait_for_sidecars(stack, tables)
    rings = {ns: Ring.of(hosts) for ns, hosts in tables.items()}
    # One placement table per namespace: an id has a host in each.
    placed_in = {
        ns: {actor_id: replicas[ring.host(actor_id)] for actor_id in ids}
        for ns, ring in rings.items()
    }
    if hosted_by is not None:
        return "\n".join(
            actor_id
            for placed in placed_in.values()
            for actor_id, where in placed.items()
            if where == hosted_by
        )
    answers = [summary(ids, actor_type, placed) for placed in placed_in.values()]
    if len(answers) == 1:
        return answers[0]
    return "; ".join(
        f"{answer} (namespace {ns})" for ns, answer in zip(placed_in, answers, strict=True)
    )
