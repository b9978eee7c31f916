"""Which scheduler flags each Dapr release takes for its embedded etcd: the one place that says it.

Dapr 1.15 renamed them (dapr/dapr `cmd/scheduler/options/options.go` at v1.14.4 against v1.15.0
and v1.18.3, read from the source), and the scheduler exits on an unknown flag, so a runner that
passed 1.14's names to a newer scheduler would stop at its first start. Placement's
`--initial-cluster` did not change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The scheduler came with Dapr 1.14: older runtimes have none to start.
FIRST_RELEASE_WITH_SCHEDULER = (1, 14)
_RELEASE = re.compile(r"^v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+].*)?$")


@dataclass(frozen=True)
class EtcdFlags:
    """The names of the flags that place the scheduler's embedded etcd node."""

    initial_cluster: str  # the etcd peers, "NAME=http://HOST:PEER_PORT"
    client_port: str
    # 1.14: the client port is given per node ("NAME=PORT"); 1.15 on: the port alone.
    client_port_per_node: bool


# Newest first: a runtime takes the flags of the first release it is not older than.
ETCD_FLAGS_BY_RELEASE: list[tuple[tuple[int, int], EtcdFlags]] = [
    ((1, 15), EtcdFlags("--etcd-initial-cluster", "--etcd-client-port", False)),
    (FIRST_RELEASE_WITH_SCHEDULER, EtcdFlags("--initial-cluster", "--etcd-client-ports", True)),
]


def release(version: str) -> tuple[int, int]:
    """(major, minor) of a Dapr version such as "1.14.4", "v1.15.0" or "1.16.0-rc.2"."""
    match = _RELEASE.match(version.strip())
    if match is None:
        raise ValueError(f"not a Dapr version: {version!r} (expected e.g. 1.14.4)")
    return int(match.group(1)), int(match.group(2))


def etcd_flags(version: str) -> EtcdFlags:
    """The etcd flag names of the scheduler of Dapr `version`."""
    have = release(version)
    for since, flags in ETCD_FLAGS_BY_RELEASE:
        if have >= since:
            return flags
    oldest = ".".join(map(str, FIRST_RELEASE_WITH_SCHEDULER))
    raise ValueError(f"Dapr {version} has no scheduler; the lab needs Dapr {oldest} or newer")


def etcd_args(version: str, node: str, peer_url: str, client_port: int) -> list[str]:
    """The scheduler arguments that make `node` a one-node etcd cluster on these ports."""
    flags = etcd_flags(version)
    client = f"{node}={client_port}" if flags.client_port_per_node else str(client_port)
    return [flags.initial_cluster, f"{node}={peer_url}", flags.client_port, client]
