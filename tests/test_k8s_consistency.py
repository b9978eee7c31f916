"""One truth across pyproject, Dockerfile, serve script, manifests, Tiltfile, components, README."""

from __future__ import annotations

import fnmatch
import os
import re
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from daprlab import stack
from tests.k8s_validation import (
    COMPONENTS_DIR,
    MANIFEST_DIR,
    REPO_ROOT,
    TILTFILE,
    dapr_documents,
    kubernetes_documents,
    pinned,
    valid_steps,
)

DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
SERVE_SCRIPT = MANIFEST_DIR / "serve.sh"
K8S_README = REPO_ROOT / "README.md"
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
    for needed in ["requirements.lock", "kubernetes/serve.sh", *STEPS]:
        assert any(fnmatch.fnmatchcase(needed, p) for p in allowed), needed
    for private in ["daprlab", "tests", ".venv", ".lab", "pyproject.toml"]:
        assert not any(fnmatch.fnmatchcase(private, p) for p in allowed), private


# ---- The serve script: step by env, one worker, port 8000, no reload ---------------------------


def run_serve(tmp_path: Path, lab_step: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run serve.sh from the repo root with a stand-in `uvicorn` that prints its arguments."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir(exist_ok=True)
    fake = fake_bin / "uvicorn"
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    env = {
        **os.environ,
        "PATH": f"{fake_bin}{os.pathsep}{os.environ['PATH']}",
        "LAB_STEP": lab_step,
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
    ]


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
    assert stack.APP_ID == APP_ID, "the local runner uses the same app id"
    assert f"{APP_ID}||ChatAgent||<id>||history" in K8S_README.read_text()


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


def test_no_remote_address_in_the_kubernetes_path() -> None:
    for path in K8S_FILES:
        for host in URL.findall(path.read_text()):
            assert host.split(":")[0] in LOCAL_HOSTS, f"{path.name} names {host}"


# ---- The root README's Kubernetes section (its links: tests/test_readmes.py) ------------------


def test_readme_has_one_command_per_step() -> None:
    text = K8S_README.read_text()
    assert re.findall(r"^tilt up -- --step (\S+)$", text, re.M) == STEPS
    for step in re.findall(r"--step (\d\d_[a-z_]+)", text):
        assert step in STEPS, f"README names unknown step {step}"


def test_readme_covers_the_learners_path() -> None:
    text = K8S_README.read_text()
    for needed in [
        "tilt args -- --step",
        "curl -s localhost:3500/v1.0/metadata",
        "redis-cli KEYS '*'",
        "tilt down",
        f"--runtime-version {pinned()['dapr-runtime']}",
    ]:
        assert needed in text, needed


def test_readme_names_the_real_namespace_and_resources() -> None:
    text = K8S_README.read_text()
    assert f"(default `{tiltfile_constant('DEFAULT_NAMESPACE')}`)" in text
    for namespace in re.findall(r"kubectl exec -n (\S+)", text):
        assert namespace == tiltfile_constant("DEFAULT_NAMESPACE")
    for workload in re.findall(r"deploy/(\S+)", text):
        assert workload in {d["metadata"]["name"] for d in kubernetes_documents()}
