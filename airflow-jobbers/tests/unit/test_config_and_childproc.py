"""``[jobbers]`` options read one way, and the child-process helpers (no Airflow needed)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from airflow_jobbers import config
from airflow_jobbers.worker.childproc import (
    LINE_LIMIT,
    OutputTail,
    die_with_parent,
    signal_group,
    stop_group,
)


class _Conf:
    """Airflow's ``conf.get(section, key, fallback=...)``, over a dict."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.asked: list[tuple[str, str]] = []

    def get(self, section: str, key: str, fallback: str | None = None) -> str | None:
        self.asked.append((section, key))
        return self.values.get(key, fallback)


def test_an_option_comes_from_the_conf_or_its_default() -> None:
    conf = _Conf({"kill_grace_period": "3"})
    assert config.option("kill_grace_period", conf) == "3"
    assert config.option("fork_server", conf) == "True"
    assert conf.asked == [("jobbers", "kill_grace_period"), ("jobbers", "fork_server")]


def test_without_a_conf_the_environment_variable_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__JOBBERS__KILL_GRACE_PERIOD", "7")
    assert config.option("kill_grace_period") == "7"


def test_worker_environment_names_airflows_variables() -> None:
    env = config.worker_environment(_Conf({"fork_server": "False", "fork_server_preload": "a,b"}))
    assert env == {
        "AIRFLOW__JOBBERS__FORK_SERVER": "False",
        "AIRFLOW__JOBBERS__FORK_SERVER_PRELOAD": "a,b",
        "AIRFLOW__JOBBERS__DAG_PARSE_CACHE": "False",
        "AIRFLOW__JOBBERS__KILL_GRACE_PERIOD": "10",
        "AIRFLOW__JOBBERS__MAX_STARTING": "4",
    }
    assert not config.as_bool(env["AIRFLOW__JOBBERS__FORK_SERVER"])
    assert config.as_bool("true")
    assert config.as_bool(" YES ")
    assert not config.as_bool("0")


@pytest.mark.parametrize(("value", "limit"), [("4", 4), (" 0 ", 0), ("32", 32)])
def test_max_starting_is_a_whole_number_of_zero_or_more(value: str, limit: int) -> None:
    assert config.as_max_starting(value) == limit


@pytest.mark.parametrize("value", ["-1", "four", "2.5", ""])
def test_a_bad_max_starting_is_refused_naming_the_option(value: str) -> None:
    with pytest.raises(ValueError, match=r"\[jobbers\] max_starting must be a whole number"):
        config.as_max_starting(value)


def test_output_tail_keeps_the_last_lines_cut_to_the_limit() -> None:
    tail = OutputTail(lines=3)
    for i in range(10):
        tail.add(f"line {i}\n".encode())
    tail.add("x" * (LINE_LIMIT + 50))
    assert tail.lines() == ["line 8", "line 9", "x" * LINE_LIMIT]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux parent-death signal")
def test_a_child_that_dies_with_its_parent_goes_when_the_parent_is_killed() -> None:
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time\n"
            "from airflow_jobbers.worker.childproc import die_with_parent\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'],"
            " preexec_fn=die_with_parent)\n"
            "print(child.pid, flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        env={"PYTHONPATH": ":".join(sys.path)},
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    parent.kill()
    parent.wait(10)
    deadline = time.monotonic() + 10
    while _alive(child):
        assert time.monotonic() < deadline, "the child outlived its parent"
        time.sleep(0.05)
    assert callable(die_with_parent)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_stop_group_escalates_to_sigkill_after_the_grace_period() -> None:
    async def scenario() -> tuple[int, float]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "import signal, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "print('ready', flush=True)\n"
            "time.sleep(60)\n",
            stdout=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        assert proc.stdout is not None
        await proc.stdout.readline()
        started = time.monotonic()
        await stop_group(
            lambda sig: signal_group(proc.pid, sig),
            proc.wait,
            lambda: proc.returncode is not None,
            grace=0.3,
        )
        return await proc.wait(), time.monotonic() - started

    code, elapsed = asyncio.run(scenario())
    assert code == -signal.SIGKILL
    assert 0.3 <= elapsed < 5
