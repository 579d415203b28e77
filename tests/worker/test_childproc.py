"""The child-process helpers: escalation reaches SIGKILL, the tail stays bounded, orphans die."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest

from jobbers.worker import childproc

from .support import alive

pytestmark = pytest.mark.anyio

IGNORES_SIGTERM = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)


async def test_stop_kills_a_child_that_ignores_sigterm_after_the_grace() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", IGNORES_SIGTERM, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    assert await proc.stdout.readline() == b"ready\n"
    started = time.monotonic()
    code = await childproc.stop(proc, grace=0.3)
    took = time.monotonic() - started
    assert code == -9
    assert 0.3 <= took < 3.0


async def test_stop_returns_at_once_for_a_child_that_obeys_sigterm() -> None:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "import time; time.sleep(60)")
    started = time.monotonic()
    assert await childproc.stop(proc, grace=5.0) == -15
    assert time.monotonic() - started < 3.0


async def test_stop_survives_being_cancelled_and_still_kills() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", IGNORES_SIGTERM, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    await proc.stdout.readline()
    stopping = asyncio.create_task(childproc.stop(proc, grace=0.2))
    await asyncio.sleep(0)
    stopping.cancel()
    await asyncio.gather(stopping, return_exceptions=True)
    assert await asyncio.wait_for(proc.wait(), 5) == -9


async def test_output_tail_keeps_the_last_lines_each_cut_to_width() -> None:
    tail = childproc.OutputTail(lines=3, width=5)
    reader = asyncio.StreamReader(limit=64)
    for n in range(10):
        reader.feed_data(f"line {n} with more\n".encode())
    reader.feed_data(b"x" * 200 + b"\n")
    reader.feed_data(b"last\n")
    reader.feed_eof()
    await tail.drain(reader)
    assert tail.lines() == ["line ", "<a li", "last"]
    assert tail.text() == "line \n<a li\nlast"


async def test_a_child_that_asked_dies_with_its_parent() -> None:
    """A middle process starts a grandchild that calls die_with_parent, then exits: the
    grandchild is gone soon after, where it would otherwise sleep for a minute."""
    grandchild = (
        "import os, sys, time\n"
        "from jobbers.worker import childproc\n"
        "childproc.die_with_parent(int(sys.argv[1]))\n"
        "print(os.getpid(), flush=True)\n"
        "time.sleep(60)\n"
    )
    middle = (
        "import os, subprocess, sys\n"
        f"child = subprocess.Popen([sys.executable, '-c', {grandchild!r}, str(os.getpid())],"
        " stdout=subprocess.PIPE)\n"
        "print(child.stdout.readline().decode().strip(), flush=True)\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", middle, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    pid = int(out.decode().strip())
    deadline = time.monotonic() + 5
    while alive(pid):
        assert time.monotonic() < deadline, "the orphaned grandchild kept running"
        await asyncio.sleep(0.02)


def test_die_with_parent_exits_when_the_parent_is_already_gone() -> None:
    script = (
        "from jobbers.worker import childproc\nchildproc.die_with_parent(1)\nraise SystemExit(0)"
    )
    done = subprocess.run([sys.executable, "-c", script], check=False, timeout=30)
    assert done.returncode == 1, "pid 1 is not its parent: it acts as an orphan and exits"
