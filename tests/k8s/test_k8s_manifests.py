"""The Kubernetes manifests in kubernetes/ against the Kubernetes API schemas (strict, offline)."""

from __future__ import annotations

import copy
import socket
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from fastapi.testclient import TestClient

from daprlab.stack import redis_persistence
from tests.support.k8s_validation import (
    MANIFEST_DIR,
    dapr_documents,
    kubernetes_documents,
    pinned,
    valid_steps,
    yaml_documents,
)
from tests.support.steps import load_step

# The oldest and newest Kubernetes schemas kubernetes-validate ships: local clusters vary.
KUBERNETES_VERSIONS = ("1.25.0", "1.37.0")
APP_ID = "chat-agent"
APP_PORT = 8000


def validate(doc: dict[str, Any], version: str) -> None:
    kubernetes_validate.validate(doc, version, strict=True)


def deployment(name: str) -> dict[str, Any]:
    (doc,) = [
        d
        for d in kubernetes_documents()
        if d["kind"] == "Deployment" and d["metadata"]["name"] == name
    ]
    return doc


def container(deploy: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [c for c in deploy["spec"]["template"]["spec"]["containers"] if c["name"] == name]
    return found


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", sorted(MANIFEST_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_every_manifest_is_valid_kubernetes(path: Path, version: str) -> None:
    docs = yaml_documents(path)
    assert docs
    for doc in docs:
        validate(doc, version)
        assert "namespace" not in doc["metadata"], "the namespace is chosen at deploy time"


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: d["spec"].update(replica=d["spec"].pop("replicas")),
        lambda d: d["spec"]["template"]["spec"]["containers"][0]["ports"][0].update(
            containerPort="8000"
        ),
        lambda d: d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"].update(
            httpGet={"path": "/healthz", "prot": 8000}
        ),
    ],
    ids=["typo-replicas", "port-as-string", "typo-in-probe"],
)
def test_a_deliberately_broken_deployment_fails(breakage: Any) -> None:
    broken = copy.deepcopy(deployment(APP_ID))
    breakage(broken)
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken, KUBERNETES_VERSIONS[-1])


def test_app_is_a_dapr_app_with_the_lab_id_and_port() -> None:
    annotations = deployment(APP_ID)["spec"]["template"]["metadata"]["annotations"]
    assert annotations["dapr.io/enabled"] == "true"
    assert annotations["dapr.io/app-id"] == APP_ID
    assert annotations["dapr.io/app-port"] == str(APP_PORT)
    assert annotations["dapr.io/log-level"] in ("debug", "info", "warn", "error")
    # No Dapr Configuration: the actor runtime config comes from the app (GET /dapr/config).
    assert "dapr.io/config" not in annotations
    kinds = {d["kind"] for d in kubernetes_documents() + dapr_documents()}
    assert "Configuration" not in kinds


@pytest.mark.parametrize("step", valid_steps())
def test_probes_and_actor_config_are_served_without_a_sidecar(step: str) -> None:
    """The probes must not wait on daprd: /healthz and /dapr/config answer before it is up."""
    module = load_step(step)
    with socket.socket() as unused:
        # A bound port that does not listen refuses connections: no sidecar answers there.
        unused.bind(("127.0.0.1", 0))
        module.sidecar.url = f"http://127.0.0.1:{unused.getsockname()[1]}"
        with TestClient(module.app) as client:
            assert client.get("/healthz").status_code == 200
            config = client.get("/dapr/config")
            assert not module.sidecar.registered.is_set(), "the actors are not registered yet"
    assert config.status_code == 200
    assert config.json()["entities"]


def test_app_probes_use_healthz_on_the_app_port() -> None:
    app = container(deployment(APP_ID), "app")
    ports = {p["name"]: p["containerPort"] for p in app["ports"]}
    assert ports == {"http": APP_PORT}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert app[probe]["httpGet"] == {"path": "/healthz", "port": "http"}, probe


def test_app_runs_as_the_images_non_root_user_with_requests() -> None:
    app = container(deployment(APP_ID), "app")
    security = app["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] != 0
    assert security["allowPrivilegeEscalation"] is False
    assert {"cpu", "memory"} <= app["resources"]["requests"].keys()


def test_app_picks_its_step_by_env_not_by_image() -> None:
    app = container(deployment(APP_ID), "app")
    env = {e["name"]: e.get("value") for e in app["env"]}
    assert env["LAB_STEP"] in valid_steps(), "applied without the Tiltfile, it must still serve"
    assert ":" not in app["image"], "Tilt (or you) tags the one lab image; no per-step tags"
    assert "command" not in app and "args" not in app, "the image's command serves LAB_STEP"


def test_services_select_their_pods_and_name_ports() -> None:
    docs = kubernetes_documents()
    for service in [d for d in docs if d["kind"] == "Service"]:
        (target,) = [
            d
            for d in docs
            if d["kind"] == "Deployment"
            and d["spec"]["template"]["metadata"]["labels"].items()
            >= service["spec"]["selector"].items()
        ]
        container_ports = {
            p["name"]
            for c in target["spec"]["template"]["spec"]["containers"]
            for p in c.get("ports", [])
        }
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in container_ports
    (app_service,) = [d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == APP_ID]
    assert [p["port"] for p in app_service["spec"]["ports"]] == [APP_PORT]


def test_redis_is_the_pinned_official_image() -> None:
    redis = container(deployment("redis"), "redis")
    assert redis["image"] == f"redis:{pinned()['redis']}"
    assert redis["readinessProbe"]["exec"]["command"] == ["redis-cli", "ping"]


def test_redis_keeps_every_answered_write_on_a_persistent_volume() -> None:
    """The local runner's default setting, on a claim: a container restart (liveness probe,
    memory limit) and a rescheduled pod keep the data; Recreate, as the volume is ReadWriteOnce."""
    deploy = deployment("redis")
    redis = container(deploy, "redis")
    assert redis["args"] == redis_persistence.ARGS[redis_persistence.FSYNC_ALWAYS]
    assert deploy["spec"]["strategy"] == {"type": "Recreate"}
    (mount,) = redis["volumeMounts"]
    assert mount["mountPath"] == "/data"  # the official image's working directory
    (volume,) = [
        v for v in deploy["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"]
    ]
    assert volume["persistentVolumeClaim"] == {"claimName": "redis-data"}
    (claim,) = [
        d
        for d in kubernetes_documents()
        if d["kind"] == "PersistentVolumeClaim" and d["metadata"]["name"] == "redis-data"
    ]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    text = (MANIFEST_DIR / "redis.yaml").read_text()
    assert "emptyDir" not in text and "as long as the pod" not in text
