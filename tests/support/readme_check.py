"""Read a step README the way the tests check it: sections, the walkthrough, outputs, log lines.

How a README's "Run" and "Try it" sections read as a walkthrough (`walkthrough()`):

- A ```text block holding one `[NAME=value ...] uv run daprlab up <step>` line (re)starts the
  stack with exactly those settings; state (Redis, scheduler) carries over, as on a learner's
  machine. The "Run" section holds the first one.
- A ```bash block is a command, run as written with `bash -c` (ports rewritten to the test's).
- A ```json or ```text block right after a command, with nothing but blank lines between, is
  what the command prints at once.
- A ```json or ```text block after some prose ("10 seconds later: ...") is what the latest
  command prints when run again later: the walkthrough repeats it until it prints that.
- An output block marked ```text varies holds numbers that differ from run to run (how placement
  spreads actors over the ports of the run, a count taken while it changes): each run of digits
  in it, and in what the command prints, is compared as `<n>`.

The guide to the experiments (EXPERIMENTS.md, `experiments()`) has one `## ` section per
experiment, with the same sections one level down (`### Run`, `### Try it`, ...); its `daprlab up`
lines may carry the runner's options (`--replicas 3`), and it plays them with the real runner,
in the background, as a learner's first terminal would (tests/runner/test_experiments_e2e.py).

Outputs are compared exactly, after `normalize()` has put a placeholder, in both the README's
output and the real one, in place of what legitimately differs from run to run (`PLACEHOLDERS`):

- `<timestamp>`: an ISO UTC time to the second (`2026-01-01T10:00:30Z`), the moment a learner
  sent a message plus a period.
- `<timestamp-base64>`: base64 text that decodes to such a time (a reminder's data).
- `"seconds_left":<seconds>`: a running countdown, read whenever the learner happens to ask (a
  stopped one, 0, stays as it is).
- `"entities":[...]` is sorted: the SDK builds that list from a Python set, so its order changes
  with each process's string hashing.

Log blocks under "What to look for": ```log holds whole lines of the app's log; ```log daprd
holds text that some line of daprd's log contains; ```log varies holds whole app lines whose
numbers differ from run to run (a model call's time and tokens), compared as `<n>` like a
```text varies output. The lines of one block appear in that order.

A step README's sections (`SECTIONS`): the learner's path first (`LEARNERS_PATH`, "Goal" to
"Next"), then what differs on current Dapr releases, then the internals and the evidence. In "On
Dapr 1.15 and later" every point is a bullet that ends with `READ_FROM_SOURCE` and the sources,
each in backticks and of a form `SOURCE` accepts, or with `SEEN_ON` and the tests that show it.

Every page a learner may open (`documents()`: the root README, the pages under docs/, the step
READMEs, EXPERIMENTS.md, lab_plumbing/README.md) is read for its links and their #anchors
(`links()`, `anchors()`), the repository paths it names in backticks (`repo_paths()`), and the
`uv run daprlab ...`, `uv run pytest ...` and `python -m ...` commands it gives (`commands_in()`).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from pathlib import Path

from daprlab.versions import pins

LEARNERS_PATH = [
    "Goal",
    "What changes",
    "Run",
    "Try it",
    "What to look for",
    "Check yourself",
    "Next",
]
CURRENT_DAPR = "On Dapr 1.15 and later"
SECTIONS = [*LEARNERS_PATH, CURRENT_DAPR, "Under the hood", "What the tests prove"]
READ_FROM_SOURCE = "Read from the source, not run by the lab:"
# A point the lab's tests showed on a release built by hand, ending with the tests that show it
# (`tests/<file>.py::<test>`), which assert that release's form through daprlab/releases.py.
SEEN_ON = "Seen on Dapr 1.18.3 by the lab's tests:"
# The same, for a point seen on both releases built by hand.
SEEN_ON_BOTH = "Seen on Dapr 1.16.5 and 1.18.3 by the lab's tests:"
TEST_ID = re.compile(r"tests/[\w/]+\.py::test_\w+")
# A source: a tag of dapr/dapr or dapr/python-sdk, alone (the release) or with a file at it;
# a commit of a repository (with a file, or alone); a pull request or issue (`dapr/docs #4994`).
SOURCE_REPO = r"(?:dapr/(?:dapr|python-sdk|docs|kit)|diagridio/go-etcd-cron)"
SOURCE = re.compile(
    rf"{SOURCE_REPO} (?:#\d+|v\d+\.\d+\.\d+(?: [\w./-]+)?|[0-9a-f]{{7,40}}(?: [\w./-]+)?)"
)
FENCE = re.compile(r"^```(\w*)[ \t]*([^\n]*?)[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
CURL_URL = re.compile(r"(?:http://)?localhost:(8000|3500)(/[^\s'\"]*)")
ENV_ROW = re.compile(r"^\|\s*`([A-Z][A-Z0-9_]+)`\s*\|\s*`([^`]*)`\s*\|", re.M)
LOG_CALL = re.compile(r"logger\.(?:debug|info|warning|error)\(\s*\"([^\"]+)\"")
LINK = re.compile(r"\]\((?!https?://|#)([^)#\s]+)")
# Any link but a web address: (target, anchor); a link inside the page has no target.
ANY_LINK = re.compile(r"\]\((?!https?://|mailto:)([^)#\s]*)(?:#([^)\s]+))?\)")
INLINE_CODE = re.compile(r"`([^`]+)`")
# A path in backticks: no spaces, not absolute, not in the home folder; `::test` may follow.
PATH_LIKE = re.compile(
    r"^(?![/~])[\w.*-]+(?:/[\w.*-]*)+$|^[\w.-]+\.(?:py|md|toml|lock|yaml|yml|sh)$"
)
DOCS_DIR = "docs"
ROOT_DOCS = ["README.md", "EXPERIMENTS.md", "lab_plumbing/README.md"]
# The commands of a page that the docs tests check without running them (the walkthroughs run
# the step READMEs' and EXPERIMENTS.md's): the CLI parses them, the files they name exist.
COMMAND = re.compile(r"(?:^|[\s`])(uv run (?:daprlab|pytest)\b.*|(?:uv run )?python3? -m [\w.]+)")
COMMAND_END = re.compile(r" \| | && |; | > ")
SETTING = r"[A-Z][A-Z0-9_]*=\S+"
# The runner's options, as EXPERIMENTS.md gives them: `--replicas 3`, `--no-resiliency`.
RUN_OPTIONS = r"((?:\s+--[a-z-]+(?:\s+[^-\s]\S*)?)*)"
RUN_COMMAND = re.compile(rf"^((?:{SETTING}\s+)*)uv run daprlab up (\S+){RUN_OPTIONS}$")
INLINE_RUN_COMMAND = re.compile(rf"`((?:{SETTING}\s+)*)uv run daprlab up (\S+)`")
OUTPUT_LANGS = ("json", "text")
VARIES = "varies"
# A block for some Dapr releases only, e.g. ```json dapr=1.14 or ```json dapr=1.15-1.18: where
# releases differ, a README shows each form, and a walkthrough plays the runtime's own.
DAPR_RANGE = re.compile(r"^dapr=(\d+\.\d+)(?:-(\d+\.\d+))?$")
ACTOR_ID_IN_URL = re.compile(r"/(?:chat|quick-chat|actors/\w+)/([\w-]+)")
APP_LOG = "app"

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
BASE64_TEXT = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{8,}={0,2}(?![A-Za-z0-9+/=])")
SECONDS_LEFT = re.compile(r'"seconds_left":[1-9]\d*')
ENTITIES = re.compile(r'"entities":\[([^\]]*)\]')


@dataclass
class Block:
    lang: str
    # The words after the language on the opening fence, e.g. "daprd" in ```log daprd, without
    # a `dapr=` range (in `releases`).
    info: str
    body: str
    start: int
    end: int
    releases: str = ""

    def shown_for(self, version: str) -> bool:
        """Whether this block is what Dapr `version` does (a block with no range: every one)."""
        if not self.releases:
            return True
        found = DAPR_RANGE.match(self.releases)
        if found is None:
            raise ValueError(f"not a Dapr range: {self.releases!r} (e.g. dapr=1.15-1.18)")
        low = release_tuple(found.group(1))
        high = release_tuple(found.group(2) or found.group(1))
        return low <= release_tuple(version) <= high


def release_tuple(version: str) -> tuple[int, int]:
    major, minor = version.removeprefix("v").split(".")[:2]
    return int(major), int(minor)


@dataclass
class Start:
    """`daprlab up`: stop the running stack, if any, and start the step with these settings."""

    step: str
    env: dict[str, str]
    options: list[str] = field(default_factory=list)


@dataclass
class Command:
    """A command; what it prints at once, if the README says; what it prints when run later."""

    command: str
    expected: str | None = None
    later: list[str] = field(default_factory=list)
    # The outputs that are ```text varies blocks: their numbers are compared as placeholders.
    varies: set[str] = field(default_factory=set)


@dataclass
class LogBlock:
    process: str
    lines: list[str]
    # ```log varies: the app's lines, each run of digits compared as <n>.
    varies: bool = False


def headings(text: str) -> list[str]:
    return re.findall(r"^## (.+)$", text, re.M)


def section(text: str, name: str, level: int = 2) -> str:
    """The text under `## name` (`### name` at level 3), up to the next heading of that level
    or above."""
    marks = "#" * level
    match = re.search(
        rf"^{marks} {re.escape(name)}\n(.*?)(?=^#{{1,{level}}} |\Z)", text, re.S | re.M
    )
    if match is None:
        raise ValueError(f"no section '{marks} {name}'")
    return match.group(1)


def experiments(text: str) -> dict[str, str]:
    """The experiments of EXPERIMENTS.md: each `## ` section that has a `### Run`, by title."""
    found = {}
    for title in headings(text):
        body = section(text, title)
        if re.search(r"^### Run$", body, re.M):
            found[title] = body
    return found


def learners_path(text: str) -> str:
    """The text of the sections "Goal" to "Next"."""
    return "".join(section(text, name) for name in LEARNERS_PATH)


def prose_words(text: str) -> int:
    """Words a learner reads: outside fenced blocks (commands and outputs), tokens with a letter
    or digit (a table's pipes and rules are no words)."""
    prose = FENCE.sub("", text)
    return sum(1 for token in prose.split() if re.search(r"\w", token))


def bullets(text: str) -> list[str]:
    """The top-level `- ` bullets of a section, each with its wrapped lines joined."""
    items = re.findall(r"^- (.*?)(?=^- |^\S|\Z)", text, re.S | re.M)
    return [" ".join(item.split()) for item in items]


def cited_tests(point: str) -> list[str] | None:
    """The tests a point cites after `SEEN_ON`: None when it does not say that, or when anything
    but backticked test ids follows."""
    marker = next((m for m in (SEEN_ON_BOTH, SEEN_ON) if m in point), None)
    if marker is None:
        return None
    cited = point.split(marker, 1)[1].strip()
    tests = re.findall(r"`([^`]+)`", cited)
    rest = re.sub(r"`[^`]+`", "", cited)
    if not tests or re.sub(r"[,;.\s]", "", rest) or not all(TEST_ID.fullmatch(t) for t in tests):
        return None
    return tests


def cited_sources(point: str) -> list[str] | None:
    """The sources a point cites after `READ_FROM_SOURCE`: None when it does not say that, or
    when anything but backticked sources follows."""
    if READ_FROM_SOURCE not in point:
        return None
    cited = point.split(READ_FROM_SOURCE, 1)[1].strip()
    sources = re.findall(r"`([^`]+)`", cited)
    rest = re.sub(r"`[^`]+`", "", cited)
    if not sources or re.sub(r"[,;.\s]", "", rest):
        return None
    return sources


def blocks(text: str, version: str | None = None) -> list[Block]:
    """The fenced blocks of `text`; with `version`, only those shown for that Dapr release."""
    found = []
    for m in FENCE.finditer(text):
        lang, words, body = m.groups()
        ranges = [w for w in words.split() if w.startswith("dapr=")]
        info = " ".join(w for w in words.split() if not w.startswith("dapr="))
        found.append(Block(lang, info, body, m.start(), m.end(), ranges[0] if ranges else ""))
    return [b for b in found if version is None or b.shown_for(version)]


def pinned_release() -> str:
    return pins().dapr_runtime


def run_command(line: str) -> Start | None:
    """A `daprlab up` line with its settings, or None."""
    match = RUN_COMMAND.match(line.strip())
    if match is None:
        return None
    settings = dict(s.split("=", 1) for s in match.group(1).split())
    return Start(match.group(2), settings, match.group(3).split())


def walkthrough(text: str, level: int = 2, version: str | None = None) -> list[Start | Command]:
    """What a learner does in "Run" and "Try it", in order (see the module docstring), on Dapr
    `version` (default: the pin): a block for other releases is left out."""
    steps: list[Start | Command] = []
    for name in ("Run", "Try it"):
        body = section(text, name, level)
        previous_end = 0
        group_right_after: bool | None = None  # of the first of consecutive labelled outputs
        for block in blocks(body):
            right_after = body[previous_end : block.start].strip() == ""
            previous_end = block.end
            labelled_output = block.lang in OUTPUT_LANGS and bool(block.releases)
            # The forms of one output for different releases follow each other, with a line on
            # the release between them: each is as "right after" its command as the first.
            if labelled_output and group_right_after is not None:
                right_after = group_right_after
            group_right_after = right_after if labelled_output else None
            if not block.shown_for(version or pinned_release()):
                continue
            start = run_command(block.body) if block.lang == "text" else None
            if start is not None:
                steps.append(start)
            elif block.lang == "bash":
                steps.append(Command(block.body.strip()))
            elif block.lang in OUTPUT_LANGS:
                output = block.body.strip()
                last = steps[-1] if steps else None
                if not isinstance(last, Command):
                    raise ValueError(f"an output with no command before it: {output}")
                if block.info == VARIES:
                    last.varies.add(output)
                if right_after and last.expected is None and not last.later:
                    last.expected = output
                else:
                    last.later.append(output)
    return steps


def commands(text: str) -> list[Command]:
    return [step for step in walkthrough(text) if isinstance(step, Command)]


def actor_ids(text: str) -> set[str]:
    """The actor ids the README's commands talk to."""
    return {found for c in commands(text) for found in ACTOR_ID_IN_URL.findall(c.command)}


def run_commands(text: str) -> list[Start]:
    """Every `daprlab up` in the README: in blocks and in inline code (e.g. "to go faster: ...")."""
    found = [run_command(block.body) for block in blocks(text) if block.lang == "text"]
    inline = [
        Start(step, dict(s.split("=", 1) for s in settings.split()))
        for settings, step in INLINE_RUN_COMMAND.findall(text)
    ]
    return [start for start in found if start is not None] + inline


def first_run_env(text: str) -> dict[str, str]:
    """The settings of the "Run" section's `daprlab up`: the ones "Try it" starts with."""
    first = next(step for step in walkthrough(text) if isinstance(step, Start))
    return first.env


def _base64_of_timestamp(match: re.Match[str]) -> str:
    try:
        decoded = base64.b64decode(match.group(0), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return match.group(0)
    return "<timestamp-base64>" if TIMESTAMP.fullmatch(decoded) else match.group(0)


def _sorted_entities(match: re.Match[str]) -> str:
    return '"entities":[' + ",".join(sorted(match.group(1).split(","))) + "]"


PLACEHOLDERS = [
    (BASE64_TEXT, _base64_of_timestamp),
    (TIMESTAMP, lambda _match: "<timestamp>"),
    (SECONDS_LEFT, lambda _match: '"seconds_left":<seconds>'),
    (ENTITIES, _sorted_entities),
]


def normalize(output: str, varies: bool = False) -> str:
    """`output` with the placeholders of the module docstring in place of what varies (with
    `varies`, every number too)."""
    output = output.strip()
    for pattern, replace in PLACEHOLDERS:
        output = pattern.sub(replace, output)
    return re.sub(r"\d+(?:\.\d+)?", "<n>", output) if varies else output


def curl_routes(command: str) -> list[tuple[str, str, str]]:
    """(method, port, path) of every URL in a curl command."""
    method_match = re.search(r"-X\s+([A-Z]+)", command)
    method = method_match.group(1) if method_match else ("POST" if " -d " in command else "GET")
    return [(method, port, path.split("?")[0]) for port, path in CURL_URL.findall(command)]


def env_defaults(text: str) -> dict[str, str]:
    return dict(ENV_ROW.findall(text))


def log_blocks(text: str, level: int = 2, version: str | None = None) -> list[LogBlock]:
    """The ```log blocks under "What to look for", with the process whose log they quote, for
    Dapr `version` (default: the pin)."""
    return [
        LogBlock(
            APP_LOG if block.info in ("", VARIES) else block.info,
            [line for line in block.body.splitlines() if line.strip()],
            block.info == VARIES,
        )
        for block in blocks(section(text, "What to look for", level), version or pinned_release())
        if block.lang == "log"
    ]


def log_lines(text: str) -> list[str]:
    """The app's log lines the README quotes."""
    return [line for block in log_blocks(text) if block.process == APP_LOG for line in block.lines]


def log_patterns(source: str) -> list[re.Pattern[str]]:
    """Each logger format string in the code, as a regex (%s and %d match anything)."""
    patterns = []
    for fmt in LOG_CALL.findall(source):
        regex = re.escape(fmt).replace("%s", ".+?").replace("%d", r"-?\d+")
        patterns.append(re.compile(regex))
    return patterns


def in_order(wanted: list[str], lines: list[str], whole_lines: bool, varies: bool = False) -> bool:
    """True when every wanted line appears in `lines`, in the same order (with `varies`, their
    numbers compared as placeholders)."""
    if varies:
        wanted = [normalize(line, varies) for line in wanted]
        lines = [normalize(line, varies) for line in lines]
    remaining = iter(lines)
    return all(
        any(line == want if whole_lines else want in line for line in remaining) for want in wanted
    )


def relative_links(text: str, base: Path) -> list[Path]:
    return [base / target for target in LINK.findall(text)]


def documents(root: Path, steps: list[str]) -> list[Path]:
    """Every page a learner may open: the root README, the pages under docs/, each step's
    README, EXPERIMENTS.md and lab_plumbing/README.md."""
    pages = [root / ROOT_DOCS[0], *sorted((root / DOCS_DIR).glob("*.md"))]
    pages += [root / step / "README.md" for step in steps]
    return pages + [root / name for name in ROOT_DOCS[1:]]


def without_fences(text: str) -> str:
    return FENCE.sub("", text)


def links(text: str) -> list[tuple[str, str]]:
    """(target, anchor) of each link that is not a web address, outside fenced blocks; an
    empty target is the page itself, an empty anchor its top."""
    return [(m.group(1), m.group(2) or "") for m in ANY_LINK.finditer(without_fences(text))]


def anchor(heading: str) -> str:
    """The #anchor GitHub gives a heading: lower case, no punctuation, spaces as hyphens."""
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """The #anchors of a page's headings (a repeated heading gets -1, -2, ...)."""
    found: set[str] = set()
    for heading in re.findall(r"^#{1,6} (.+)$", without_fences(text), re.M):
        slug, n = anchor(heading), 0
        while (slug if n == 0 else f"{slug}-{n}") in found:
            n += 1
        found.add(slug if n == 0 else f"{slug}-{n}")
    return found


def repo_paths(text: str) -> list[str]:
    """What a page names in backticks that reads as a path in the repository (outside fenced
    blocks), without a `::test` suffix."""
    spans = [span.split("::")[0] for span in INLINE_CODE.findall(without_fences(text))]
    return [span for span in spans if PATH_LIKE.match(span)]


def commands_in(text: str) -> list[str]:
    """Every `uv run daprlab ...`, `uv run pytest ...` and `python -m ...` of a page, in inline
    code (wrapped lines joined) or on a line of a fenced block; a pipe or redirection ends it."""
    pieces = INLINE_CODE.findall(without_fences(text))
    pieces += [line for block in blocks(text) for line in block.body.splitlines()]
    found = []
    for piece in pieces:
        for part in COMMAND_END.split(" ".join(piece.split())):
            if match := COMMAND.search(part):
                found.append(match.group(1).split("`")[0].strip())
    return found
