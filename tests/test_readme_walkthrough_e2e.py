"""A learner's walk through each step README: its curl commands give the outputs it shows."""

from __future__ import annotations

import subprocess

import pytest

from daprlab.paths import step_dir, steps
from tests import readme_check

pytestmark = pytest.mark.e2e
CURL_TIMEOUT_SECONDS = 60


@pytest.mark.parametrize("step", steps())
def test_readme_commands_print_what_the_readme_says(lab, step: str) -> None:
    running = lab(step)
    app_port = running.stack.instances[0].ports.app
    dapr_port = running.stack.instances[0].ports.dapr_http
    text = (step_dir(step) / "README.md").read_text()
    for exchange in readme_check.exchanges(text):
        command = exchange.command.replace("localhost:8000", f"localhost:{app_port}")
        command = command.replace("localhost:3500", f"localhost:{dapr_port}")
        out = subprocess.run(
            ["bash", "-c", command], capture_output=True, text=True, timeout=CURL_TIMEOUT_SECONDS
        )
        assert out.returncode == 0, f"{exchange.command}\n{out.stderr}"
        if exchange.expected is not None:
            assert out.stdout.strip() == exchange.expected, exchange.command
