"""Offline checks for the Kubernetes path: YAML loading, Dapr CRD schemas, a stubbed Tilt.

Dapr's CRDs are read from the pinned dapr module in the Go module cache (downloaded with
`go mod download` when absent); they are never copied into this repository.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, NoReturn

import pytest
import starlark
import yaml

from daprlab import runtime
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
    """The unpacked dapr module at `version`, fetched through the Go module proxy if absent."""
    if shutil.which("go") is None:
        raise GoMissing("Go is not installed: the Dapr CRDs come from the dapr Go module")
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

    def k8s_resource(self, name: str) -> dict[str, Any]:
        matches = [
            res for res in self.k8s_resources if name in (res.get("workload"), res.get("new_name"))
        ]
        assert len(matches) == 1, f"expected one k8s_resource {name}, found {len(matches)}"
        return matches[0]


def _resolve(path: str) -> Path:
    """Tilt resolves relative paths against the Tiltfile's folder."""
    return (TILTFILE.parent / path).resolve()


def _builtins(run: TiltRun) -> dict[str, Callable[..., Any]]:
    """Python stand-ins for the Tilt builtins the lab's Tiltfile uses, recording every call."""

    def fail(msg: str) -> None:
        raise TiltfileFailed(msg)

    def define_string(name: str, args: bool = False, usage: str = "") -> None:
        assert not args, "the lab's options are named flags"

    def parse() -> dict[str, str]:
        return dict(run.args)

    def local(command: Any, quiet: bool = False, **kwargs: Any) -> str:
        run.local_commands.append(command)
        result = subprocess.run(
            command,
            shell=isinstance(command, str),
            cwd=TILTFILE.parent,
            capture_output=True,
            text=True,
            check=False,
            timeout=TILT_LOCAL_TIMEOUT_SECONDS,
        )
        if result.returncode != 0:
            raise TiltfileFailed(f"local({command!r}) failed: {result.stderr}")
        return result.stdout

    def read_file(path: str, default: str | None = None) -> str:
        resolved = _resolve(path)
        run.read_files.append(resolved)
        return resolved.read_text()

    def watch_file(path: str) -> None:
        run.watched_files.append(_resolve(path))

    def listdir(path: str, recursive: bool = False) -> list[str]:
        root = _resolve(path)
        files: Iterator[Path] = root.rglob("*") if recursive else root.iterdir()
        return sorted(str(p) for p in files if p.is_file())

    def decode_json(text: str) -> Any:
        return json.loads(text)

    def decode_yaml_stream(text: str) -> list[Any]:
        return list(yaml.safe_load_all(text))

    def encode_yaml_stream(objects: list[Any]) -> str:
        return yaml.safe_dump_all(objects, sort_keys=False)

    def k8s_yaml(blob: str, allow_duplicates: bool = False) -> None:
        run.k8s_objects.extend(doc for doc in yaml.safe_load_all(blob) if doc)

    def k8s_resource(workload: str = "", **kwargs: Any) -> None:
        run.k8s_resources.append({"workload": workload, **kwargs})

    def local_resource(name: str, **kwargs: Any) -> None:
        run.local_resources.append({"name": name, **kwargs})

    def docker_build(ref: str, context: str, **kwargs: Any) -> None:
        run.docker_builds.append({"ref": ref, "context": context, **kwargs})

    def sync(local_path: str, remote_path: str) -> dict[str, str]:
        return {"sync": local_path, "to": remote_path}

    def port_forward(
        local_port: int,
        container_port: int | None = None,
        name: str | None = None,
        link_path: str | None = None,
    ) -> dict[str, Any]:
        return {
            "local_port": local_port,
            "container_port": container_port,
            "name": name,
            "link_path": link_path,
        }

    def tilt_print(*values: Any) -> None:
        run.printed.append(" ".join(str(v) for v in values))

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


# Tilt's `config` is a module; starlark-pyo3 offers struct() for that.
_PRELUDE = "config = struct(define_string = _define_string, parse = _parse)\n"


def evaluate_tiltfile(args: dict[str, str]) -> TiltRun:
    """Evaluate the Tiltfile as `tilt up -- <args>` would, recording what it registers.

    Raises TiltfileFailed with fail()'s message; any other Starlark error propagates.
    """
    run = TiltRun(args=args)
    module = starlark.Module()
    for name, builtin in _builtins(run).items():
        module.add_callable(name, builtin)
    dialect = starlark.Dialect.standard()
    # Tilt's Starlark allows if/for at the top level of a Tiltfile.
    dialect.enable_top_level_stmt = True
    globals_ = starlark.Globals.extended_by([starlark.LibraryExtension.StructType])
    source = _PRELUDE + TILTFILE.read_text()
    try:
        starlark.eval(module, starlark.parse("Tiltfile", source, dialect), globals_)
    except starlark.StarlarkError as err:
        # A Python exception inside a builtin surfaces as StarlarkError; recover fail()'s message.
        marker = "TiltfileFailed: "
        text = str(err)
        if marker in text:
            message = text.split(marker, 1)[1].splitlines()[0]
            raise TiltfileFailed(message) from err
        raise
    return run


def valid_steps() -> list[str]:
    return steps()


def pinned() -> dict[str, str]:
    p = pins()
    return {"dapr-runtime": p.dapr_runtime, "redis": p.redis, "python": p.python}
