"""Benchmark of the lab console, in the real browser: prints numbers, asserts nothing.

    uv run python -m daprlab.bench.console_page

1. Delay from a timer tick in the app's log (the moment the runner reads the line) to the tick
   counter showing it on the page: step 01, one tick a second, median of 20.
2. 1,000 active actors (step 01, a tick each every 5 s: 200 log lines a second): how long until
   the page shows them all, whether the push keeps up (a tick's delay under that load), and the
   page's JavaScript heap.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from daprlab import loglines, netcheck
from daprlab.console.run import LabConsole, stack_targets, tee
from daprlab.runtime import choose_runtime
from daprlab.stack.ports import ControlPorts, InstancePorts
from daprlab.stack.stack import Stack, StackConfig
from daprlab.wait import wait_for
from tests.support.browser import CHROMEDRIVER, chromium_options

STEP = "01_actor_timers"
TICKS_MEASURED = 20
MANY_ACTORS = 1000
CLIENTS = 16
LOAD_WINDOW_SECONDS = 30
# Records, in the page, when each actor's tick counter first showed each value (epoch ms).
WATCH_TICKS = """
window.tickSeen = {};
new MutationObserver(() => {
  const at = performance.timeOrigin + performance.now();
  for (const td of document.querySelectorAll("#actor-rows td.col-ticks")) {
    const key = `${td.parentElement.dataset.actor}#${td.textContent}`;
    if (!(key in window.tickSeen)) window.tickSeen[key] = at;
  }
}).observe(document.getElementById("actor-rows"), {subtree: true, childList: true,
                                                   characterData: true});
"""
HEAP = "return performance.memory.usedJSHeapSize"


def start(app_env: dict[str, str], scratch: Path) -> tuple[Stack, LabConsole, dict[str, float]]:
    logged: dict[str, float] = {}

    def record_tick(_process: str, line: str) -> None:
        found = loglines.app_message("timer tick", line)
        if found:
            logged.setdefault(f"{found['type']} {found['id']}#{found['tick']}", time.time() * 1000)

    console = LabConsole(STEP, app_env)
    config = StackConfig(
        STEP, scratch, ControlPorts.free(), [InstancePorts.free()], app_env=app_env
    )
    stack = Stack(config, choose_runtime(build=False), tee(record_tick, console.sink))
    stack.start()
    console.serve(stack_targets(stack), netcheck.free_port())
    return stack, console, logged


def browser(profile: str) -> webdriver.Chrome:
    options = chromium_options(profile)
    options.add_argument("--enable-precise-memory-info")
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def tick_delays(driver: webdriver.Chrome, logged: dict[str, float], actor: str) -> list[float]:
    seen = driver.execute_script("return window.tickSeen")
    ticks = list(logged.items())  # the stack's reader threads add to it meanwhile
    return [seen[key] - at for key, at in ticks if key.startswith(actor) and key in seen]


def measure_tick_delay(scratch: Path, profile: str) -> None:
    env = {"TIMER_PERIOD_SECONDS": "1", "TIMER_TTL_SECONDS": "60"}
    stack, console, logged = start(env, scratch / "ticks")
    driver = browser(profile)
    try:
        assert console.server is not None
        driver.get(console.server.url)
        driver.execute_script(WATCH_TICKS)
        httpx.post(f"{stack.app_url}/chat/alice", json={"content": "hi"}, timeout=30)
        wait_for(
            lambda: len(tick_delays(driver, logged, "ChatAgent alice#")) >= TICKS_MEASURED,
            TICKS_MEASURED + 30,
            f"{TICKS_MEASURED} ticks on the page",
        )
        delays = tick_delays(driver, logged, "ChatAgent alice#")[:TICKS_MEASURED]
        print(
            f"tick log line -> page, {len(delays)} ticks: median "
            f"{statistics.median(delays):.0f} ms, min {min(delays):.0f} ms, "
            f"max {max(delays):.0f} ms"
        )
    finally:
        driver.quit()
        console.stop()
        stack.stop()


def measure_many_actors(scratch: Path, profile: str) -> None:
    env = {"TIMER_PERIOD_SECONDS": "5", "TIMER_TTL_SECONDS": "120"}
    stack, console, logged = start(env, scratch / "many")
    driver = browser(profile)
    try:
        assert console.server is not None
        driver.get(console.server.url)
        driver.execute_script(WATCH_TICKS)
        began = time.monotonic()
        with httpx.Client(base_url=stack.app_url, timeout=60) as client:

            def chat(number: int) -> int:
                return client.post(f"/chat/a{number}", json={"content": "hi"}).status_code

            with ThreadPoolExecutor(CLIENTS) as pool:
                statuses = list(pool.map(chat, range(MANY_ACTORS)))
        sent = time.monotonic()
        print(f"{MANY_ACTORS} chats answered in {sent - began:.1f} s; statuses {set(statuses)}")
        wait_for(
            lambda: (
                driver.execute_script(
                    "return document.querySelector('.type-card .count')?.textContent"
                )
                == str(MANY_ACTORS)
            ),
            120,
            "the page to count every actor active",
        )
        print(f"page shows {MANY_ACTORS} active {time.monotonic() - sent:.1f} s after the last")
        # Under 200 tick lines a second: how far behind the log the page is, on page 1's rows.
        time.sleep(LOAD_WINDOW_SECONDS)  # the measurement window, not a wait for a state
        delays = [
            d for number in range(5) for d in tick_delays(driver, logged, f"ChatAgent a{number}#")
        ]
        print(
            f"tick delay under load ({len(delays)} ticks of 5 actors on page 1): median "
            f"{statistics.median(delays):.0f} ms, max {max(delays):.0f} ms"
        )
        driver.execute_script("window.gc && window.gc()")
        heap = driver.execute_script(HEAP) / 2**20
        rows = driver.execute_script("return document.querySelectorAll('#actor-rows tr').length")
        seen = driver.execute_script("return document.getElementById('actor-count').textContent")
        print(f"JS heap used {heap:.1f} MB; table rows in the DOM {rows}; header says {seen!r}")
    finally:
        driver.quit()
        console.stop()
        stack.stop()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="console-bench-") as scratch:
        measure_tick_delay(Path(scratch), tempfile.mkdtemp(prefix="console-bench-chromium-"))
        measure_many_actors(Path(scratch), tempfile.mkdtemp(prefix="console-bench-chromium-"))


if __name__ == "__main__":
    main()
