"""Every README stays true: sections, curl paths, quoted defaults, log lines and links."""

from __future__ import annotations

import re

import pytest

from daprlab.paths import REPO_ROOT, step_dir, steps
from tests import readme_check
from tests.steps import load_step

STEPS = steps()


def readme(step: str) -> str:
    return (step_dir(step) / "README.md").read_text()


def route_matches(route: str, methods: set[str], method: str, path: str) -> bool:
    pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", route) + "$"
    return method in methods and re.match(pattern, path) is not None


@pytest.mark.parametrize("step", STEPS)
def test_readme_has_the_fixed_sections_in_order(step: str) -> None:
    assert readme_check.headings(readme(step)) == readme_check.SECTIONS


@pytest.mark.parametrize("step", STEPS)
def test_readme_curl_paths_exist_as_routes(step: str) -> None:
    # The OpenAPI paths include the routes the SDK's DaprActor adds (e.g. /dapr/config).
    paths = load_step(step).app.openapi()["paths"]
    routes = {path: {method.upper() for method in ops} for path, ops in paths.items()}
    exchanges = readme_check.exchanges(readme(step))
    assert exchanges, f"{step}/README.md has no curl command"
    for exchange in exchanges:
        for method, port, path in readme_check.curl_routes(exchange.command):
            if port == "3500":
                assert path.startswith("/v1.0/"), exchange.command
                continue
            assert any(route_matches(r, ms, method, path) for r, ms in routes.items()), (
                f"{method} {path} is not a route"
            )


@pytest.mark.parametrize("step", STEPS)
def test_readme_defaults_match_the_code(step: str) -> None:
    code = (step_dir(step) / "main.py").read_text()
    defaults = readme_check.env_defaults(readme(step))
    assert defaults, f"{step}/README.md has no settings table"
    for name, value in defaults.items():
        # Settings are read with env_int/env_flag (a switch's "true" is True in the code).
        in_code = value.capitalize() if value in ("true", "false") else value
        read = re.compile(rf'env_(?:int|flag)\("{name}", {re.escape(in_code)}[,)]')
        assert read.search(code) or f'os.environ.get("{name}", "{value}")' in code, (
            f"{name} default {value!r} not in code"
        )


@pytest.mark.parametrize("step", STEPS)
def test_readme_log_lines_come_from_the_code(step: str) -> None:
    patterns = readme_check.log_patterns((step_dir(step) / "main.py").read_text())
    lines = readme_check.log_lines(readme(step))
    assert lines, f"{step}/README.md quotes no log line"
    for line in lines:
        assert any(p.search(line) for p in patterns), f"log line not produced by the code: {line}"


@pytest.mark.parametrize("folder", [*STEPS, "."])
def test_readme_links_resolve(folder: str) -> None:
    base = REPO_ROOT / folder
    for target in readme_check.relative_links((base / "README.md").read_text(), base):
        assert target.exists(), f"{folder}/README.md links to missing {target}"


def test_root_readme_maps_every_step() -> None:
    text = (REPO_ROOT / "README.md").read_text()
    for step in STEPS:
        assert f"[{step}]({step}/)" in text or f"]({step}/README.md)" in text, step
