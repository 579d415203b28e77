"""mypy checks ``task.submit()`` against the task's signature (the decorator's ParamSpec)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SAMPLE = """
from jobbers import AsyncTaskHandle, TaskContext, TaskHandle, task


@task(name="typing.greet")
async def greet(name: str, times: int = 1) -> str:
    return name * times


@task(name="typing.beat")
def beat(ctx: TaskContext, n: int) -> int:
    return n


ok: TaskHandle = greet.submit(name="Ada")
ok2: TaskHandle = greet.options(id="x", delay=5.0).submit("Ada", times=2)
ok3: TaskHandle = beat.submit(n=1)


async def main() -> None:
    handle: AsyncTaskHandle = await greet.submit_async(name="Ada")
    await handle.result(timeout=1.0)


greet.submit(nam="x")  # E: unexpected keyword
greet.submit(name=1)  # E: wrong type
beat.submit()  # E: missing n
greet.options(dealy=5).submit(name="x")  # E: unknown option
"""


@pytest.mark.timeout(600)
def test_mypy_rejects_what_the_signature_rejects(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(SAMPLE)
    result = subprocess.run(
        [
            *(sys.executable, "-m", "mypy", "--strict", "--no-incremental"),
            *("--config-file", "/dev/null", "--cache-dir", str(tmp_path / "cache"), str(sample)),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    lines = sorted({int(line.split(":")[1]) for line in errors})
    expected = [n for n, line in enumerate(SAMPLE.splitlines(), 1) if "# E:" in line]
    assert len(expected) == 4
    assert lines == expected, result.stdout
    assert '"nam"' in result.stdout
