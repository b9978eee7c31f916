"""The wrk driver: one closed-loop run of chats against a target, with the CPU each process spent
on it (daprlab/bench/proc_sampling.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from daprlab.bench.proc_sampling import (
    children_cpu_seconds,
    cpu_seconds,
    machine_busy_seconds,
    own_cpu_seconds,
)
from daprlab.stack.process import StackError

WRK_INSTALL_FIX = "install it (Debian/Ubuntu: `sudo apt-get install wrk`)"
CHAT_PATH = "/chat/"
WRK_TIMEOUT = "10s"
# How long past its own duration a wrk run may take before it counts as hung.
WRK_SLACK_SECONDS = 60

# wrk's script: each request goes to a random id of a pre-filled pool, or to a new id.
WRK_SCRIPT = r"""
local prefix, mode, pool, tag
local counter = 0
function init(args)
  prefix, mode, pool, tag = args[1], args[2], tonumber(args[3]), args[4]
  math.randomseed(os.time())
end
wrk.method = "POST"
wrk.body = '{"content":"hi"}'
wrk.headers["Content-Type"] = "application/json"
function request()
  local id
  if mode == "pool" then
    id = "p" .. math.random(0, pool - 1)
  else
    counter = counter + 1
    id = tag .. "n" .. counter
  end
  return wrk.format(nil, prefix .. id)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"errors":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
"""


@dataclass
class Run:
    target: str
    concurrency: int
    round: int
    chats: int
    seconds: float
    errors: int
    p50: float  # ms
    p90: float
    p99: float
    cpu_ms_per_chat: dict[str, float]

    @property
    def rate(self) -> float:
        return self.chats / self.seconds


@dataclass
class Target:
    name: str
    base: str  # http://127.0.0.1:port
    mode: str  # "pool" or "unique"
    pids: dict[str, int]  # what to charge CPU to: app, daprd, redis

    @property
    def url(self) -> str:
        """The chat URL up to the id."""
        return f"{self.base}{CHAT_PATH}"


class Wrk:
    def __init__(self, scratch: Path) -> None:
        binary = shutil.which("wrk")
        if binary is None:
            raise StackError(f"the load generator wrk is not installed: {WRK_INSTALL_FIX}")
        self.binary = binary
        self.script = scratch / "chat.lua"
        self.script.write_text(WRK_SCRIPT)
        self.tags = 0

    def argv(self, target: Target, concurrency: int, seconds: int, pool: int) -> list[str]:
        self.tags += 1  # new-actor ids never repeat across runs
        return [
            self.binary, "-t1", f"-c{concurrency}", f"-d{seconds}s", "--timeout", WRK_TIMEOUT,
            "-s", str(self.script), target.base, "--",
            CHAT_PATH, target.mode, str(pool), f"b{os.getpid()}x{self.tags}",
        ]  # fmt: skip

    def run(self, target: Target, concurrency: int, seconds: int, pool: int) -> dict:
        out = subprocess.run(
            self.argv(target, concurrency, seconds, pool),
            capture_output=True,
            text=True,
            check=False,
            timeout=seconds + WRK_SLACK_SECONDS,
        )
        summary = next((ln for ln in out.stdout.splitlines() if ln.startswith("{")), None)
        if out.returncode != 0 or summary is None:
            raise StackError(f"wrk failed ({out.returncode}): {out.stderr or out.stdout}")
        return json.loads(summary)

    def measure(
        self,
        target: Target,
        concurrency: int,
        round_number: int,
        pool: int,
        warmup_seconds: int,
        measure_seconds: int,
    ) -> Run:
        """A warm-up run, then the measured one with the CPU of `target.pids`, wrk, this
        process and the rest of the machine, per chat."""
        self.run(target, concurrency, warmup_seconds, pool)
        pids = dict(target.pids)
        before = {role: cpu_seconds(pid) for role, pid in pids.items()}
        wrk_before, own_before, busy_before = (
            children_cpu_seconds(),
            own_cpu_seconds(),
            machine_busy_seconds(),
        )
        result = self.run(target, concurrency, measure_seconds, pool)
        used = {role: cpu_seconds(pid) - before[role] for role, pid in pids.items()}
        used["wrk"] = children_cpu_seconds() - wrk_before
        used["runner"] = own_cpu_seconds() - own_before
        tracked = sum(used.values())
        used["other"] = max(0.0, machine_busy_seconds() - busy_before - tracked)
        chats = max(1, int(result["requests"]))
        return Run(
            target=target.name,
            concurrency=concurrency,
            round=round_number,
            chats=chats,
            seconds=result["duration_us"] / 1e6,
            errors=int(result["errors"]),
            p50=result["p50_us"] / 1000,
            p90=result["p90_us"] / 1000,
            p99=result["p99_us"] / 1000,
            cpu_ms_per_chat={role: 1000 * s / chats for role, s in used.items()},
        )
