"""The four main.py files are the same base agent: only the marked feature blocks differ."""

from __future__ import annotations

import re

import pytest

from daprlab.paths import step_dir, steps

FEATURE_BLOCK = re.compile(r"^[ \t]*# >>> feature: (\S+)\n.*?^[ \t]*# <<< feature\n", re.S | re.M)
EXPECTED_STEPS = [
    "01_actor_timers",
    "02_actor_reminders",
    "03_actor_reentrancy",
    "04_runtime_config",
]


def source(step: str) -> str:
    return (step_dir(step) / "main.py").read_text()


def test_the_four_steps_exist() -> None:
    assert steps() == EXPECTED_STEPS


@pytest.mark.parametrize("step", EXPECTED_STEPS)
def test_feature_blocks_are_named_after_their_step(step: str) -> None:
    names = FEATURE_BLOCK.findall(source(step))
    assert names, f"{step}/main.py has no feature block"
    assert set(names) == {step}
    assert source(step).count("# >>> feature") == source(step).count("# <<< feature")


def base_of(step: str) -> str:
    """The file without its feature blocks; runs of blank lines (ruff's spacing around a block
    that is there in one step and not in another) count as one."""
    return re.sub(r"\n{3,}", "\n\n", FEATURE_BLOCK.sub("", source(step))).strip("\n")


def test_removing_feature_blocks_leaves_the_same_base() -> None:
    bases = {step: base_of(step) for step in EXPECTED_STEPS}
    first = bases[EXPECTED_STEPS[0]]
    for step, base in bases.items():
        assert base == first, (
            f"{step}/main.py differs from {EXPECTED_STEPS[0]} outside its feature blocks"
        )
