"""The lab console beside a test's stack, and what its page shows, read in the real browser.

`console_lab(step, app_env)` starts a stack whose lines also feed a LabConsole, serves the
console on a free loopback port and opens it in the module's browser (tests.support.browser).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from selenium import webdriver

from daprlab import netcheck
from daprlab.console.run import LabConsole, stack_targets
from daprlab.harness import RunningStack
from tests.support.browser import wait_in_page

# Generous for a loaded 2-core machine: every wait ends as soon as the page shows it.
PAGE_SLACK_SECONDS = 30

ROW_CELLS = """
const row = document.querySelector(`tr[data-actor="${arguments[0]}"]`);
if (!row) return null;
const cells = {};
for (const td of row.children) cells[td.className.replace("col-", "")] = td.textContent;
cells.row_class = row.className;
return cells;
"""
TYPE_CARD = """
const card = document.querySelector(`.type-card[data-type="${arguments[0]}"]`);
if (!card) return null;
return {count: card.querySelector(".count").textContent, stale: card.classList.contains("stale")};
"""
EVENTS = """
return [...document.querySelectorAll("#timeline li")].map(
  (li) => ({kind: li.dataset.kind, actor: li.dataset.actor, text: li.textContent}));
"""
PROBLEMS = """
return [...document.querySelectorAll("#problems p")].map((p) => [p.dataset.source, p.textContent]);
"""
PROCESSES = """
const found = {};
for (const li of document.querySelectorAll("#processes li")) {
  found[li.dataset.process] = li.className;
}
return found;
"""


@pytest.fixture
def console_lab(
    lab: Callable[..., RunningStack], browser: webdriver.Chrome
) -> Iterator[Callable[..., tuple[RunningStack, LabConsole]]]:
    consoles: list[LabConsole] = []

    def start(step: str, app_env: dict[str, str]) -> tuple[RunningStack, LabConsole]:
        console = LabConsole(step, app_env)
        consoles.append(console)
        running = lab(step, app_env=app_env, line_sink=console.sink)
        url = console.serve(stack_targets(running.stack), netcheck.free_port())
        browser.get(url)
        wait_in_page(browser, lambda d: "live" in d.find_element("id", "connection").text, "live")
        return running, console

    try:
        yield start
    finally:
        for console in consoles:
            console.stop()


def row(driver: webdriver.Chrome, actor: str) -> dict[str, str] | None:
    """The cells of an actor's row ("ChatAgent alice") by column name, or None."""
    return driver.execute_script(ROW_CELLS, actor)


def type_card(driver: webdriver.Chrome, actor_type: str) -> dict[str, Any] | None:
    return driver.execute_script(TYPE_CARD, actor_type)


def events(driver: webdriver.Chrome) -> list[dict[str, str]]:
    return driver.execute_script(EVENTS)


def has_event(driver: webdriver.Chrome, kind: str, actor: str = "") -> bool:
    return any(e["kind"] == kind and e["actor"] == actor for e in events(driver))


def problems(driver: webdriver.Chrome) -> dict[str, str]:
    """The parts the page says are down, with what it says about each."""
    return dict(driver.execute_script(PROBLEMS))


def processes(driver: webdriver.Chrome) -> dict[str, str]:
    return driver.execute_script(PROCESSES)


def open_actor(driver: webdriver.Chrome, actor: str) -> None:
    driver.find_element("css selector", f'tr[data-actor="{actor}"]').click()


def shown_state(driver: webdriver.Chrome) -> dict[str, Any] | None:
    """The actor state the detail panel shows (as read from Redis), once it has one."""
    text = driver.find_element("id", "detail-body").text
    try:
        return json.loads(text)
    except ValueError:
        return None


def until(driver: webdriver.Chrome, condition: Callable[[], Any], what: str) -> Any:
    return wait_in_page(driver, lambda _d: condition(), what, PAGE_SLACK_SECONDS)
