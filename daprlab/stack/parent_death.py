"""Children that die with the runner: Linux's parent-death signal, set in each child.

`kill -9` of `daprlab up` (an IDE's stop button, the OOM killer) gives the runner no chance to
stop what it started; the kernel still can. PR_SET_PDEATHSIG fires when the *thread* that
forked the child exits, so the stack starts its processes from a thread that lives as long as
the runner (the main thread; control commands run there too, see daprlab/runner/runner.py).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
from collections.abc import Callable

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
# SIGKILL, not SIGTERM: a child that a control command paused (SIGSTOP) would never act on a
# SIGTERM, and an orphan must not linger.
PARENT_DEATH_SIGNAL = signal.SIGKILL
# "off" leaves the children running when the runner dies, as on systems without the signal
# (macOS): how the tests make the leftovers that daprlab/runner/run_record.py must clean up.
SWITCH_ENV = "DAPRLAB_PARENT_DEATH_SIGNAL"


def enabled() -> bool:
    return sys.platform == "linux" and os.environ.get(SWITCH_ENV, "on") != "off"


def die_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` for subprocess.Popen that ties the child's life to this process's thread,
    or None where that is not possible or switched off."""
    if not enabled():
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def preexec() -> None:
        # Runs in the child between fork and exec: no logging, no locks.
        if libc.prctl(PR_SET_PDEATHSIG, int(PARENT_DEATH_SIGNAL), 0, 0, 0) != 0:
            os._exit(126)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(126)

    return preexec
