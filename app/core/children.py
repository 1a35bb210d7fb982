"""The worker and inference process that ``sculpt serve`` starts die with it, however it dies (``kill -9``
included), and the rows that dead ones registered are removed when ``sculpt serve`` starts again.

On Linux each child asks the kernel, before it execs its program, to be killed when its parent dies
(``PR_SET_PDEATHSIG``, kept across exec); SIGKILL, because a worker mid-job would otherwise finish the job
first, and a worker killed at any point loses no job (its lease runs out and the job is retried).
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import socket
import sys
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.core.db.tables import InferenceServer, Worker

PARENT_PID_ENV = "SCULPT_PARENT_PID"
PR_SET_PDEATHSIG = 1


def child_environment() -> dict[str, str]:
    """The environment for a child that must die with this process."""
    return {**os.environ, PARENT_PID_ENV: str(os.getpid())}


def die_with_parent() -> None:
    """In a child started with ``child_environment()``, before it execs: be killed when the parent dies, and
    exit now if it already has. Elsewhere, nothing."""
    parent = os.environ.pop(PARENT_PID_ENV, None)  # popped: the child's own children are its business
    if parent is None or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != int(parent):  # the parent died before the request took effect
        os._exit(1)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine. A zombie counts as dead: a killed child is reparented to
    PID 1, and where that is not a reaping init (containers, microVMs) its zombie lingers, answering signals."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: still readable below
    stat = Path(f"/proc/{pid}/stat")
    if not Path("/proc/self").exists():  # no procfs (not Linux): the signal's answer is all there is
        return True
    try:
        state = stat.read_text().rpartition(") ")[2][:1]
    except FileNotFoundError:  # gone since the signal
        return False
    return state not in ("Z", "X")


def forget_dead_local_processes(session: Session) -> list[str]:
    """Remove the rows of this machine's workers and inference processes whose process is gone (their names
    carry the pid: ``sculpt-<pid>@<host>``, ``inference-<pid>@<host>:<port>``); returns their names."""
    own = re.compile(rf"^(?:sculpt|inference)-(\d+)@{re.escape(socket.gethostname())}(?::\d+)?$")
    names = [*session.scalars(select(Worker.name)), *session.scalars(select(InferenceServer.id))]
    dead = [name for name in names if (match := own.match(name)) and not process_alive(int(match.group(1)))]
    if dead:
        session.execute(delete(Worker).where(Worker.name.in_(dead)))
        session.execute(delete(InferenceServer).where(InferenceServer.id.in_(dead)))
        session.commit()
    return dead
