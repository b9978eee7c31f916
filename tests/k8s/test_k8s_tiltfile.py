"""The Tiltfile, evaluated offline with stubbed Tilt builtins: every step, `tilt down`, bad
arguments, and its Dapr install script run against stand-ins for kubectl and dapr."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import kubernetes_validate
import pytest
import starlark

from daprlab import netcheck, releases
from daprlab.wait import wait_for
from tests.support.k8s_validation import (
    COMPONENTS_DIR,
    MANIFEST_DIR,
    REPO_ROOT,
    TILTFILE,
    GoMissing,
    TiltfileFailed,
    TiltRun,
    dapr_crds,
    evaluate_tiltfile,
    fake_executable,
    go_missing,
    pinned,
    recorded_argv,
    strict_schema,
    valid_steps,
    yaml_documents,
)

STEPS = valid_steps()
PLUMBING = "lab_plumbing"  # the package every step's main.py imports
APP_ID = "chat-agent"
DEFAULT_NAMESPACE = "dapr-lab"
SIDECAR_HTTP_PORT = 3500
SIDECAR_METRICS_PORT = 9090
CONSOLE_METRICS_PORT = 19090
SERVE_SCRIPT = "/usr/local/bin/lab-serve"
OPERATOR_QUERY = [
    "get",
    "deployment",
    "dapr-operator",
    "-n",
    "dapr-system",
    "-o",
    "jsonpath={.spec.template.spec.containers[0].image}",
]


def app_container(run: TiltRun) -> dict[str, Any]:
    deploy = run.object("Deployment", APP_ID)
    (app,) = [c for c in deploy["spec"]["template"]["spec"]["containers"] if c["name"] == "app"]
    return app


def lab_step(run: TiltRun) -> str:
    values = [e["value"] for e in app_container(run)["env"] if e["name"] == "LAB_STEP"]
    assert len(values) == 1, "LAB_STEP must be set exactly once"
    return values[0]


@pytest.fixture(scope="module", params=STEPS)
def step_run(request: pytest.FixtureRequest) -> tuple[str, TiltRun]:
    return request.param, evaluate_tiltfile({"step": request.param})


def test_steps_are_discovered() -> None:
    assert STEPS, "no step folder found"


def test_each_step_runs_in_the_one_image(step_run: tuple[str, TiltRun]) -> None:
    step, run = step_run
    assert lab_step(run) == step
    (build,) = run.docker_builds
    assert app_container(run)["image"] == build["ref"]
    # One image holds every step: its context carries all step folders.
    assert set(STEPS) <= set(build["only"])
    assert "requirements.lock" in build["only"]
    assert PLUMBING in build["only"]  # every step imports it
    assert build["build_args"] == {"PYTHON_VERSION": pinned()["python"]}


def test_only_the_chosen_step_is_live_updated(step_run: tuple[str, TiltRun]) -> None:
    step, run = step_run
    (build,) = run.docker_builds
    # With the plumbing every step imports: an edit there reloads the step too.
    assert build["live_update"] == [
        {"sync": f"./{PLUMBING}", "to": f"/app/{PLUMBING}"},
        {"sync": f"./{step}", "to": f"/app/{step}"},
    ]
    entrypoint = build["entrypoint"]
    assert entrypoint[:2] == ["sh", SERVE_SCRIPT]
    assert entrypoint[2:] == ["--reload", "--reload-dir", step, "--reload-dir", PLUMBING]


def test_applies_every_manifest_and_dapr_resource(step_run: tuple[str, TiltRun]) -> None:
    _, run = step_run
    expected = {
        (doc["kind"], doc["metadata"]["name"])
        for folder in (MANIFEST_DIR, COMPONENTS_DIR)
        for path in folder.glob("*.yaml")
        for doc in yaml_documents(path)
    }
    applied = {(o["kind"], o["metadata"]["name"]) for o in run.k8s_objects}
    assert applied == expected | {("Namespace", DEFAULT_NAMESPACE)}
    for obj in run.k8s_objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == DEFAULT_NAMESPACE
    read = set(run.read_files)
    assert set(MANIFEST_DIR.glob("*.yaml")) | set(COMPONENTS_DIR.glob("*.yaml")) <= read


def test_applied_objects_are_valid(step_run: tuple[str, TiltRun]) -> None:
    _, run = step_run
    try:
        crds = dapr_crds(pinned()["dapr-runtime"])
    except GoMissing as err:
        go_missing(err)
    for obj in run.k8s_objects:
        if obj["apiVersion"].startswith("dapr.io/"):
            schema = strict_schema(crds[(obj["apiVersion"], obj["kind"])].schema)
            jsonschema.Draft7Validator(schema).validate(obj)
        else:
            kubernetes_validate.validate(obj, "1.37.0", strict=True)


def test_installs_the_pinned_dapr_with_mtls_on(step_run: tuple[str, TiltRun]) -> None:
    _, run = step_run
    (dapr,) = [r for r in run.local_resources if r["name"] == "dapr"]
    assert dapr["env"] == {
        "DAPR_RUNTIME_VERSION": pinned()["dapr-runtime"],
        # The releases the lab runs on (daprlab/releases.py): one in the cluster is used.
        "DAPR_MAJOR": str(releases.OLDEST_SUPPORTED[0]),
        "DAPR_OLDEST_MINOR": str(releases.OLDEST_SUPPORTED[1]),
        "DAPR_NEWEST_MINOR": str(releases.NEWEST_SUPPORTED[1]),
    }
    script = " ".join(dapr["cmd"])
    assert 'dapr init -k --runtime-version "$DAPR_RUNTIME_VERSION" --wait' in script
    assert "mtls" not in script.lower(), "mTLS stays at its default: on"
    assert "http://" not in script and "https://" not in script


def test_port_forwards_app_and_sidecar_metadata(step_run: tuple[str, TiltRun]) -> None:
    _, run = step_run
    forwards = {
        (f["local_port"], f["container_port"]): f["link_path"]
        for f in run.k8s_resource(APP_ID)["port_forwards"]
    }
    assert forwards == {
        (8000, 8000): "/docs",
        (SIDECAR_HTTP_PORT, SIDECAR_HTTP_PORT): "/v1.0/metadata",
        (CONSOLE_METRICS_PORT, SIDECAR_METRICS_PORT): "/metrics",
    }


def console_resource(run: TiltRun) -> dict[str, Any]:
    (console,) = [r for r in run.local_resources if r["name"] == "console"]
    return console


def option(argv: list[str], name: str) -> list[str]:
    """Every value of `--name VALUE` in argv."""
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == name]


def test_the_console_reads_the_port_forwards_and_the_pod_logs(
    step_run: tuple[str, TiltRun],
) -> None:
    step, run = step_run
    console = console_resource(run)
    argv = console["serve_cmd"]
    assert argv[:4] == ["uv", "run", "daprlab", "console"]
    assert option(argv, "--step") == [step]
    assert console["links"] == [f"http://127.0.0.1:{option(argv, '--port')[0]}/"]
    assert set(console["resource_deps"]) == {APP_ID, "redis"}
    redis_forward = {
        (f["local_port"], f["container_port"]) for f in run.k8s_resource("redis")["port_forwards"]
    }
    assert redis_forward == {(int(option(argv, "--redis-port")[0]), 6379)}
    assert option(argv, "--dapr-url") == [f"http://127.0.0.1:{SIDECAR_HTTP_PORT}"]
    assert option(argv, "--metrics-url") == [f"http://127.0.0.1:{CONSOLE_METRICS_PORT}/metrics"]
    assert option(argv, "--log") == [
        f"{container}=kubectl logs -f deploy/{APP_ID} -c {container} -n {DEFAULT_NAMESPACE}"
        for container in ("app", "daprd")
    ]


FAKE_KUBECTL_LINES = {
    "app": [
        "INFO:     ChatAgent alice activated",
        "INFO:     ChatAgent alice recorded message 1",
        "INFO:     timer tick 1: ChatAgent alice has 2 messages",
        "INFO:     a line it never saw",
    ],
    "daprd": ['time="2026-01-01T10:00:00Z" level=info msg="Placement tables updated"'],
}  # fmt: skip


def test_the_console_command_runs_offline_on_kubectl_logs(tmp_path: Path) -> None:
    """The Tiltfile's console command, run against a stand-in kubectl (and no cluster): it
    follows both logs, shows their events, and says the sidecar and Redis do not answer."""
    argv = console_resource(evaluate_tiltfile({"step": STEPS[0]}))["serve_cmd"]
    port, closed = netcheck.free_port(), netcheck.free_port()
    replaced = {
        "--port": str(port),
        "--app-url": f"http://127.0.0.1:{closed}",
        "--dapr-url": f"http://127.0.0.1:{closed}",
        "--metrics-url": f"http://127.0.0.1:{closed}/metrics",
        "--redis-port": str(closed),
    }
    command = [sys.executable, "-m", "daprlab"] + [
        replaced.get(argv[i - 1], arg) for i, arg in enumerate(argv) if i >= 3
    ]
    cases = "\n".join(
        f'  *"-c {name} "*) printf "%s\\n" {" ".join(repr(line) for line in lines)} ;;'
        for name, lines in FAKE_KUBECTL_LINES.items()
    )
    kubectl = fake_executable(
        tmp_path / "bin",
        "kubectl",
        f'echo "$*" >> "$0.calls"\ncase "$* " in\n{cases}\nesac\nexec sleep 600',
    )
    proc = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env={**os.environ, "PATH": f"{kubectl.parent}:{os.environ['PATH']}"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        snapshot = wait_for(
            lambda: (s := console_snapshot(port)) and len(s["events"]) >= 3 and s,
            60,
            "the console's events from the kubectl logs",
        )
        summary = wait_for(
            lambda: (
                (s := console_snapshot(port)) and {"sidecar", "redis"} <= set(s["sources"]) and s
            ),
            30,
            "the console's reads",
        )
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    kinds = [(e["kind"], e["actor"]) for e in snapshot["events"]]
    assert kinds[:3] == [
        ("activated", "ChatAgent alice"),
        ("message recorded", "ChatAgent alice"),
        ("timer tick", "ChatAgent alice"),
    ], output
    assert summary["unparsed"] == 1
    assert summary["sources"]["sidecar"]["ok"] is False
    assert f"127.0.0.1:{closed}/v1.0/metadata" in summary["sources"]["sidecar"]["detail"]
    assert summary["sources"]["redis"]["ok"] is False
    assert summary["processes"]["app log"] is True and summary["processes"]["daprd"] is False
    calls = (kubectl.parent / "kubectl.calls").read_text().splitlines()
    assert sorted(calls) == [
        f"logs -f deploy/{APP_ID} -c {c} -n {DEFAULT_NAMESPACE}" for c in ("app", "daprd")
    ]
    assert proc.returncode == 130, output


def console_snapshot(port: int) -> dict[str, Any] | None:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/api/snapshot", timeout=5).json()
    except httpx.HTTPError:
        return None


def test_resource_dependencies_are_declared(step_run: tuple[str, TiltRun]) -> None:
    _, run = step_run
    names = {r["name"] for r in run.local_resources}
    names |= {r.get("new_name") or r["workload"] for r in run.k8s_resources}
    for resource in run.k8s_resources:
        assert set(resource.get("resource_deps", [])) <= names
    assert {"dapr", "redis", "dapr-resources"} <= set(run.k8s_resource(APP_ID)["resource_deps"])
    # Components and Resiliency need the CRDs that the Dapr install brings.
    dapr_resources = run.k8s_resource("dapr-resources")
    assert "dapr" in dapr_resources["resource_deps"]
    dapr_objects = {
        f"{o['metadata']['name']}:{o['kind'].lower()}"
        for o in run.k8s_objects
        if o["apiVersion"].startswith("dapr.io/")
    }
    assert set(dapr_resources["objects"]) == dapr_objects
    # Redis' data claim belongs to the redis resource (created with it, shown under it).
    claims = {
        f"{o['metadata']['name']}:persistentvolumeclaim"
        for o in run.objects("PersistentVolumeClaim")
    }
    assert claims == {"redis-data:persistentvolumeclaim"}
    assert set(run.k8s_resource("redis")["objects"]) == claims
    # Workloads configured by name exist as Deployments.
    deployments = {o["metadata"]["name"] for o in run.objects("Deployment")}
    assert {r["workload"] for r in run.k8s_resources if r["workload"]} <= deployments


def test_the_app_token_secret_is_made_before_the_app(step_run: tuple[str, TiltRun]) -> None:
    _, run = step_run
    (token,) = [r for r in run.local_resources if r["name"] == "app-token"]
    annotations = run.object("Deployment", APP_ID)["spec"]["template"]["metadata"]["annotations"]
    assert token["env"] == {
        "APP_TOKEN_SECRET": annotations["dapr.io/app-token-secret"],
        "NAMESPACE": DEFAULT_NAMESPACE,
    }
    assert "app-token" in run.k8s_resource(APP_ID)["resource_deps"]
    assert token["resource_deps"] == ["namespace"]


def test_pins_are_read_from_pyproject(step_run: tuple[str, TiltRun]) -> None:
    _, run = step_run
    assert any("pyproject.toml" == p.name for p in run.watched_files)
    assert f"dapr={pinned()['dapr-runtime']}" in run.printed[-1]


@pytest.mark.parametrize("bad", ["", "nope", "01_actor_timer", "../01_actor_timers", "tests"])
def test_unknown_step_fails_listing_the_valid_ones(bad: str) -> None:
    with pytest.raises(TiltfileFailed) as failure:
        evaluate_tiltfile({"step": bad})
    message = str(failure.value)
    assert "unknown step" in message
    for step in STEPS:
        assert step in message


def test_namespace_and_replicas_are_arguments() -> None:
    run = evaluate_tiltfile({"step": STEPS[-1], "namespace": "lab-two", "replicas": "3"})
    assert run.object("Deployment", APP_ID)["spec"]["replicas"] == 3
    assert run.object("Deployment", "redis")["spec"]["replicas"] == 1
    assert {o["metadata"]["name"] for o in run.objects("Namespace")} == {"lab-two"}
    for obj in run.k8s_objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "lab-two"


def test_default_namespace_is_not_created_or_deleted() -> None:
    run = evaluate_tiltfile({"step": STEPS[0], "namespace": "default"})
    assert run.objects("Namespace") == []
    assert all("namespace" not in r.get("resource_deps", []) for r in run.k8s_resources)


@pytest.mark.parametrize("replicas", ["0", "two", "-1", "1.5"])
def test_bad_replicas_fail(replicas: str) -> None:
    with pytest.raises(TiltfileFailed, match="replicas"):
        evaluate_tiltfile({"step": STEPS[0], "replicas": replicas})


@pytest.mark.parametrize("namespace", ["Lab", "lab_one", "-lab", "lab-", "a" * 64])
def test_bad_namespace_fails(namespace: str) -> None:
    with pytest.raises(TiltfileFailed, match="namespace"):
        evaluate_tiltfile({"step": STEPS[0], "namespace": namespace})


def test_options_left_out_fall_back_to_their_defaults() -> None:
    """Why `tilt args` must repeat them: it replaces every argument, and the Tiltfile keeps none."""
    run = evaluate_tiltfile({"step": STEPS[-1]})
    assert run.object("Deployment", APP_ID)["spec"]["replicas"] == 1
    assert {o["metadata"]["name"] for o in run.objects("Namespace")} == {DEFAULT_NAMESPACE}


# ---- plain `tilt up`, as the course says it: the first step, and how to pick another ---------


@pytest.mark.parametrize("options", [{}, {"namespace": "lab-two", "replicas": "2"}])
def test_tilt_up_without_a_step_runs_the_first_step(options: dict[str, str]) -> None:
    run = evaluate_tiltfile(options)
    assert lab_step(run) == STEPS[0]
    first = evaluate_tiltfile({"step": STEPS[0], **options})
    assert run.k8s_objects == first.k8s_objects
    (build,) = run.docker_builds
    assert build["live_update"][-1] == {"sync": f"./{STEPS[0]}", "to": f"/app/{STEPS[0]}"}


def test_tilt_up_without_a_step_says_how_to_pick_another() -> None:
    (hint,) = [line for line in evaluate_tiltfile({}).printed if "no --step given" in line]
    assert f"running the first step, {STEPS[0]}" in hint
    assert "`tilt args -- --step NAME`" in hint
    for step in STEPS:
        assert step in hint


def test_a_chosen_step_gets_no_hint() -> None:
    for step in STEPS:
        printed = evaluate_tiltfile({"step": step}).printed
        assert not [line for line in printed if "no --step given" in line], step


# ---- tilt down: the same objects as tilt up, with no step given ------------------------------


@pytest.mark.parametrize(
    "options", [{}, {"namespace": "lab-two"}, {"namespace": "default", "replicas": "2"}]
)
def test_tilt_down_needs_no_step_and_finds_what_up_applied(options: dict[str, str]) -> None:
    down = evaluate_tiltfile(options, subcommand="down")
    assert down.object_ids()
    assert not [line for line in down.printed if "no --step given" in line]
    for step in STEPS:
        up = evaluate_tiltfile({"step": step, **options})
        assert down.object_ids() == up.object_ids(), step


def test_tilt_down_still_refuses_an_unknown_step() -> None:
    with pytest.raises(TiltfileFailed, match="unknown step"):
        evaluate_tiltfile({"step": "nope"}, subcommand="down")


# ---- The stand-ins take exactly Tilt's parameters, so a misspelled keyword fails --------------


@pytest.mark.parametrize(
    ("written", "misspelled"),
    [
        (
            'resource_deps = ["dapr"] + setup_deps',
            'resource_dep = ["dapr"] + setup_deps',
        ),  # k8s_resource
        ("env = DAPR_INSTALL_ENV", "envs = DAPR_INSTALL_ENV"),  # local_resource
        ("build_args = {", "build_arg = {"),  # docker_build
        ('link_path = "/docs"', 'link = "/docs"'),  # port_forward
        ("quiet = True", "quite = True"),  # local
        ('usage = "step folder', 'help = "step folder'),  # config.define_string
    ],
)
def test_a_misspelled_keyword_fails_the_evaluation(written: str, misspelled: str) -> None:
    text = TILTFILE.read_text()
    assert text.count(written) == 1, f"the Tiltfile no longer says {written!r}"
    with pytest.raises(starlark.StarlarkError, match="unexpected keyword argument"):
        evaluate_tiltfile({"step": STEPS[0]}, source=text.replace(written, misspelled))


# ---- The Dapr install script, run with stand-ins for kubectl and dapr -------------------------


def run_dapr_install(
    tmp_path: Path, operator_image: str | None, dapr_exit: int = 0
) -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    """Run the `dapr` local_resource's command; kubectl reports `operator_image` (None: absent)."""
    (dapr,) = [
        r for r in evaluate_tiltfile({"step": STEPS[0]}).local_resources if r["name"] == "dapr"
    ]
    bin_dir = tmp_path / "bin"
    if operator_image is None:
        kubectl_body = (
            "echo 'Error from server (NotFound): deployments \"dapr-operator\"' >&2; exit 1"
        )
    else:
        kubectl_body = f"echo '{operator_image}'"
    kubectl = fake_executable(bin_dir, "kubectl", kubectl_body)
    dapr_cli = fake_executable(bin_dir, "dapr", f"exit {dapr_exit}")
    result = subprocess.run(
        dapr["cmd"],
        cwd=REPO_ROOT,
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", **dapr["env"]},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result, kubectl, dapr_cli


@pytest.mark.parametrize("registry", ["", "localhost:5000/"])
def test_dapr_install_leaves_the_pinned_version_alone(tmp_path: Path, registry: str) -> None:
    pin = pinned()["dapr-runtime"]
    result, kubectl, dapr_cli = run_dapr_install(tmp_path, f"{registry}dapr/operator:{pin}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"Dapr {pin} is installed in dapr-system: the lab uses it "
        f"(it runs on Dapr 1.14 to 1.18; its CI tests {pin})."
    )
    assert recorded_argv(kubectl) == OPERATOR_QUERY
    assert recorded_argv(dapr_cli) is None


@pytest.mark.parametrize("installed", ["1.16.5", "1.18.3", "1.17.0-mariner"])
def test_dapr_install_uses_a_supported_release_already_in_the_cluster(
    tmp_path: Path, installed: str
) -> None:
    """What `dapr init -k` gave a learner (the newest release) is used, not replaced by the pin."""
    result, _, dapr_cli = run_dapr_install(tmp_path, f"daprio/operator:{installed}")
    assert result.returncode == 0, result.stderr
    version = installed.split("-")[0]
    assert result.stdout.startswith(f"Dapr {version} is installed in dapr-system: the lab uses it")
    assert recorded_argv(dapr_cli) is None, "never installs over a supported control plane"


def test_dapr_install_installs_the_pin_when_dapr_is_absent(tmp_path: Path) -> None:
    pin = pinned()["dapr-runtime"]
    result, kubectl, dapr_cli = run_dapr_install(tmp_path, None)
    assert result.returncode == 0, result.stderr
    assert f"No Dapr in dapr-system: installing the lab's pin, {pin}." in result.stdout
    assert recorded_argv(kubectl) == OPERATOR_QUERY
    assert recorded_argv(dapr_cli) == [
        "init", "-k", "--runtime-version", pin, "--wait", "--timeout", "600"
    ]  # fmt: skip


def test_dapr_install_fails_when_dapr_init_fails(tmp_path: Path) -> None:
    result, _, dapr_cli = run_dapr_install(tmp_path, None, dapr_exit=3)
    assert result.returncode != 0
    assert recorded_argv(dapr_cli) is not None


@pytest.mark.parametrize("installed", ["1.13.0", "1.19.0", "2.14.0", "edge"])
def test_dapr_install_refuses_an_unsupported_release_and_says_how_to_fix_it(
    tmp_path: Path, installed: str
) -> None:
    pin = pinned()["dapr-runtime"]
    result, _, dapr_cli = run_dapr_install(tmp_path, f"dapr/operator:{installed}")
    assert result.returncode == 1
    assert recorded_argv(dapr_cli) is None, "never upgrades or uninstalls on its own"
    assert (
        f"Dapr {installed} is installed, but this lab runs on Dapr 1.14 to 1.18 (its pin: {pin})"
    ) in result.stderr
    assert f"dapr upgrade -k --runtime-version {pin}" in result.stderr
    assert "dapr uninstall -k" in result.stderr


# ---- The app token Secret, made with a stand-in for kubectl ------------------------------------


def run_app_token_create(tmp_path: Path, secret_exists: bool) -> tuple[Path, Path]:
    """Run the `app-token` local_resource's command; returns kubectl and the stdin it was given."""
    (token,) = [
        r for r in evaluate_tiltfile({"step": STEPS[0]}).local_resources if r["name"] == "app-token"
    ]
    stdin = tmp_path / "kubectl.stdin"
    get_exit = 0 if secret_exists else 1
    body = f'case "$1" in get) exit {get_exit};; create) cat > "{stdin}";; esac'
    kubectl = fake_executable(tmp_path / "bin", "kubectl", body)
    result = subprocess.run(
        token["cmd"],
        cwd=REPO_ROOT,
        env={
            **os.environ,
            "PATH": f"{kubectl.parent}{os.pathsep}{os.environ['PATH']}",
            **token["env"],
        },
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return kubectl, stdin


def test_app_token_is_created_random_and_without_a_newline(tmp_path: Path) -> None:
    kubectl, stdin = run_app_token_create(tmp_path, secret_exists=False)
    assert recorded_argv(kubectl) == [
        "create", "secret", "generic", "chat-agent-app-token", "-n", DEFAULT_NAMESPACE,
        "--from-file=token=/dev/stdin",
    ]  # fmt: skip
    token = stdin.read_text()
    # 32 random bytes, URL-safe: valid in an HTTP header, never on kubectl's command line.
    assert len(token) >= 43 and token.strip() == token and token.isascii()
    again = run_app_token_create(tmp_path / "again", secret_exists=False)[1].read_text()
    assert again != token


def test_an_existing_app_token_is_kept(tmp_path: Path) -> None:
    kubectl, stdin = run_app_token_create(tmp_path, secret_exists=True)
    assert recorded_argv(kubectl) == [
        "get", "secret", "chat-agent-app-token", "-n", DEFAULT_NAMESPACE
    ]  # fmt: skip
    assert not stdin.exists()
