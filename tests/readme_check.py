"""Read a step README the way the tests check it: sections, curl commands, outputs, log lines."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

SECTIONS = ["Goal", "What changes", "Run", "Try it", "What to look for", "Check yourself", "Next"]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
CURL_URL = re.compile(r"(?:http://)?localhost:(8000|3500)(/[^\s'\"]*)")
ENV_ROW = re.compile(r"^\|\s*`([A-Z][A-Z0-9_]+)`\s*\|\s*`([^`]*)`\s*\|", re.M)
LOG_CALL = re.compile(r"logger\.(?:debug|info|warning|error)\(\s*\"([^\"]+)\"")
LINK = re.compile(r"\]\((?!https?://|#)([^)#\s]+)")


@dataclass
class Exchange:
    """One curl command and, if the README states it, its exact output."""

    command: str
    expected: str | None


def headings(text: str) -> list[str]:
    return re.findall(r"^## (.+)$", text, re.M)


def blocks(text: str) -> list[tuple[str, str]]:
    return [(lang, body) for lang, body in FENCE.findall(text)]


def exchanges(text: str) -> list[Exchange]:
    """Each ```bash block of curl commands under "Try it", paired with a ```json block after it."""
    found: list[Exchange] = []
    fenced = blocks(text)
    for index, (lang, body) in enumerate(fenced):
        if lang != "bash" or not body.lstrip().startswith("curl "):
            continue
        expected = None
        if index + 1 < len(fenced) and fenced[index + 1][0] == "json":
            expected = fenced[index + 1][1].strip()
        found.append(Exchange(body.strip(), expected))
    return found


def curl_routes(command: str) -> list[tuple[str, str, str]]:
    """(method, port, path) of every URL in a curl command."""
    method_match = re.search(r"-X\s+([A-Z]+)", command)
    method = method_match.group(1) if method_match else ("POST" if " -d " in command else "GET")
    return [(method, port, path.split("?")[0]) for port, path in CURL_URL.findall(command)]


def env_defaults(text: str) -> dict[str, str]:
    return dict(ENV_ROW.findall(text))


def log_lines(text: str) -> list[str]:
    lines: list[str] = []
    for lang, body in blocks(text):
        if lang == "log":
            lines += [line for line in body.splitlines() if line.strip()]
    return lines


def log_patterns(source: str) -> list[re.Pattern[str]]:
    """Each logger format string in the code, as a regex (%s and %d match anything)."""
    patterns = []
    for fmt in LOG_CALL.findall(source):
        regex = re.escape(fmt).replace("%s", ".+?").replace("%d", r"-?\d+")
        patterns.append(re.compile(regex))
    return patterns


def relative_links(text: str, base: Path) -> list[Path]:
    return [base / target for target in LINK.findall(text)]
