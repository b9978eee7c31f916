"""The scheduler's etcd flags follow the runtime's release: 1.14's names, and 1.15's renamed ones.

The 1.15+ names are those of dapr/dapr `cmd/scheduler/options/options.go` at v1.15.0 and v1.18.3
(read from the source, not run here); the 1.14 names are also checked against the pinned binary.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from daprlab import scheduler_flags
from daprlab.runtime import Runtime
from daprlab.stack.ports import ControlPorts
from daprlab.stack.stack import Stack, StackConfig

NODE = "dapr-scheduler-server-0"
PEER = "http://localhost:52380"
HELP_TIMEOUT_SECONDS = 10


@pytest.mark.parametrize("version", ["1.14.0", "1.14.4", "v1.14.4", "1.14.5-rc.1"])
def test_1_14_names_the_client_port_per_node(version: str) -> None:
    assert scheduler_flags.etcd_args(version, NODE, PEER, 52379) == [
        "--initial-cluster", f"{NODE}={PEER}",
        "--etcd-client-ports", f"{NODE}=52379",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "version", ["1.15.0", "1.15.0-rc.1", "1.16.2", "1.17.7", "1.18.3", "2.0.0"]
)
def test_1_15_and_later_take_the_renamed_flags_and_the_port_alone(version: str) -> None:
    assert scheduler_flags.etcd_args(version, NODE, PEER, 52379) == [
        "--etcd-initial-cluster", f"{NODE}={PEER}",
        "--etcd-client-port", "52379",
    ]  # fmt: skip


@pytest.mark.parametrize("version", ["1.13.6", "0.11.0"])
def test_a_runtime_without_a_scheduler_is_refused(version: str) -> None:
    with pytest.raises(ValueError, match=rf"Dapr {version} has no scheduler.*1\.14 or newer"):
        scheduler_flags.etcd_flags(version)


@pytest.mark.parametrize("version", ["", "latest", "1", "one.two.three"])
def test_a_version_that_is_not_one_is_named(version: str) -> None:
    with pytest.raises(ValueError, match="not a Dapr version"):
        scheduler_flags.release(version)


@pytest.mark.parametrize(
    ("version", "etcd", "not_passed"),
    [
        ("1.14.4", ["--initial-cluster", f"{NODE}={PEER}", "--etcd-client-ports", f"{NODE}=7"],
         "--etcd-initial-cluster"),
        ("1.16.0", ["--etcd-initial-cluster", f"{NODE}={PEER}", "--etcd-client-port", "7"],
         "--initial-cluster"),
    ],
)  # fmt: skip
def test_the_stack_passes_the_flags_of_its_runtime(
    tmp_path: Path, version: str, etcd: list[str], not_passed: str
) -> None:
    ports = ControlPorts(*range(1, 9))
    ports.scheduler_etcd_client, ports.scheduler_etcd_peer = 7, 52380
    stack = Stack(
        StackConfig("01_actor_timers", tmp_path, control_ports=ports),
        Runtime(version, tmp_path / "bin"),
        lambda _name, _line: None,
    )
    argv = stack.scheduler_argv(tmp_path / "scheduler")
    assert argv[0] == str(tmp_path / "bin" / "scheduler")
    start = argv.index(etcd[0])
    assert argv[start : start + len(etcd)] == etcd
    assert not_passed not in argv
    # A flag that kept its name is passed on every release.
    assert argv[argv.index("--etcd-data-dir") + 1] == str(tmp_path / "scheduler")


@pytest.mark.e2e
def test_the_scheduler_under_test_knows_the_flags_chosen_for_it(dapr_runtime: Runtime) -> None:
    """The table's names for the runtime under test (the pin in CI) are those the real binary
    lists in its --help."""
    shown = subprocess.run(
        [dapr_runtime.path("scheduler"), "--help"],
        capture_output=True,
        text=True,
        timeout=HELP_TIMEOUT_SECONDS,
        check=False,
    )
    usage = shown.stdout + shown.stderr
    flags = scheduler_flags.etcd_flags(dapr_runtime.version)
    for name in (flags.initial_cluster, flags.client_port):
        assert f"{name} " in usage, f"{name} is not in `scheduler --help`:\n{usage}"
