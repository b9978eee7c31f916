"""Every page a learner may open stays true without a runtime: its links and #anchors resolve, the
repository paths it names exist, its `daprlab`, `pytest` and `python -m` commands are ones the
lab accepts, and the root README stays a short map that links every page under docs/.

The walkthroughs (tests/docs/test_readme_walkthrough_e2e.py, tests/runner/test_experiments_e2e.py)
run the step READMEs' and EXPERIMENTS.md's commands; tests/k8s/test_k8s_consistency.py evaluates
every `tilt` command of docs/kubernetes.md and of the root README.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import re
import shlex
import subprocess
from functools import cache
from pathlib import Path

import pytest

from daprlab import cli
from daprlab.paths import REPO_ROOT, steps
from tests.support import readme_check

ROOT_README = REPO_ROOT / "README.md"
ROOT_README_MAX_PROSE_WORDS = 1_100
DOCS = readme_check.documents(REPO_ROOT, steps())
DOC_IDS = [str(page.relative_to(REPO_ROOT)) for page in DOCS]
# What a command in a page stands for with a placeholder: `<step>`, `<actor id>`, `<seconds>`.
PLACEHOLDER = re.compile(r"<([^>]+)>(?:\.\.\.)?")
PLACEHOLDER_VALUES = {"step": steps()[0], "seconds": "5"}
PLACEHOLDER_DEFAULT = "alice"
# "`uv run daprlab fault ...`": the shape of a command, not one to parse.
ELLIPSIS = " ..."
LAYOUT = REPO_ROOT / "docs" / "layout.md"


@cache
def repo_files() -> frozenset[str]:
    """The repository's files: tracked, or new and not ignored (.lab/ and the like are not)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    return frozenset(name for name in listed if (REPO_ROOT / name).exists())


def in_repo(path: str) -> bool:
    """A file or folder of the repository (a `*` matches as in a shell)."""
    path = path.rstrip("/")
    return any(
        fnmatch.fnmatch(name, path) or fnmatch.fnmatch(name, f"{path}/*") for name in repo_files()
    )


def top_level() -> set[str]:
    return {name.split("/")[0] for name in repo_files()}


def expansions(command: str) -> list[list[str]]:
    """The argument lists a page's command stands for: placeholders filled in, and one list per
    alternative of `a|b|c`."""
    command = PLACEHOLDER.sub(
        lambda m: PLACEHOLDER_VALUES.get(m.group(1), PLACEHOLDER_DEFAULT), command
    )
    found: list[list[str]] = [[]]
    for word in shlex.split(command):
        options = word.split("|") if "|" in word else [word]
        found = [[*args, option] for args in found for option in options]
    return found


@pytest.mark.parametrize("page", DOCS, ids=DOC_IDS)
def test_links_and_anchors_resolve(page: Path) -> None:
    text = page.read_text()
    for target, anchor in readme_check.links(text):
        linked = (page.parent / target).resolve() if target else page
        assert linked.exists(), f"{page.name} links to missing {target}"
        if anchor:
            assert linked.suffix == ".md", f"{page.name}: #{anchor} on {target}, not a page"
            assert anchor in readme_check.anchors(linked.read_text()), (
                f"{page.name} links to #{anchor}, which {linked.name} has no heading for"
            )


@pytest.mark.parametrize("page", DOCS, ids=DOC_IDS)
def test_backticked_repo_paths_exist(page: Path) -> None:
    roots = top_level()
    for path in readme_check.repo_paths(page.read_text()):
        if "/" in path:
            if path.split("/")[0] not in roots:
                continue  # a path elsewhere: Dapr's sources, a URL, the runner's .lab/
            assert in_repo(path), f"{page.name} names `{path}`, which is not in the repository"
        else:
            assert any(name.split("/")[-1] == path for name in repo_files()), (
                f"{page.name} names `{path}`, which no file of the repository is called"
            )
    for path, test_name in re.findall(r"`([\w/.-]+\.py)::(\w+)`", page.read_text()):
        assert re.search(rf"^def {test_name}\(", (REPO_ROOT / path).read_text(), re.M), (
            f"{page.name} names {path}::{test_name}, which is not a test there"
        )


@pytest.mark.parametrize("page", DOCS, ids=DOC_IDS)
def test_commands_are_ones_the_lab_accepts(page: Path) -> None:
    parser = cli.build_parser()
    for command in readme_check.commands_in(page.read_text()):
        if command.endswith(ELLIPSIS):
            continue
        for args in expansions(command):
            if args[:3] == ["uv", "run", "daprlab"]:
                try:
                    parsed = parser.parse_args(args[3:])
                except SystemExit:
                    pytest.fail(f"{page.name}: `{command}` does not parse: {' '.join(args)}")
                if parsed.command == "up":
                    assert parsed.step in steps(), f"{page.name}: `{command}` names no step"
            elif args[:3] == ["uv", "run", "pytest"]:
                rest = args[3:]
                for before, arg in zip(["", *rest], rest, strict=False):
                    if not arg.startswith("-") and before != "-k":
                        path = arg.split("::")[0]
                        assert in_repo(path), f"{page.name}: `{command}` runs missing {path}"
            else:
                module = args[args.index("-m") + 1]
                assert importlib.util.find_spec(module), f"{page.name}: no module {module}"


def test_root_readme_is_a_short_map() -> None:
    words = readme_check.prose_words(ROOT_README.read_text())
    assert words <= ROOT_README_MAX_PROSE_WORDS, f"README.md: {words} prose words"


def test_root_readme_links_every_page_under_docs() -> None:
    linked = {target for target, _ in readme_check.links(ROOT_README.read_text())}
    for page in sorted((REPO_ROOT / readme_check.DOCS_DIR).glob("*.md")):
        assert f"{readme_check.DOCS_DIR}/{page.name}" in linked, f"README.md never links {page}"


def test_every_path_in_the_layout_exists() -> None:
    (block,) = readme_check.blocks(LAYOUT.read_text())
    for line in block.body.splitlines():
        first = line.split()[0]
        if first.endswith("/") and "..." in line.split()[1]:
            assert in_repo(first) and in_repo(line.split()[2]), line  # `01_x/ ... 04_y/`
        else:
            assert in_repo(first), f"docs/layout.md names {first}, which is not in the repository"


def test_anchors_are_githubs() -> None:
    text = "# A `dapr init` of 1.15, or later\n## Run\n## Run\n```text\n# not a heading\n```\n"
    assert readme_check.anchors(text) == {"a-dapr-init-of-115-or-later", "run", "run-1"}


def test_commands_are_read_from_code_and_blocks() -> None:
    fence = "```"
    text = (
        "Run `uv run daprlab fault pause|stop\n<name>` or `uv run pytest tests/k8s`.\n"
        f"{fence}bash\nX=1 uv run daprlab where a-{{1..3}} > out.txt && uv run daprlab steps\n"
        f"{fence}\n"
    )
    assert readme_check.commands_in(text) == [
        "uv run daprlab fault pause|stop <name>",
        "uv run pytest tests/k8s",
        "uv run daprlab where a-{1..3}",
        "uv run daprlab steps",
    ]
    assert expansions("uv run daprlab fault pause|stop <name>") == [
        ["uv", "run", "daprlab", "fault", "pause", PLACEHOLDER_DEFAULT],
        ["uv", "run", "daprlab", "fault", "stop", PLACEHOLDER_DEFAULT],
    ]
