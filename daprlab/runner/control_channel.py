"""The runner's control channel: `daprlab fault ...` and `daprlab where ...` talk to a running
`daprlab up` over it.

The channel is a loopback TCP port with a per-run token, both in the state directory's
runner.json (readable by its owner only, see daprlab/runner/run_record.py). A request is one
JSON line `{"token", "command", "args"}`, the answer one JSON line `{"ok", "message"}`. The server
hands each request to the runner's main thread (daprlab/runner/runner.py), which carries it out.
"""

from __future__ import annotations

import hmac
import json
import logging
import queue
import secrets
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path

from daprlab.netcheck import LOOPBACK
from daprlab.runner.run_record import read_record

logger = logging.getLogger(__name__)

# How long a client waits for the runner's answer: a `start` waits for readiness (60 s at most).
ANSWER_TIMEOUT_SECONDS = 150
REQUEST_READ_TIMEOUT_SECONDS = 5
CONNECT_TIMEOUT_SECONDS = 5
ACCEPT_POLL_SECONDS = 0.5
MAX_REQUEST_BYTES = 64 * 1024


class ControlError(RuntimeError):
    """A control request that cannot be carried out; the message says why, in one line."""


# ---- the runner's side ------------------------------------------------------------------------
@dataclass
class Request:
    command: str
    args: dict
    answered: threading.Event = field(default_factory=threading.Event)
    ok: bool = False
    message: str = ""


class ControlServer:
    """Accepts requests on a loopback port; hands each to the runner's main thread."""

    def __init__(self) -> None:
        self.token = secrets.token_hex(16)
        self.requests: queue.Queue[Request] = queue.Queue()
        self._socket = socket.create_server((LOOPBACK, 0))
        self._socket.settimeout(ACCEPT_POLL_SECONDS)
        self.port: int = self._socket.getsockname()[1]
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="control", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._closing.set()
        self._thread.join(timeout=ANSWER_TIMEOUT_SECONDS)
        self._socket.close()
        # Whoever still waits hears that the runner stopped.
        while not self.requests.empty():
            request = self.requests.get_nowait()
            request.message = "the runner stopped before carrying this out"
            request.answered.set()

    def _serve(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                self._reply(conn)

    def _reply(self, conn: socket.socket) -> None:
        conn.settimeout(REQUEST_READ_TIMEOUT_SECONDS)
        try:
            raw = conn.makefile("rb").readline(MAX_REQUEST_BYTES)
            data = json.loads(raw)
            if not hmac.compare_digest(str(data.get("token", "")), self.token):
                reply = {"ok": False, "message": "wrong token: read it from this run's runner.json"}
            else:
                request = Request(str(data["command"]), dict(data.get("args", {})))
                self.requests.put(request)
                while not request.answered.wait(ACCEPT_POLL_SECONDS):
                    if self._closing.is_set():
                        break
                reply = {"ok": request.ok, "message": request.message or "the runner stopped"}
            conn.sendall(json.dumps(reply).encode() + b"\n")
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            logger.warning("a control request failed: %s", err)


# ---- the client's side: `daprlab fault` and `daprlab where` -----------------------------------
def ask(state_dir: Path, command: str, args: dict) -> tuple[bool, str]:
    """Send one request to the runner on `state_dir`; (ok, its answer)."""
    record = read_record(state_dir)
    no_runner = (
        f"no `daprlab up` is running on {state_dir}: start one in another terminal "
        "(`uv run daprlab up <step>`)"
    )
    if record is None or not record.control_port:
        raise ControlError(no_runner)
    try:
        with socket.create_connection(
            (LOOPBACK, record.control_port), timeout=CONNECT_TIMEOUT_SECONDS
        ) as conn:
            conn.settimeout(ANSWER_TIMEOUT_SECONDS)
            request = {"token": record.token, "command": command, "args": args}
            conn.sendall(json.dumps(request).encode() + b"\n")
            raw = conn.makefile("rb").readline(MAX_REQUEST_BYTES)
    except ConnectionRefusedError:
        raise ControlError(no_runner) from None
    except OSError as err:
        raise ControlError(f"the runner on {state_dir} did not answer: {err}") from err
    try:
        answer = json.loads(raw)
        return bool(answer["ok"]), str(answer["message"])
    except (ValueError, KeyError, TypeError):
        raise ControlError(f"the runner on {state_dir} gave no answer (did it stop?)") from None
