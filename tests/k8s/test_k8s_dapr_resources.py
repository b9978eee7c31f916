"""The Dapr resources in components/ against the pinned Dapr release's CRD schemas and semantics."""

from __future__ import annotations

import copy
import re
from typing import Any

import jsonschema
import pytest

from tests.support.k8s_validation import (
    COMPONENTS_DIR,
    REPO_ROOT,
    CrdVersion,
    GoMissing,
    dapr_crds,
    dapr_documents,
    go_missing,
    injector_annotations,
    injector_app_token_env,
    kubernetes_documents,
    pinned,
    strict_schema,
    yaml_documents,
)

DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
GO_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
GO_DURATION_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
MIN_ACTOR_TIMEOUT_SECONDS = 30


@pytest.fixture(scope="module")
def crds() -> dict[tuple[str, str], CrdVersion]:
    try:
        return dapr_crds(pinned()["dapr-runtime"])
    except GoMissing as err:
        go_missing(err)


@pytest.fixture(scope="module")
def known_annotations() -> set[str]:
    try:
        return injector_annotations(pinned()["dapr-runtime"])
    except GoMissing as err:
        go_missing(err)


def dapr_annotations(node: Any) -> set[str]:
    """Every `dapr.io/*` annotation key anywhere in a manifest (pod templates included)."""
    found: set[str] = set()
    if isinstance(node, dict):
        found |= {key for key in node.get("annotations", {}) if key.startswith("dapr.io/")}
        for value in node.values():
            found |= dapr_annotations(value)
    elif isinstance(node, list):
        for item in node:
            found |= dapr_annotations(item)
    return found


def validator_for(doc: dict[str, Any], crds: dict[tuple[str, str], CrdVersion]) -> Any:
    key = (doc["apiVersion"], doc["kind"])
    assert key in crds, f"{key} is not a resource Dapr {pinned()['dapr-runtime']} defines"
    return jsonschema.Draft7Validator(strict_schema(crds[key].schema))


def errors(doc: dict[str, Any], crds: dict[tuple[str, str], CrdVersion]) -> list[str]:
    return [
        f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in validator_for(doc, crds).iter_errors(doc)
    ]


def go_duration_seconds(text: str) -> float:
    parts = GO_DURATION_PART.findall(text)
    assert parts and "".join(n + u for n, u in parts) == text, f"{text!r} is not a Go duration"
    return sum(float(n) * GO_DURATION_SECONDS[u] for n, u in parts)


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for doc in dapr_documents() if doc["kind"] == kind]


def test_the_crds_come_from_the_pinned_release(crds: dict[tuple[str, str], CrdVersion]) -> None:
    assert ("dapr.io/v1alpha1", "Component") in crds
    assert ("dapr.io/v1alpha1", "Resiliency") in crds


@pytest.mark.parametrize("path", sorted(COMPONENTS_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_every_dapr_resource_matches_its_crd_strictly(
    path: Any, crds: dict[tuple[str, str], CrdVersion]
) -> None:
    docs = yaml_documents(path)
    assert docs, f"{path.name} holds no resource"
    for doc in docs:
        assert errors(doc, crds) == []
        name = doc["metadata"]["name"]
        assert DNS_SUBDOMAIN.match(name) and len(name) <= 253, f"bad metadata.name {name!r}"
        assert "namespace" not in doc["metadata"], "the namespace is chosen at deploy time"


def _typo_in_component_target(doc: dict[str, Any]) -> None:
    doc["spec"]["targets"]["components"]["statestore"]["outbound"]["retries"] = "oops"


def _typo_in_component_version(doc: dict[str, Any]) -> None:
    doc["spec"]["verison"] = doc["spec"].pop("version")


def _string_for_an_integer(doc: dict[str, Any]) -> None:
    doc["spec"]["policies"]["retries"]["stateStoreRetry"]["maxRetries"] = "3"


def _typo_in_metadata_item(doc: dict[str, Any]) -> None:
    doc["spec"]["metadata"][0]["envref"] = doc["spec"]["metadata"][0].pop("envRef")


@pytest.mark.parametrize(
    ("kind", "breakage", "raw_crd_catches_it"),
    [
        ("Resiliency", _typo_in_component_target, False),
        ("Component", _typo_in_component_version, True),
        ("Resiliency", _string_for_an_integer, True),
        ("Component", _typo_in_metadata_item, False),
    ],
    ids=lambda v: getattr(v, "__name__", str(v)),
)
def test_a_deliberately_broken_copy_fails(
    kind: str,
    breakage: Any,
    raw_crd_catches_it: bool,
    crds: dict[tuple[str, str], CrdVersion],
) -> None:
    (original,) = by_kind(kind)
    broken = copy.deepcopy(original)
    breakage(broken)
    assert errors(original, crds) == []
    assert errors(broken, crds) != []
    # Where the CRD alone lets the typo through, the strict schema is what catches it.
    raw = crds[(broken["apiVersion"], broken["kind"])].schema
    raw_errors = list(jsonschema.Draft7Validator(raw).iter_errors(broken))
    assert bool(raw_errors) == raw_crd_catches_it


def test_exactly_one_actor_state_store() -> None:
    stores = [
        doc
        for doc in by_kind("Component")
        if doc["spec"]["type"].startswith("state.")
        and any(
            item["name"] == "actorStateStore" and str(item.get("value")).lower() == "true"
            for item in doc["spec"].get("metadata", [])
        )
    ]
    assert [doc["metadata"]["name"] for doc in stores] == ["statestore"]


def test_env_refs_reach_the_sidecar_in_kubernetes() -> None:
    """envRef is resolved by daprd from its own env; the injector fills that from dapr.io/env."""
    refs = {
        item["envRef"]
        for doc in dapr_documents()
        for item in doc["spec"].get("metadata", [])
        if "envRef" in item
    }
    assert refs == {"REDIS_HOST"}
    # daprd refuses env names that start with DAPR_ (pkg/runtime/processor/secret).
    assert not any(ref.upper().startswith("DAPR_") for ref in refs)
    (app,) = [
        d
        for d in kubernetes_documents()
        if d["kind"] == "Deployment" and d["metadata"]["name"] == "chat-agent"
    ]
    env_annotation = app["spec"]["template"]["metadata"]["annotations"]["dapr.io/env"]
    sidecar_env = dict(pair.strip().split("=", 1) for pair in env_annotation.split(","))
    assert refs <= sidecar_env.keys()
    # REDIS_HOST names the lab's Redis Service and port.
    host, port = sidecar_env["REDIS_HOST"].split(":")
    (redis_service,) = [
        d
        for d in kubernetes_documents()
        if d["kind"] == "Service" and d["metadata"]["name"] == host
    ]
    assert int(port) in [p["port"] for p in redis_service["spec"]["ports"]]


@pytest.fixture(scope="module")
def resiliency() -> dict[str, Any]:
    (doc,) = by_kind("Resiliency")
    return doc


def test_actors_have_no_target_at_all(resiliency: dict[str, Any]) -> None:
    """No actor target: on Dapr 1.18 an actor timeout turns a success into a 500 after the work
    (dapr/dapr#10140), and an actor retry re-runs a method that is not idempotent. The file says
    why, so that nobody adds one back."""
    assert "actors" not in resiliency["spec"]["targets"]
    text = (REPO_ROOT / "components" / "resiliency.yaml").read_text()
    assert "dapr/dapr#10140" in text and "ACTOR_CALL_TIMEOUT_SECONDS" in text


def test_no_default_retry_policy_sneaks_in(resiliency: dict[str, Any]) -> None:
    # daprd applies a retry named Default*RetryPolicy to every target without its own policy.
    retries = resiliency["spec"]["policies"].get("retries", {})
    assert not [name for name in retries if name.startswith("Default")]


def test_all_timeouts_are_generous(resiliency: dict[str, Any]) -> None:
    for name, value in resiliency["spec"]["policies"]["timeouts"].items():
        assert go_duration_seconds(value) >= MIN_ACTOR_TIMEOUT_SECONDS, name


def test_referenced_policies_and_targets_exist(resiliency: dict[str, Any]) -> None:
    policies = resiliency["spec"]["policies"]
    defined = {
        "timeout": policies.get("timeouts", {}).keys(),
        "retry": policies.get("retries", {}).keys(),
        "circuitBreaker": policies.get("circuitBreakers", {}).keys(),
    }
    targets = resiliency["spec"]["targets"]
    uses: list[dict[str, Any]] = list(targets.get("actors", {}).values())
    uses += list(targets.get("apps", {}).values())
    for component in targets.get("components", {}).values():
        uses += [component.get("inbound", {}), component.get("outbound", {})]
    for use in uses:
        for key, names in defined.items():
            if key in use:
                assert use[key] in names, f"{key} {use[key]!r} is not defined"
    component_names = {doc["metadata"]["name"] for doc in by_kind("Component")}
    assert targets.get("components", {}).keys() <= component_names


def test_state_store_retries_are_bounded(resiliency: dict[str, Any]) -> None:
    outbound = resiliency["spec"]["targets"]["components"]["statestore"]["outbound"]
    retry = resiliency["spec"]["policies"]["retries"][outbound["retry"]]
    assert retry["policy"] in ("constant", "exponential")
    assert 0 < retry["maxRetries"] <= 5


def test_every_dapr_annotation_is_one_the_injector_reads(known_annotations: set[str]) -> None:
    # The injector's source was read: the annotations every Dapr app needs are in it.
    assert {"dapr.io/enabled", "dapr.io/app-id", "dapr.io/app-port"} <= known_annotations
    used = dapr_annotations(kubernetes_documents())
    assert "dapr.io/app-id" in used
    assert used - known_annotations == set(), "the injector ignores unknown annotations silently"


@pytest.mark.parametrize(
    "typo", ["dapr.io/app-prot", "dapr.io/log_level", "dapr.io/sidecar-cpu-requests"]
)
def test_a_misspelled_dapr_annotation_is_caught(typo: str, known_annotations: set[str]) -> None:
    broken = copy.deepcopy(kubernetes_documents())
    (app,) = [
        d for d in broken if d["kind"] == "Deployment" and d["metadata"]["name"] == "chat-agent"
    ]
    app["spec"]["template"]["metadata"]["annotations"][typo] = "x"
    assert dapr_annotations(broken) - known_annotations == {typo}


def test_daprd_and_the_app_get_the_app_token_from_one_secret() -> None:
    """The injector gives daprd the Secret's key as APP_API_TOKEN; the app reads the same key."""
    try:
        daprd_env, secret_key = injector_app_token_env(pinned()["dapr-runtime"])
    except GoMissing as err:
        go_missing(err)
    (app,) = [
        d
        for d in kubernetes_documents()
        if d["kind"] == "Deployment" and d["metadata"]["name"] == "chat-agent"
    ]
    template = app["spec"]["template"]
    secret = template["metadata"]["annotations"]["dapr.io/app-token-secret"]
    (container,) = [c for c in template["spec"]["containers"] if c["name"] == "app"]
    (app_env,) = [e for e in container["env"] if e["name"] == daprd_env]
    assert daprd_env == "APP_API_TOKEN"  # what main.py reads
    assert app_env["valueFrom"]["secretKeyRef"] == {"name": secret, "key": secret_key}
