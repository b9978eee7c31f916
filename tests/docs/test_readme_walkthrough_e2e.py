"""A learner's walk through the step READMEs: every command prints what the README shows.

Each README's "Run" and "Try it" sections are played as written (see tests/support/readme_check.py):
the stack starts with the settings each `daprlab up` gives, every command runs with bash, every
output is compared, and the log lines under "What to look for" must be in that run's logs.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from daprlab.harness import RunningStack
from daprlab.paths import step_dir, steps
from daprlab.runtime import Runtime
from daprlab.wait import wait_for
from tests.support import readme_check, walkthrough

pytestmark = pytest.mark.e2e
# The slowest README command waits for a deadlock to time out (FOLLOW_UP_TIMEOUT_SECONDS).
COMMAND_TIMEOUT_SECONDS = 60
# A quoted log line follows the command that causes it within a second or two.
LOG_TIMEOUT_SECONDS = 15


@dataclass
class Machine:
    """A learner's machine: stacks started one after another, all on the same Redis and
    scheduler data (`daprlab up` keeps them in .lab/ across Ctrl-C and restarts)."""

    lab: Callable[..., RunningStack]
    state_dir: Path
    # The Dapr release under test: a README block for other releases is not played.
    version: str
    stacks: list[RunningStack] = field(default_factory=list)
    running: RunningStack | None = None

    def up(self, step: str, env: dict[str, str]) -> RunningStack:
        if self.running is not None:
            self.running.stop()
        self.running = self.lab(step, app_env=env, state_dir=self.state_dir)
        self.stacks.append(self.running)
        return self.running

    def run(self, command: str) -> str:
        """Run a README command against the running stack, on the test's ports."""
        assert self.running is not None, f"a command before any `daprlab up`: {command}"
        ports = self.running.stack.instances[0].ports
        command = command.replace("localhost:8000", f"localhost:{ports.app}")
        command = command.replace("localhost:3500", f"localhost:{ports.dapr_http}")
        # `daprlab up` keeps its state (the app token among it) in .lab/; the test's stacks here.
        command = command.replace(".lab/", f"{self.state_dir}/")
        done = subprocess.run(
            ["bash", "-o", "pipefail", "-c", command],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
        )
        assert done.returncode == 0, f"{command}\nexit {done.returncode}: {done.stderr}"
        return done.stdout


@pytest.fixture
def machine(lab: Callable[..., RunningStack], tmp_path: Path, dapr_runtime: Runtime) -> Machine:
    # The lab fixture stops every stack and prints their output when the test fails.
    return Machine(lab, tmp_path, dapr_runtime.version)


def follow_readme(machine: Machine, step: str) -> None:
    """Do what the step's README says, and check that everything it shows is what happens."""
    text = (step_dir(step) / "README.md").read_text()
    first_stack = len(machine.stacks)

    def up(start: readme_check.Start) -> None:
        assert start.step == step, f"{step}/README.md starts {start.step}"
        assert not start.options, f"{step}/README.md gives `daprlab up` options: {start.options}"
        machine.up(step, start.env)

    steps_played = readme_check.walkthrough(text, version=machine.version)
    walkthrough.play(steps_played, up, machine.run)
    stacks = machine.stacks[first_stack:]
    assert stacks, f"{step}/README.md never starts the stack"
    for block in readme_check.log_blocks(text, version=machine.version):
        whole = block.process == readme_check.APP_LOG
        wait_for(
            lambda: any(
                readme_check.in_order(block.lines, s.logs(block.process), whole)  # noqa: B023
                for s in stacks
            ),
            LOG_TIMEOUT_SECONDS,
            f"these lines, in order, in one {block.process} log of {step}: {block.lines}",
        )


# The walk in order below starts with step 01 on a fresh machine already.
@pytest.mark.parametrize("step", steps()[1:])
def test_a_step_readme_on_a_fresh_machine(machine: Machine, step: str) -> None:
    follow_readme(machine, step)


def test_the_step_readmes_in_order_on_one_machine(machine: Machine) -> None:
    """Redis and scheduler data carry over from step to step: each step's ids are its own."""
    for step in steps():
        follow_readme(machine, step)
    # The data did carry over: the last step's stack still has the first step's conversations.
    assert machine.running is not None
    for actor_id in readme_check.actor_ids((step_dir(steps()[0]) / "README.md").read_text()):
        resp = machine.running.app.get(f"/chat/{actor_id}/history")
        assert resp.status_code == 200 and resp.json()["messages"], resp.text
