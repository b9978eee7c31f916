"""The ports of a stack: its control plane's, and each app replica's (with its processes)."""

from __future__ import annotations

from dataclasses import dataclass

from daprlab import netcheck
from daprlab.netcheck import LOOPBACK
from daprlab.stack.process import ManagedProcess


@dataclass
class ControlPorts:
    redis: int
    placement: int
    placement_health: int
    placement_raft: int
    scheduler: int
    scheduler_health: int
    scheduler_etcd_client: int
    scheduler_etcd_peer: int

    @classmethod
    def fixed(cls) -> ControlPorts:
        """The local runner's ports: Redis' and Dapr's defaults where they don't clash."""
        return cls(6379, 50005, 58080, 8201, 50006, 58081, 52379, 52380)

    @classmethod
    def free(cls) -> ControlPorts:
        return cls(*(netcheck.free_port() for _ in range(8)))


@dataclass
class InstancePorts:
    app: int
    dapr_http: int
    dapr_grpc: int
    dapr_internal: int
    # daprd's Prometheus metrics (the lab console reads them); Dapr's default port.
    dapr_metrics: int = 9090

    @classmethod
    def fixed(cls, index: int = 0) -> InstancePorts:
        """Replica `index`'s ports: 8000, 3500, 50001, 50002, 9090 for the first, then +1 (app,
        HTTP, metrics) and +10 (gRPC, clear of placement's 50005 and the scheduler's 50006)."""
        return cls(8000 + index, 3500 + index, 50001 + 10 * index, 50002 + 10 * index, 9090 + index)

    @classmethod
    def free(cls) -> InstancePorts:
        return cls(*(netcheck.free_port() for _ in range(5)))


@dataclass
class Instance:
    """One app replica: daprd and the step's app, with their ports and processes."""

    index: int
    ports: InstancePorts
    app_env: dict[str, str]
    daprd: ManagedProcess | None = None
    app: ManagedProcess | None = None

    @property
    def suffix(self) -> str:
        return "" if self.index == 0 else f"-{self.index + 1}"

    @property
    def replica_name(self) -> str:
        """How `daprlab fault` and `where` name this replica: replica-1, replica-2, ..."""
        return f"replica-{self.index + 1}"

    @property
    def app_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports.app}"

    @property
    def dapr_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports.dapr_http}"

    @property
    def metrics_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports.dapr_metrics}/metrics"
