"""The command lines (argv and env) of the stack's programs: placement, the scheduler, daprd and
an app under uvicorn. Redis' own is short and stays with its start (daprlab/stack/stack.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from daprlab import scheduler_flags
from daprlab.netcheck import LOOPBACK
from daprlab.runtime import Runtime
from daprlab.stack.ports import ControlPorts, Instance

APP_ID = "chat-agent"
LOG_LEVEL_ENV = "LOG_LEVEL"
# daprd sends this env var's value to the app as the dapr-api-token header; the app refuses
# actor callbacks without it, so only this stack's sidecar can call them.
APP_API_TOKEN_ENV = "APP_API_TOKEN"
SCHEDULER_NODE = "dapr-scheduler-server-0"


def uvicorn_argv(app: str, app_dir: Path, port: int, log_level: str = "") -> list[str]:
    """How the lab serves an app: one worker; uvloop and httptools, which uvicorn picks up by
    itself; the access log only at LOG_LEVEL=DEBUG (a line per request costs CPU under load)."""
    argv = [
        sys.executable, "-m", "uvicorn", app,
        "--app-dir", str(app_dir),
        "--host", LOOPBACK,
        "--port", str(port),
        "--workers", "1",
    ]  # fmt: skip
    return argv if log_level.strip().upper() == "DEBUG" else [*argv, "--no-access-log"]


def placement_argv(runtime: Runtime, ports: ControlPorts, log_level: str) -> list[str]:
    return [
        runtime.path("placement"),
        "--port", str(ports.placement),
        "--listen-address", LOOPBACK,
        "--healthz-port", str(ports.placement_health),
        "--initial-cluster", f"dapr-placement-0={LOOPBACK}:{ports.placement_raft}",
        "--enable-metrics=false",
        # GET /placement/state on the healthz port: the hosts `daprlab where` hashes over.
        "--metadata-enabled",
        "--log-level", log_level,
    ]  # fmt: skip


def scheduler_argv(runtime: Runtime, ports: ControlPorts, data: Path, log_level: str) -> list[str]:
    """The scheduler's command line, with the etcd flags of the runtime's release."""
    return [
        runtime.path("scheduler"),
        "--port", str(ports.scheduler),
        "--listen-address", LOOPBACK,
        "--healthz-port", str(ports.scheduler_health),
        "--enable-metrics=false",
        "--etcd-data-dir", str(data),
        *scheduler_flags.etcd_args(
            runtime.version,
            SCHEDULER_NODE,
            peer_url=f"http://localhost:{ports.scheduler_etcd_peer}",
            client_port=ports.scheduler_etcd_client,
        ),
        "--log-level", log_level,
    ]  # fmt: skip


def daprd_argv(
    runtime: Runtime, inst: Instance, control: ControlPorts, resources: Path, log_level: str
) -> list[str]:
    ports = inst.ports
    return [
        runtime.path("daprd"),
        "--app-id", APP_ID,
        "--app-port", str(ports.app),
        "--app-protocol", "http",
        "--app-channel-address", LOOPBACK,
        "--dapr-http-port", str(ports.dapr_http),
        "--dapr-grpc-port", str(ports.dapr_grpc),
        "--dapr-internal-grpc-port", str(ports.dapr_internal),
        "--dapr-listen-addresses", LOOPBACK,
        "--placement-host-address", f"{LOOPBACK}:{control.placement}",
        "--scheduler-host-address", f"{LOOPBACK}:{control.scheduler}",
        "--resources-path", str(resources),
        "--enable-metrics=true",
        "--metrics-port", str(ports.dapr_metrics),
        "--metrics-listen-address", LOOPBACK,
        "--log-level", log_level,
    ]  # fmt: skip


def daprd_env(redis_port: int, app_api_token: str, namespace: str = "") -> dict[str, str]:
    env = {
        # daprd exits on a host with no non-loopback address unless told which IP to use.
        "DAPR_HOST_IP": LOOPBACK,
        # components/statestore.yaml reads the Redis address from here (envRef).
        "REDIS_HOST": f"{LOOPBACK}:{redis_port}",
        APP_API_TOKEN_ENV: app_api_token,
    }
    if namespace:
        env["NAMESPACE"] = namespace
    return env


def app_argv(step_dir: Path, inst: Instance) -> list[str]:
    log_level = inst.app_env.get(LOG_LEVEL_ENV, os.environ.get(LOG_LEVEL_ENV, ""))
    return uvicorn_argv("main:app", step_dir, inst.ports.app, log_level)


def app_env(inst: Instance, app_api_token: str) -> dict[str, str]:
    """Where the SDK finds daprd, the token daprd sends, then the instance's own settings."""
    return {
        "DAPR_RUNTIME_HOST": LOOPBACK,
        "DAPR_HTTP_PORT": str(inst.ports.dapr_http),
        "DAPR_GRPC_PORT": str(inst.ports.dapr_grpc),
        "PYTHONUNBUFFERED": "1",
        APP_API_TOKEN_ENV: app_api_token,
        **inst.app_env,
    }
