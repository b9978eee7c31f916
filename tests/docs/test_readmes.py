"""Every README stays true: sections, curl paths, quoted defaults, durations and names, log lines
and links."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Callable
from datetime import timedelta
from types import ModuleType

import pytest
from fastapi.openapi.utils import get_openapi

from daprlab.paths import REPO_ROOT, step_dir, steps
from daprlab.stack.command_lines import APP_ID
from tests.support import readme_check
from tests.support.steps import RecordingActorClient, actor_of, app_source, load_step

STEPS = steps()
# Durations the READMEs spell out in words.
SPOKEN_SECONDS = {"an hour": 3600, "one second": 1}
LEARNERS_PATH_MAX_WORDS = 800
ACTOR_IDS_SECTION = "Actor ids and first-run outputs"
NEWER_DAPR_HEADING = "## On a newer Dapr"
VERSIONS_DOC = REPO_ROOT / "docs" / "versions.md"


def readme(step: str) -> str:
    return (step_dir(step) / "README.md").read_text()


def step_as_run(step: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The step's main.py with the settings its README's "Run" section starts it with."""
    for name, value in readme_check.first_run_env(readme(step)).items():
        monkeypatch.setenv(name, value)
    return load_step(step)


def seconds(delta: timedelta) -> str:
    return str(int(delta.total_seconds()))


def go_duration(delta: timedelta) -> str:
    """How daprd (Go's time.Duration) prints a whole number of seconds: 1h0m0s, 1m30s, 10s."""
    hours, rest = divmod(int(delta.total_seconds()), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


# (step, the README's words with one group, what the code as run says the group must be).
def reminder_period_sent(step: ModuleType) -> str:
    """The `period`, as JSON, that the step's actor sends to the sidecar to arm its expiry."""
    client = RecordingActorClient()
    asyncio.run(actor_of(step, client)._arm_expiry())
    return json.dumps(json.loads(client.bodies["register_reminder"])["period"])


# A space in the words matches any run of whitespace (the prose wraps).
CLAIMS: list[tuple[str, str, Callable[[ModuleType], str]]] = [
    ("01_actor_timers", r"one every (\d+) seconds", lambda m: seconds(m.TIMER_PERIOD)),
    (
        "01_actor_timers",
        r"within (\d+) seconds, before anything",
        lambda m: seconds(m.TIMER_PERIOD),
    ),
    ("01_actor_timers", r"Between (\d+) and \d+ seconds", lambda m: seconds(2 * m.TIMER_PERIOD)),
    # daprd may fire a tick up to a second early (whole-second due times), so the third by then.
    (
        "01_actor_timers",
        r"Between \d+ and (\d+) seconds",
        lambda m: seconds(3 * m.TIMER_PERIOD - timedelta(seconds=1)),
    ),
    ("01_actor_timers", r"counted down from (\d+)", lambda m: seconds(m.TIMER_TTL)),
    ("02_actor_reminders", r"clears a history (\d+) seconds", lambda m: seconds(m.HISTORY_TTL)),
    ("02_actor_reminders", r"Within the next (\d+) seconds", lambda m: seconds(m.HISTORY_TTL)),
    ("02_actor_reminders", r"expires: (\d+) seconds after", lambda m: seconds(m.HISTORY_TTL)),
    ("02_actor_reminders", r"`dueTime` is the (\d+) seconds", lambda m: seconds(m.HISTORY_TTL)),
    ("02_actor_reminders", r"register `([\w-]+)` for", lambda m: m.REMINDER_NAME),
    ("02_actor_reminders", r"state key `(\w+)`", lambda m: m.EXPIRY_KEY),
    ("02_actor_reminders", r'the SDK sends `"period": ([^`]+)`', reminder_period_sent),
    (
        "03_actor_reentrancy",
        r"`FOLLOW_UP_TIMEOUT_SECONDS` \((\d+) seconds\)",
        lambda m: str(m.FOLLOW_UP_TIMEOUT_SECONDS),
    ),
    ("03_actor_reentrancy", r"newest (\d+) messages", lambda m: str(2 * m.HISTORY_MAX_PAIRS)),
    (
        "04_runtime_config",
        r"(\d+) seconds later \(`QUICK_IDLE_TIMEOUT_SECONDS`\)",
        lambda m: seconds(m.QUICK_IDLE_TIMEOUT),
    ),
    (
        "04_runtime_config",
        r"active for (an hour) \(`ACTOR_IDLE_TIMEOUT_SECONDS`\)",
        lambda m: seconds(m.ACTOR_IDLE_TIMEOUT),
    ),
    ("04_runtime_config", r"Idle timeout: (\w+)", lambda m: go_duration(m.ACTOR_IDLE_TIMEOUT)),
]


def route_matches(route: str, methods: set[str], method: str, path: str) -> bool:
    pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", route) + "$"
    return method in methods and re.match(pattern, path) is not None


@pytest.mark.parametrize("step", STEPS)
def test_readme_has_the_fixed_sections_in_order(step: str) -> None:
    assert readme_check.headings(readme(step)) == readme_check.SECTIONS


@pytest.mark.parametrize("step", STEPS)
def test_readme_learners_path_is_short(step: str) -> None:
    words = readme_check.prose_words(readme_check.learners_path(readme(step)))
    assert words < LEARNERS_PATH_MAX_WORDS, f"{step}: {words} words from Goal to Next"


@pytest.mark.parametrize("step", STEPS)
def test_check_yourself_runs_the_steps_unit_and_e2e_tests(step: str) -> None:
    (block,) = readme_check.blocks(readme_check.section(readme(step), "Check yourself"))
    command = block.body.split()
    assert command[:3] == ["uv", "run", "pytest"], block.body
    assert command[3:] == [f"tests/steps/test_{step}_unit.py", f"tests/steps/test_{step}_e2e.py"]
    for test_file in command[3:]:
        assert (REPO_ROOT / test_file).is_file(), f"{step}/README.md runs missing {test_file}"


@pytest.mark.parametrize("step", STEPS)
def test_current_dapr_points_each_cite_the_source_they_were_read_from(step: str) -> None:
    """Each point says where it comes from: the tests that saw it on 1.18.3, or the sources read."""
    points = readme_check.bullets(readme_check.section(readme(step), readme_check.CURRENT_DAPR))
    assert points, f"{step}/README.md lists nothing under {readme_check.CURRENT_DAPR}"
    for point in points:
        tests = readme_check.cited_tests(point)
        if tests is not None:
            for test_id in tests:
                path, name = test_id.split("::")
                assert (REPO_ROOT / path).is_file(), f"no {path}, cited in: {point}"
                assert f"def {name}(" in (REPO_ROOT / path).read_text(), f"no {test_id}"
            continue
        sources = readme_check.cited_sources(point)
        assert sources, (
            f"neither '{readme_check.SEEN_ON}' nor '{readme_check.READ_FROM_SOURCE}' with what "
            f"it cites at the end: {point}"
        )
        for source in sources:
            assert readme_check.SOURCE.fullmatch(source), f"not a source: `{source}` in {point}"


def test_root_readme_says_what_to_change_on_a_newer_dapr() -> None:
    # The root README's reference on versions lives in docs/versions.md, which it links.
    assert "(docs/versions.md)" in (REPO_ROOT / "README.md").read_text()
    text = VERSIONS_DOC.read_text()
    newer = text.split(NEWER_DAPR_HEADING, 1)[1].split("\n## ", 1)[0]
    for needed in [
        "`dapr[fastapi]`",
        "never both",
        "`--initial-cluster` to `--etcd-initial-cluster`",
        "`--etcd-client-ports` to `--etcd-client-port`",
        "`[tool.dapr-lab] dapr-runtime`",
    ]:
        assert needed in " ".join(newer.split()), needed
    cited = [p for p in readme_check.bullets(newer) if readme_check.READ_FROM_SOURCE in p]
    assert cited, "docs/versions.md's newer-Dapr points cite no source"
    for point in cited:
        sources = readme_check.cited_sources(point)
        assert sources and all(readme_check.SOURCE.fullmatch(s) for s in sources), point


def test_the_shared_actor_ids_paragraph_is_in_the_root_readme_only() -> None:
    root = readme_check.section((REPO_ROOT / "README.md").read_text(), ACTOR_IDS_SECTION)
    for step in STEPS:
        assert "talks to actors of its own" not in readme(step), step
        for actor_id in readme_check.actor_ids(readme(step)):
            assert f"`{actor_id}`" in root, f"the root README does not name {step}'s {actor_id}"


def test_cited_sources_accepts_only_backticked_sources_of_a_known_form() -> None:
    marker = readme_check.READ_FROM_SOURCE
    good = f"A point. {marker} `dapr/dapr v1.18.3 pkg/actors/router/router.go`, `dapr/dapr #8867`."
    assert readme_check.cited_sources(good) == [
        "dapr/dapr v1.18.3 pkg/actors/router/router.go",
        "dapr/dapr #8867",
    ]
    assert readme_check.cited_sources("A point. `dapr/dapr #8867`.") is None
    assert readme_check.cited_sources(f"A point. {marker} the release notes.") is None
    assert readme_check.cited_sources(f"A point. {marker} `dapr/dapr #1`, and more.") is None
    for source in ["dapr/python-sdk e4ad1818 RELEASE.md", "dapr/docs #4994", "dapr/kit 9d4f384"]:
        assert readme_check.SOURCE.fullmatch(source), source
    for source in ["dapr/dapr 1.18.3 x.go", "dapr #8867", "dapr/dapr v1.18 x.go", "docs page"]:
        assert not readme_check.SOURCE.fullmatch(source), source


def test_cited_tests_accepts_only_backticked_test_ids() -> None:
    marker = readme_check.SEEN_ON
    good = (
        f"A point. {marker} `tests/test_02_actor_reminders_e2e.py::test_a`, `tests/y.py::test_b`."
    )
    assert readme_check.cited_tests(good) == [
        "tests/test_02_actor_reminders_e2e.py::test_a",
        "tests/y.py::test_b",
    ]
    assert readme_check.cited_tests("A point. `tests/a.py::test_a`.") is None
    assert readme_check.cited_tests(f"A point. {marker} the step tests.") is None
    assert readme_check.cited_tests(f"A point. {marker} `dapr/dapr #1`.") is None
    both = f"A point. {readme_check.SEEN_ON_BOTH} `tests/a.py::test_a`."
    assert readme_check.cited_tests(both) == ["tests/a.py::test_a"]


def test_a_block_for_some_releases_is_played_on_those_only() -> None:
    text = "\n".join([
        "## Run", "", "```bash", "curl -s x", "```", "",
        "```json dapr=1.14", "null", "```", "",
        "1.15 and later answer otherwise:", "",
        "```text varies dapr=1.15-1.18", '{"errorCode":"X","n":1}', "```", "",
        "## Try it", "",
    ])  # fmt: skip
    (old,) = readme_check.walkthrough(text, version="1.14.4")
    (new,) = readme_check.walkthrough(text, version="1.18.3")
    assert (old.expected, old.varies) == ("null", set())
    assert (new.expected, new.varies) == ('{"errorCode":"X","n":1}', {'{"errorCode":"X","n":1}'})
    assert readme_check.walkthrough(text)[0].expected == "null"  # the pin's form by default
    assert len(readme_check.blocks(text)) == 3  # every form, for the static checks


@pytest.mark.parametrize("step", STEPS)
def test_readme_curl_paths_exist_as_routes(step: str) -> None:
    # Every route the app serves: /docs leaves out the ones the SDK's DaprActor adds for daprd
    # (e.g. /dapr/config), FastAPI's own schema of all the routes has them.
    app = load_step(step).app
    paths = get_openapi(title=app.title, version=app.version, routes=app.routes)["paths"]
    routes = {path: {method.upper() for method in ops} for path, ops in paths.items()}
    commands = readme_check.commands(readme(step))
    assert commands, f"{step}/README.md has no command"
    for command in commands:
        for method, port, path in readme_check.curl_routes(command.command):
            if port == "3500":
                assert path.startswith("/v1.0/"), command.command
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
    patterns = readme_check.log_patterns(app_source(step))
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


@pytest.mark.parametrize(("step", "words", "in_code"), CLAIMS)
def test_readme_durations_and_names_match_the_code(
    step: str, words: str, in_code: Callable[[ModuleType], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    found = re.findall(words.replace(" ", r"\s+"), readme(step))
    assert found, f"{step}/README.md no longer says /{words}/: update or drop the claim"
    expected = in_code(step_as_run(step, monkeypatch))
    for said in found:
        said = str(SPOKEN_SECONDS.get(said, said))
        assert said == expected, f"{step}/README.md says {said} in /{words}/, the code {expected}"


@pytest.mark.parametrize("step", STEPS)
def test_readme_redis_keys_are_the_ones_daprd_writes(step: str) -> None:
    text, module = readme(step), load_step(step)
    actor_types = {getattr(module, name) for name in dir(module) if name.endswith("ACTOR_TYPE")}
    state_keys = {
        getattr(module, name) for name in ("HISTORY_KEY", "EXPIRY_KEY") if hasattr(module, name)
    }
    # The actor's own state: app id, actor type, actor id, state key.
    for app_id, actor_type, key in re.findall(r"`([\w-]+)\|\|(\w+)\|\|[\w<>-]+\|\|(\w+)`", text):
        assert app_id == APP_ID, f"{app_id}: the app id is {APP_ID}"
        assert actor_type in actor_types, f"{actor_type} is not an actor type of {step}"
        assert key in state_keys, f"{key} is not a state key of {step}"
    # What runtime 1.14 keeps for reminders, in the state store: actors||<actor type>[||metadata].
    for actor_type in re.findall(r"actors\|\|(\w+)", text):
        assert actor_type in actor_types, f"{actor_type} is not an actor type of {step}"


@pytest.mark.parametrize("step", STEPS)
def test_readme_run_commands_start_the_step_with_settings_it_reads(
    step: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = readme(step)
    settings = readme_check.env_defaults(text)
    runs = readme_check.run_commands(text)
    assert runs, f"{step}/README.md never says how to start it"
    for run in runs:
        assert run.step == step, f"{step}/README.md starts {run.step}"
        assert set(run.env) <= set(settings), f"{set(run.env) - set(settings)} not in the table"
        for name, value in run.env.items():
            monkeypatch.setenv(name, value)
        load_step(step)  # a bad value stops the app (SystemExit)
        for name in run.env:
            monkeypatch.delenv(name)


def test_each_step_readme_talks_to_actor_ids_of_its_own() -> None:
    """Steps share a learner's Redis: one step's conversations must not show up in another's."""
    ids = {step: readme_check.actor_ids(readme(step)) for step in STEPS}
    for step in STEPS:
        assert ids[step], f"{step}/README.md talks to no actor"
        for other in STEPS:
            if other != step:
                assert not ids[step] & ids[other], f"{step} and {other}: {ids[step] & ids[other]}"


def test_readme_02_run_shortens_the_default_expiry() -> None:
    text = readme("02_actor_reminders")
    (shorter, default) = re.search(
        r"clears a history (\d+) seconds after its last message instead of the\s+default (\d+)",
        text,
    ).groups()
    assert readme_check.first_run_env(text) == {"HISTORY_TTL_SECONDS": shorter}
    assert readme_check.env_defaults(text)["HISTORY_TTL_SECONDS"] == default


def test_readme_03_sends_as_many_messages_as_it_says() -> None:
    text = readme("03_actor_reentrancy")
    said = re.search(r"Send (\d+) messages to one actor at once", text).group(1)
    (crowd,) = [c.command for c in readme_check.commands(text) if c.command.startswith("seq ")]
    assert re.match(rf"seq 1 {said} \| xargs -P {said} ", crowd), crowd


def test_readme_02_base64_data_is_the_expiry_it_shows() -> None:
    """The sample outputs agree with each other the way real ones do (data = expires_at)."""
    outputs = [c.expected or "" for c in readme_check.commands(readme("02_actor_reminders"))]
    (expires_at,) = [m for o in outputs for m in re.findall(r'"expires_at":"([^"]+)"', o)]
    (data,) = [m for o in outputs for m in re.findall(r'"data":"([^"]+)"', o)]
    assert base64.b64decode(data).decode() == expires_at


def test_normalize_hides_only_what_varies() -> None:
    stamp, stamp64 = "2026-01-01T10:00:30Z", "MjAyNi0wMS0wMVQxMDowMDozMFo="
    assert readme_check.normalize(f'{{"at":"{stamp}","data":"{stamp64}","seconds_left":47}}') == (
        '{"at":"<timestamp>","data":"<timestamp-base64>","seconds_left":<seconds>}'
    )
    # A stopped timer's 0, other numbers, other base64 and the order of other lists stay.
    kept = '{"seconds_left":0,"ticks":2,"data":"c3RhbGU=","list":["b","a"]}'
    assert readme_check.normalize(kept) == kept
    assert readme_check.normalize('{"entities":["b","a"]}') == '{"entities":["a","b"]}'


def test_walkthrough_reads_outputs_at_once_and_later() -> None:
    fence = "```"
    text = (
        f"## Run\n\n{fence}text\nX=1 uv run daprlab up 01_actor_timers\n{fence}\n\n## Try it\n\n"
        f"{fence}bash\ncurl a\n{fence}\n\n{fence}json\nnow\n{fence}\n\nLater:\n\n"
        f"{fence}text\nthen\n{fence}\n\n{fence}bash\ncurl b\n{fence}\n\n## What to look for\n"
    )
    assert readme_check.walkthrough(text) == [
        readme_check.Start("01_actor_timers", {"X": "1"}),
        readme_check.Command("curl a", "now", ["then"]),
        readme_check.Command("curl b"),
    ]


def test_log_lines_are_found_in_order_only() -> None:
    log = ["a", "x", "b", "c"]
    assert readme_check.in_order(["a", "b"], log, whole_lines=True)
    assert not readme_check.in_order(["b", "a"], log, whole_lines=True)
    assert not readme_check.in_order(["a", "d"], log, whole_lines=True)
    assert readme_check.in_order(["x"], ["prefix x suffix"], whole_lines=False)
    assert not readme_check.in_order(["x"], ["prefix x suffix"], whole_lines=True)
