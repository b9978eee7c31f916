import time

import pytest

pytestmark = pytest.mark.e2e

def test_explore(lab):
    r = lab("03_actor_reentrancy", app_env={"FOLLOW_UP_TIMEOUT_SECONDS": "2"})
    for c in ["hi", "how are you?"]:
        t = time.monotonic()
        resp = r.app.post("/chat/alice", json={"content": c})
        print("ON", resp.status_code, resp.text, round(time.monotonic() - t, 2))
    print(r.app.get("/dapr/config").text)
    print(r.app.get("/reentrancy").text)
    inst = r.stack.instances[0]
    inst.app_env["REENTRANCY_MAX_STACK_DEPTH"] = "1"
    r.restart_app_and_sidecar()
    resp = r.app.post("/chat/alice", json={"content": "deep"})
    print("DEPTH1", resp.status_code, resp.text)
    inst.app_env["REENTRANCY_MAX_STACK_DEPTH"] = "32"
    inst.app_env["REENTRANCY_ENABLED"] = "false"
    r.restart_app_and_sidecar()
    t = time.monotonic()
    resp = r.app.post("/chat/alice", json={"content": "off"})
    print("OFF", resp.status_code, resp.text, round(time.monotonic() - t, 2))
    print(r.app.get("/chat/alice/history").text)
    time.sleep(3)
    print(r.app.get("/chat/alice/history").text)
    print("\n".join(r.log[-60:]))
