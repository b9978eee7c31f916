"""The steps' one pool of keep-alive connections to daprd, and the SDK internals it relies on.

The unit tests fail loudly when the SDK changes under the one override (`_client` of
DaprActorHttpClient); the end-to-end tests show the connections are reused, and that a sidecar
restart leaves no dead connection behind.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from dapr.clients import DaprActorHttpClient
from dapr.clients.health import DaprHealth
from dapr.clients.http.client import DaprHttpClient

from daprlab.harness import RunningStack
from daprlab.paths import steps
from tests.steps import load_step

STEP = "04_runtime_config"
CHATS = 4  # 1 + 2 x 4 chats: 18 messages, under the history cap of 20
TCP_ESTABLISHED = "01"


def test_the_sdk_actor_client_sends_every_call_through_its_client_attribute() -> None:
    source = inspect.getsource(DaprActorHttpClient)
    assert "self._client = DaprHttpClient(" in source, "the SDK no longer builds `_client`"
    methods = [
        name
        for name, member in inspect.getmembers(DaprActorHttpClient, inspect.iscoroutinefunction)
        if not name.startswith("_")
    ]
    assert len(methods) == 7, methods
    for name in methods:
        body = inspect.getsource(getattr(DaprActorHttpClient, name))
        assert "await self._client.send_bytes(" in body, f"{name} no longer uses `_client`"


@pytest.mark.parametrize("step", steps())
def test_send_bytes_takes_what_the_sdk_passes(step: str) -> None:
    module = load_step(step)
    ours = inspect.signature(module.SharedSessionHttpClient.send_bytes).parameters
    sdk = inspect.signature(DaprHttpClient.send_bytes).parameters
    assert list(ours) == list(sdk)


@pytest.mark.parametrize("step", steps())
def test_the_actor_client_holds_the_shared_session_client(
    step: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(DaprHealth, "wait_until_ready", staticmethod(lambda: None))
    module = load_step(step)
    client = module.SharedSessionActorClient(module.SERIALIZER, 7)
    assert isinstance(client._client, module.SharedSessionHttpClient)
    assert client._client.timeout_seconds == 7


def connections_to(port: int) -> set[int]:
    """Local ports of the established TCP connections to `port` on loopback (IPv4)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, remote, state = line.split()[1:4]
        if state == TCP_ESTABLISHED and int(remote.split(":")[1], 16) == port:
            found.add(int(local.split(":")[1], 16))
    return found


def chat(running: RunningStack, actor: str) -> None:
    resp = running.app.post(f"/chat/{actor}", json={"content": "hi"})
    assert resp.status_code == 200, resp.text


@pytest.mark.e2e
def test_chats_reuse_connections_and_survive_a_sidecar_restart(lab) -> None:
    running = lab(STEP)
    dapr_port = running.stack.instances[0].ports.dapr_http
    chat(running, "pooled")
    first = connections_to(dapr_port)
    assert first, "no connection from the app to daprd stays open"
    for _ in range(CHATS):
        chat(running, "pooled")
    assert connections_to(dapr_port) == first, "the chats opened new connections to daprd"

    # Only daprd goes away and comes back on its ports: the app keeps running.
    inst = running.stack.instances[0]
    assert inst.daprd is not None
    inst.daprd.stop()
    assert not connections_to(dapr_port)
    running.stack.start_sidecar(inst)
    running.stack.wait_outbound(inst)
    running.stack.wait_ready(inst)
    for _ in range(CHATS):
        chat(running, "pooled")
    history = running.app.get("/chat/pooled/history").json()["messages"]
    assert len(history) == 2 * (2 * CHATS + 1)
    assert history[-1] == {"role": "assistant", "content": "You said: hi"}
