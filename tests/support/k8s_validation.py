"""Offline checks for the Kubernetes path: YAML loading, Dapr CRD schemas, a stubbed Tilt.

Dapr's CRDs are read from the pinned dapr module in the Go module cache (downloaded with
`go mod download` when absent); they are never copied into this repository.
"""

from __future__ import annotations

import copy
import inspect
import json
import os
import re
import stat
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, NoReturn

import pytest
import starlark
import yaml

from daprlab import runtime, toolchain
from daprlab.paths import REPO_ROOT, steps
from daprlab.versions import pins

TILTFILE = REPO_ROOT / "Tiltfile"
MANIFEST_DIR = REPO_ROOT / "kubernetes"
COMPONENTS_DIR = REPO_ROOT / "components"
TILT_LOCAL_TIMEOUT_SECONDS = 60


class GoMissing(RuntimeError):
    """Go is not installed, so the pinned Dapr CRDs cannot be fetched."""


def yaml_documents(path: Path) -> list[dict[str, Any]]:
    """Every non-empty YAML document of a file."""
    with path.open() as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc]


def yaml_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.yaml"))


def kubernetes_documents() -> list[dict[str, Any]]:
    return [doc for path in yaml_files(MANIFEST_DIR) for doc in yaml_documents(path)]


def dapr_documents() -> list[dict[str, Any]]:
    return [doc for path in yaml_files(COMPONENTS_DIR) for doc in yaml_documents(path)]


# ---- Dapr CRDs from the Go module cache -----------------------------------------------------


@cache
def dapr_module_dir(version: str) -> Path:
    """The unpacked dapr module at `version`, fetched through the Go module proxy if absent.

    Locally it needs a Go at hand (on PATH or the lab's own); CI installs the lab's own if need be.
    """
    if toolchain.find_go() is None and not os.environ.get("CI"):
        raise GoMissing("no Go is at hand: the Dapr CRDs come from the dapr Go module")
    return runtime.dapr_module_dir(version)


def go_missing(err: GoMissing) -> NoReturn:
    """Skip locally with the fix; in CI (which installs Go) a missing Go is a failure."""
    reason = f"{err}; install Go to fetch the pinned dapr module"
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def strict_schema(schema: Any) -> Any:
    """A copy of an OpenAPI schema that rejects unknown fields wherever the fields are declared.

    CRD schemas allow anything not listed; adding `additionalProperties: false` next to each
    `properties` (except where Kubernetes keeps unknown fields on purpose) makes a typo fail.
    """
    schema = copy.deepcopy(schema)

    def tighten(node: Any) -> None:
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                tighten(value)
        elif isinstance(node, list):
            for item in node:
                tighten(item)

    tighten(schema)
    return schema


@dataclass(frozen=True)
class CrdVersion:
    group: str
    kind: str
    version: str
    schema: dict[str, Any]

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"


def dapr_crds(version: str) -> dict[tuple[str, str], CrdVersion]:
    """(apiVersion, kind) -> the CRD schema served for it by Dapr `version`."""
    crd_dir = dapr_module_dir(version) / "charts" / "dapr" / "crds"
    found: dict[tuple[str, str], CrdVersion] = {}
    for path in sorted(crd_dir.glob("*.yaml")):
        for crd in yaml_documents(path):
            if crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd["spec"]
            for served in spec["versions"]:
                if not served.get("served", False):
                    continue
                entry = CrdVersion(
                    group=spec["group"],
                    kind=spec["names"]["kind"],
                    version=served["name"],
                    schema=served["schema"]["openAPIV3Schema"],
                )
                found[(entry.api_version, entry.kind)] = entry
    return found


# The sidecar injector reads each annotation into a field tagged `annotation:"dapr.io/..."`.
INJECTOR_CONFIG = Path("pkg") / "injector" / "patcher" / "sidecar.go"
ANNOTATION_TAG = re.compile(r'`annotation:"(dapr\.io/[^"]+)"')


def injector_annotations(version: str) -> set[str]:
    """The `dapr.io/*` pod annotations that the sidecar injector of Dapr `version` reads."""
    source = (dapr_module_dir(version) / INJECTOR_CONFIG).read_text()
    return set(ANNOTATION_TAG.findall(source))


# How the injector turns dapr.io/app-token-secret (field AppTokenSecret) into daprd's env.
INJECTOR_SIDECAR_CONTAINER = Path("pkg") / "injector" / "patcher" / "sidecar_container.go"
SECURITY_CONSTS = Path("pkg") / "security" / "consts" / "consts.go"
APP_TOKEN_ENV_BLOCK = re.compile(
    r'AppTokenSecret != "" \{.*?Name: securityConsts\.(\w+),.*?Key:\s*"([^"]+)".*?'
    r"Name: c\.AppTokenSecret",
    re.S,
)


def injector_app_token_env(version: str) -> tuple[str, str]:
    """(daprd's env var, the Secret's key) that the pinned injector fills from the Secret named by
    `dapr.io/app-token-secret`."""
    module = dapr_module_dir(version)
    block = APP_TOKEN_ENV_BLOCK.search((module / INJECTOR_SIDECAR_CONTAINER).read_text())
    assert block, f"{INJECTOR_SIDECAR_CONTAINER} no longer reads AppTokenSecret as expected"
    const, key = block.groups()
    value = re.search(rf'\b{const}\s*=\s*"([^"]+)"', (module / SECURITY_CONSTS).read_text())
    assert value, f"{const} not found in {SECURITY_CONSTS}"
    return value.group(1), key


# ---- The Tiltfile, evaluated by a Starlark interpreter with stubbed Tilt builtins --------------


class TiltfileFailed(Exception):
    """The Tiltfile called fail() (Tilt would stop loading it with this message)."""


@dataclass
class TiltRun:
    """What the Tiltfile asked Tilt to do."""

    args: dict[str, str]
    k8s_objects: list[dict[str, Any]] = field(default_factory=list)
    docker_builds: list[dict[str, Any]] = field(default_factory=list)
    k8s_resources: list[dict[str, Any]] = field(default_factory=list)
    local_resources: list[dict[str, Any]] = field(default_factory=list)
    local_commands: list[Any] = field(default_factory=list)
    read_files: list[Path] = field(default_factory=list)
    watched_files: list[Path] = field(default_factory=list)
    printed: list[str] = field(default_factory=list)

    def objects(self, kind: str) -> list[dict[str, Any]]:
        return [obj for obj in self.k8s_objects if obj["kind"] == kind]

    def object(self, kind: str, name: str) -> dict[str, Any]:
        matches = [obj for obj in self.objects(kind) if obj["metadata"]["name"] == name]
        assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
        return matches[0]

    def object_ids(self) -> set[tuple[str, str, str | None]]:
        """(kind, name, namespace) of every object: what `tilt down` would delete."""
        return {
            (o["kind"], o["metadata"]["name"], o["metadata"].get("namespace"))
            for o in self.k8s_objects
        }

    def k8s_resource(self, name: str) -> dict[str, Any]:
        matches = [
            res for res in self.k8s_resources if name in (res.get("workload"), res.get("new_name"))
        ]
        assert len(matches) == 1, f"expected one k8s_resource {name}, found {len(matches)}"
        return matches[0]


class TiltApi:
    """The parameters of each Tilt builtin the Tiltfile calls, as docs.tilt.dev/api.html gives them.

    Only the names (and which are required) matter: a stand-in binds every call to these first, so a
    misspelled keyword fails here as it would in Tilt. Defaults are immutable stand-ins for Tilt's.
    """

    # fmt: off
    @staticmethod
    def define_string(name, args=False, usage=""): ...
    @staticmethod
    def parse(): ...
    @staticmethod
    def local(
        command, quiet=False, command_bat="", echo_off=False, env=None, dir="", stdin=None,
    ): ...
    @staticmethod
    def read_file(file_path, default=None): ...
    @staticmethod
    def watch_file(file_path): ...
    @staticmethod
    def listdir(directory, recursive=False): ...
    @staticmethod
    def decode_json(json): ...
    @staticmethod
    def decode_yaml_stream(yaml): ...
    @staticmethod
    def encode_yaml_stream(objs): ...
    @staticmethod
    def k8s_yaml(yaml, allow_duplicates=False): ...
    @staticmethod
    def k8s_resource(
        workload="", new_name="", port_forwards=(), extra_pod_selectors=(), trigger_mode=None,
        resource_deps=(), objects=(), auto_init=True, pod_readiness="", links=(), labels=(),
        discovery_strategy="",
    ): ...
    @staticmethod
    def local_resource(
        name, cmd, deps=None, trigger_mode=None, resource_deps=(), ignore=(), auto_init=True,
        serve_cmd="", cmd_bat="", serve_cmd_bat="", allow_parallel=False, links=(), labels=(),
        env=None, serve_env=None, readiness_probe=None, dir="", serve_dir="",
    ): ...
    @staticmethod
    def docker_build(
        ref, context, build_args=None, dockerfile="Dockerfile", dockerfile_contents="",
        live_update=(), match_in_env_vars=False, ignore=(), only=(), entrypoint=(), target="",
        ssh="", network="", secret="", extra_tag="", container_args=None, cache_from=(),
        pull=False, platform="", extra_hosts=(),
    ): ...
    @staticmethod
    def sync(local_path, remote_path): ...
    @staticmethod
    def port_forward(local_port, container_port=None, name=None, link_path=None, host=None): ...
    # Starlark's own fail() and print(), as Tilt's interpreter defines them.
    @staticmethod
    def fail(*args, sep=" "): ...
    @staticmethod
    def print(*args, sep=" "): ...
    # fmt: on


def tilt_builtin(
    signature: Callable[..., Any],
) -> Callable[[Callable[[dict[str, Any]], Any]], Callable[..., Any]]:
    """Make `impl(arguments)` callable as the builtin; it gets every argument by name."""
    parameters = inspect.signature(signature)

    def decorate(impl: Callable[[dict[str, Any]], Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            bound = parameters.bind(*args, **kwargs)  # TypeError on an unknown keyword
            bound.apply_defaults()
            return impl(dict(bound.arguments))

        return call

    return decorate


def _resolve(path: str) -> Path:
    """Tilt resolves relative paths against the Tiltfile's folder."""
    return (TILTFILE.parent / path).resolve()


def _builtins(run: TiltRun) -> dict[str, Callable[..., Any]]:
    """Python stand-ins for the Tilt builtins the lab's Tiltfile uses, recording every call."""

    @tilt_builtin(TiltApi.fail)
    def fail(a: dict[str, Any]) -> None:
        raise TiltfileFailed(a["sep"].join(str(v) for v in a["args"]))

    @tilt_builtin(TiltApi.define_string)
    def define_string(a: dict[str, Any]) -> None:
        assert not a["args"], "the lab's options are named flags"

    @tilt_builtin(TiltApi.parse)
    def parse(a: dict[str, Any]) -> dict[str, str]:
        return dict(run.args)

    @tilt_builtin(TiltApi.local)
    def local(a: dict[str, Any]) -> str:
        command = a["command"]
        run.local_commands.append(command)
        result = subprocess.run(
            command,
            shell=isinstance(command, str),
            cwd=_resolve(a["dir"]),
            env={**os.environ, **(a["env"] or {})},
            input=a["stdin"],
            capture_output=True,
            text=True,
            check=False,
            timeout=TILT_LOCAL_TIMEOUT_SECONDS,
        )
        if result.returncode != 0:
            raise TiltfileFailed(f"local({command!r}) failed: {result.stderr}")
        return result.stdout

    @tilt_builtin(TiltApi.read_file)
    def read_file(a: dict[str, Any]) -> str:
        resolved = _resolve(a["file_path"])
        run.read_files.append(resolved)
        if a["default"] is not None and not resolved.exists():
            return a["default"]
        return resolved.read_text()

    @tilt_builtin(TiltApi.watch_file)
    def watch_file(a: dict[str, Any]) -> None:
        run.watched_files.append(_resolve(a["file_path"]))

    @tilt_builtin(TiltApi.listdir)
    def listdir(a: dict[str, Any]) -> list[str]:
        root = _resolve(a["directory"])
        files: Iterator[Path] = root.rglob("*") if a["recursive"] else root.iterdir()
        return sorted(str(p) for p in files if p.is_file())

    @tilt_builtin(TiltApi.decode_json)
    def decode_json(a: dict[str, Any]) -> Any:
        return json.loads(a["json"])

    @tilt_builtin(TiltApi.decode_yaml_stream)
    def decode_yaml_stream(a: dict[str, Any]) -> list[Any]:
        return list(yaml.safe_load_all(a["yaml"]))

    @tilt_builtin(TiltApi.encode_yaml_stream)
    def encode_yaml_stream(a: dict[str, Any]) -> str:
        return yaml.safe_dump_all(a["objs"], sort_keys=False)

    @tilt_builtin(TiltApi.k8s_yaml)
    def k8s_yaml(a: dict[str, Any]) -> None:
        run.k8s_objects.extend(doc for doc in yaml.safe_load_all(a["yaml"]) if doc)

    @tilt_builtin(TiltApi.k8s_resource)
    def k8s_resource(a: dict[str, Any]) -> None:
        run.k8s_resources.append(a)

    @tilt_builtin(TiltApi.local_resource)
    def local_resource(a: dict[str, Any]) -> None:
        run.local_resources.append(a)

    @tilt_builtin(TiltApi.docker_build)
    def docker_build(a: dict[str, Any]) -> None:
        run.docker_builds.append(a)

    @tilt_builtin(TiltApi.sync)
    def sync(a: dict[str, Any]) -> dict[str, str]:
        return {"sync": a["local_path"], "to": a["remote_path"]}

    @tilt_builtin(TiltApi.port_forward)
    def port_forward(a: dict[str, Any]) -> dict[str, Any]:
        return a

    @tilt_builtin(TiltApi.print)
    def tilt_print(a: dict[str, Any]) -> None:
        run.printed.append(a["sep"].join(str(v) for v in a["args"]))

    return {
        "fail": fail,
        "_define_string": define_string,
        "_parse": parse,
        "local": local,
        "read_file": read_file,
        "watch_file": watch_file,
        "listdir": listdir,
        "decode_json": decode_json,
        "decode_yaml_stream": decode_yaml_stream,
        "encode_yaml_stream": encode_yaml_stream,
        "k8s_yaml": k8s_yaml,
        "k8s_resource": k8s_resource,
        "local_resource": local_resource,
        "docker_build": docker_build,
        "sync": sync,
        "port_forward": port_forward,
        "print": tilt_print,
    }


def evaluate_tiltfile(
    args: dict[str, str], subcommand: str = "up", source: str | None = None
) -> TiltRun:
    """Evaluate the Tiltfile as `tilt <subcommand> -- <args>` would, recording what it registers.

    `source` replaces the Tiltfile's text (to show that a broken copy fails). Raises TiltfileFailed
    with fail()'s message; any other Starlark error (a TypeError from a stand-in too) propagates.
    """
    run = TiltRun(args=args)
    module = starlark.Module()
    for name, builtin in _builtins(run).items():
        module.add_callable(name, builtin)
    module["_tilt_subcommand"] = subcommand
    dialect = starlark.Dialect.standard()
    # Tilt's Starlark allows if/for at the top level of a Tiltfile.
    dialect.enable_top_level_stmt = True
    globals_ = starlark.Globals.extended_by([starlark.LibraryExtension.StructType])
    # Tilt's `config` is a module; starlark-pyo3 offers struct() for that.
    prelude = (
        "config = struct(define_string = _define_string, parse = _parse,"
        " tilt_subcommand = _tilt_subcommand)\n"
    )
    text = TILTFILE.read_text() if source is None else source
    try:
        starlark.eval(module, starlark.parse("Tiltfile", prelude + text, dialect), globals_)
    except starlark.StarlarkError as err:
        # A Python exception inside a builtin surfaces as StarlarkError; recover fail()'s message.
        marker = "TiltfileFailed: "
        message = str(err)
        if marker in message:
            raise TiltfileFailed(message.split(marker, 1)[1].splitlines()[0]) from err
        raise
    return run


# ---- Stand-in executables, for the shell scripts of the Kubernetes path ------------------------


def fake_executable(bin_dir: Path, name: str, body: str) -> Path:
    """A `name` in bin_dir that records its argv in `<name>.argv`, then runs the sh `body`."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / name
    path.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "$0.argv"\n{body}\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def recorded_argv(executable: Path) -> list[str] | None:
    """The arguments of the last call to a fake_executable, or None if it never ran."""
    record = executable.with_name(executable.name + ".argv")
    return record.read_text().splitlines() if record.exists() else None


def valid_steps() -> list[str]:
    return steps()


def pinned() -> dict[str, str]:
    p = pins()
    return {"dapr-runtime": p.dapr_runtime, "redis": p.redis, "python": p.python}
