"""The steps' one pool of keep-alive connections to daprd, end to end: the connections are
reused, and a sidecar restart leaves no dead connection behind. The pool's seams into the SDK
are tested without a runtime in tests/plumbing/test_connections.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from daprlab.harness import RunningStack

STEP = "04_runtime_config"
CHATS = 4  # 1 + 2 x 4 chats: 18 messages, under the history cap of 20
TCP_ESTABLISHED = "01"


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


@pytest.mark.e2e
def test_per_call_connections_keep_none_open(lab) -> None:
    """SIDECAR_CONNECTIONS=per-call (the bench's baseline): the SDK's own clients, a new session
    per call to daprd, closed after it; the app answers the same."""
    running = lab(STEP, app_env={"SIDECAR_CONNECTIONS": "per-call"})
    dapr_port = running.stack.instances[0].ports.dapr_http
    before = connections_to(dapr_port)
    for _ in range(CHATS):
        chat(running, "per-call")
        assert connections_to(dapr_port) <= before, "a connection to daprd stayed open"
    history = running.app.get("/chat/per-call/history").json()["messages"]
    assert len(history) == 2 * CHATS
    assert history[-1] == {"role": "assistant", "content": "You said: hi"}
