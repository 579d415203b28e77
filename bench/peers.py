"""Jobbers against arq, saq, Celery, RQ, taskiq, streaQ and PostgreSQL-backed peers: one table.

    .venv/bin/python bench/peers.py [--rounds 3] [--only arq,saq] [--quick]

Installs each peer in its own virtualenv, cached outside the repo (``JOBBERS_BENCH_CACHE``,
default ``/var/cache/jobbers/bench-peers/<name>``), starts one private ``redis-server`` on a spare
port (stopped by PID at the end), and runs every system through the same scenarios, interleaved
for several rounds (PostgreSQL-backed systems, procrastinate, pgqueuer, saq's PostgreSQL queue and
Jobbers on PostgreSQL, get a fresh database on ``--postgres`` per run, dropped after it):
enqueue one by one; bulk enqueue; drain 10,000 no-ops with one worker process
(with the worker's peak RSS); round trip submit -> result, 500 in a row (p50, p99). Prints the
medians and Jobbers' ratio to each peer. Harnesses live in ``bench/peers/``; each says in its
docstring which settings it uses. The whole run is bounded (about 10 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent / "peers"
CACHE = Path(os.environ.get("JOBBERS_BENCH_CACHE", "/var/cache/jobbers/bench-peers"))
HARNESS_TIMEOUT = 180.0
#: No new round starts unless it is expected to end within this many seconds of the start.
BUDGET = 570.0

#: name -> pip requirements (pinned, so cached virtualenvs stay comparable across runs).
PEERS: dict[str, list[str]] = {
    "arq": ["arq==0.28.0", "hiredis"],
    "saq": ["saq[hiredis]==0.26.4", "typing_extensions"],
    "celery": ["celery[redis]==5.7.0", "hiredis"],
    "rq": ["rq==2.12.0", "hiredis"],
    "taskiq": ["taskiq==0.13.0", "taskiq-redis==1.2.4", "hiredis"],
    "streaq": ["streaq==7.2.0"],
    "procrastinate": ["procrastinate==3.10.0"],
    "pgqueuer": ["pgqueuer==1.6.0", "asyncpg"],
    "saq_postgres": ["saq[postgres]==0.26.4", "typing_extensions"],
}
#: Peers that keep their queue in PostgreSQL: compared with Jobbers on PostgreSQL.
PG_PEERS = frozenset({"procrastinate", "pgqueuer", "saq_postgres"})

UNFAIR = [
    "Peers keep their queue in Redis (in memory, no fsync); Jobbers on SQLite commits every"
    " submission to a file (WAL, synchronous=NORMAL) and answers only after the commit.",
    "Jobbers submits with its store producer (the docs' path for producers) and validates every"
    " submission against the task's signature; peers validate nothing at enqueue.",
    "'jobbers-http' goes through the Manager (HTTP + JSON) like a remote client would.",
    "Bulk: arq, saq and taskiq have no bulk enqueue, so theirs is 1,000 concurrent enqueue calls;"
    " Celery publishes one by one over one connection; RQ and streaQ use one pipeline per 1,000;"
    " Jobbers sends 1,000 per call.",
    "Worker polling: arq poll_delay 10 ms (default 500 ms); taskiq result polling 5 ms"
    " (default 200 ms); Celery uses the solo pool; RQ runs one job at a time (SimpleWorker)."
    " Async workers (Jobbers, arq, saq, taskiq, streaQ) run 50 tasks at once.",
    "saq's round trip holds a pub/sub listener open throughout (without it, Job.refresh"
    " subscribes after reading the job, misses a completion that lands in between and waits"
    " out its 30 s timeout).",
    "Enqueue rates start after one untimed enqueue (connections and first-use setup), as the"
    " round trips start after 10.",
    "Drain counts from the first completion seen to the last (worker start-up excluded).",
    "PostgreSQL peers and jobbers-postgres share one local PostgreSQL server (default settings,"
    " synchronous_commit on), a fresh database per run; their ratios are to jobbers-postgres."
    " procrastinate and pgqueuer have no result API: their round trips poll the job every 2 ms.",
    "All processes share one machine; figures are medians of the rounds.",
]


@dataclass
class System:
    name: str
    python: Path
    harness: Path
    target: str
    scenarios: tuple[str, ...] = ("enqueue_one", "drain", "round_trip")
    unavailable: str | None = None
    results: dict[str, list[dict[str, float]]] = field(default_factory=dict)


def spare_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def ensure_venv(name: str, requirements: list[str]) -> Path:
    """The peer's cached virtualenv, built once (into a temporary folder, then renamed)."""
    folder = CACHE / name
    marker = folder / "jobbers-bench.json"
    if marker.exists() and json.loads(marker.read_text()) == requirements:
        return folder / "bin" / "python"
    print(f"installing {name} into {folder} ...", file=sys.stderr, flush=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    staging = CACHE / f"{name}.building"
    shutil.rmtree(staging, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(staging)], check=True)
    subprocess.run(
        [str(staging / "bin" / "python"), "-m", "pip", "install", "-q", *requirements],
        check=True,
    )
    (staging / "jobbers-bench.json").write_text(json.dumps(requirements))
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return folder / "bin" / "python"


class PrivateRedis:
    def __init__(self) -> None:
        self.port = spare_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        server = shutil.which("redis-server")
        if server is None:
            raise SystemExit("redis-server is not installed (apt-get install redis-server)")
        self.proc = subprocess.Popen(
            [
                *(server, "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no"),
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self.ping():
            if time.monotonic() > deadline:
                self.stop()
                raise SystemExit("redis-server did not start")
            time.sleep(0.05)

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def flush(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            sock.sendall(b"FLUSHALL\r\n")
            sock.recv(16)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def jobbers_redis_problem(url: str) -> str | None:
    """Why Jobbers cannot run on Redis here (no Redis backend in this checkout), or None."""
    try:
        from jobbers.store import open_store

        open_store(url)
    except Exception:
        return "n/a (no Redis backend)"
    return None


def psql(server: str, sql: str) -> None:
    subprocess.run(
        ["psql", f"{server}/postgres", "-qAtc", sql], check=True, capture_output=True, timeout=60
    )


def run_one(
    system: System, scenario: str, n: int, redis: PrivateRedis, tmp: Path, postgres: str
) -> None:
    target = system.target
    database = None
    if "{pgdb}" in target:
        database = f"jobbers_peers_{os.getpid()}_{time.monotonic_ns()}"
        psql(postgres, f"CREATE DATABASE {database}")
        target = target.replace("{pgdb}", f"{postgres}/{database}")
    try:
        _run_one(system, scenario, n, redis, tmp, target)
    finally:
        if database is not None:
            psql(postgres, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def _run_one(
    system: System, scenario: str, n: int, redis: PrivateRedis, tmp: Path, target: str
) -> None:
    if "{db}" in target:
        target = target.replace("{db}", str(tmp / f"{system.name}-{time.monotonic_ns()}.db"))
    elif target.startswith("redis://"):
        redis.flush()
    env = {**os.environ, "BENCH_REDIS": redis.url, "BENCH_PG": target}
    command = [str(system.python), str(system.harness), "--target", target]
    try:
        done = subprocess.run(
            [*command, "--scenario", scenario, "--n", str(n)],
            capture_output=True,
            text=True,
            timeout=HARNESS_TIMEOUT,
            cwd=HERE,
            env=env,
        )
        lines = done.stdout.strip().splitlines()
        result = json.loads(lines[-1]) if done.returncode == 0 and lines else None
        if result is None:
            error = (done.stderr.strip().splitlines() or ["no output"])[-1]
            print(f"  {system.name} {scenario}: failed: {error[:200]}", file=sys.stderr)
            return
    except subprocess.TimeoutExpired:
        print(f"  {system.name} {scenario}: timed out", file=sys.stderr)
        return
    system.results.setdefault(scenario, []).append(result)


def median(system: System, scenario: str, key: str) -> float | None:
    """A system that ran bulk enqueue on its own (jobbers-http, which drains as jobbers-sqlite
    does) shows that in the bulk column instead of its drain's fill."""
    if (scenario, key) == ("drain", "bulk_rate") and "enqueue_bulk" in system.results:
        scenario, key = "enqueue_bulk", "rate"
    values = [r[key] for r in system.results.get(scenario, []) if key in r]
    return statistics.median(values) if values else None


COLUMNS = [
    ("enqueue 1-by-1 /s", "enqueue_one", "rate", True),
    ("bulk /s", "drain", "bulk_rate", True),
    ("drain /s", "drain", "rate", True),
    ("RT p50 ms", "round_trip", "p50", False),
    ("RT p99 ms", "round_trip", "p99", False),
    ("worker RSS MiB", "drain", "rss_mb", False),
]


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def table(systems: list[System]) -> str:
    head = "| system | " + " | ".join(c[0] for c in COLUMNS) + " |"
    rule = "|---|" + "---:|" * len(COLUMNS)
    rows = [head, rule]
    for system in systems:
        if system.unavailable:
            cells = [system.unavailable] + [""] * (len(COLUMNS) - 1)
        else:
            cells = [fmt(median(system, s, k)) for _, s, k, _ in COLUMNS]
        rows.append(f"| {system.name} | " + " | ".join(cells) + " |")
    jobbers = systems[0]
    on_pg = next((s for s in systems if s.name == "jobbers-postgres"), jobbers)
    rows += [
        "",
        f"Jobbers ({jobbers.name}) / peer (rates: higher is better for Jobbers;"
        " latency and RSS: lower is better)",
        "",
        head,
        rule,
    ]
    for peer in systems:
        if peer.unavailable or peer.name.startswith("jobbers"):
            continue
        cells = []
        ours = on_pg if peer.name in PG_PEERS else jobbers
        for _, scenario, key, _ in COLUMNS:
            mine, theirs = median(ours, scenario, key), median(peer, scenario, key)
            cells.append(f"{mine / theirs:.2f}x" if mine and theirs else "-")
        rows.append(f"| {ours.name} vs {peer.name} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="", help="peers to run, comma separated (default all)")
    parser.add_argument("--quick", action="store_true", help="smaller counts, for a smoke test")
    parser.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432",
        help="PostgreSQL server for jobbers-postgres and the PostgreSQL peers",
    )
    args = parser.parse_args()
    if not 1 <= args.rounds <= 9:
        raise SystemExit("--rounds must be 1..9")
    counts = {"enqueue_one": 2000, "enqueue_bulk": 10_000, "drain": 10_000, "round_trip": 500}
    if args.quick:
        counts = {"enqueue_one": 200, "enqueue_bulk": 500, "drain": 500, "round_trip": 50}
    chosen = [p for p in args.only.split(",") if p] or list(PEERS)
    unknown = set(chosen) - set(PEERS)
    if unknown:
        raise SystemExit(f"unknown peer(s): {', '.join(sorted(unknown))}")
    started = time.monotonic()
    signal.signal(signal.SIGTERM, _interrupted)  # stop the private redis-server on the way out
    pythons = {name: ensure_venv(name, PEERS[name]) for name in chosen}
    harness = HERE / "jobbers_peer.py"
    redis = PrivateRedis()
    try:
        systems = [
            System("jobbers-sqlite", Path(sys.executable), harness, "sqlite:///{db}"),
            System(
                "jobbers-redis",
                Path(sys.executable),
                harness,
                redis.url,
                unavailable=jobbers_redis_problem(redis.url),
            ),
            System(
                "jobbers-http",
                Path(sys.executable),
                harness,
                "http+sqlite:///{db}",
                scenarios=("enqueue_one", "enqueue_bulk", "round_trip"),
            ),
            System("jobbers-postgres", Path(sys.executable), harness, "{pgdb}?schema=jobbers"),
        ]
        systems += [
            System(
                name,
                pythons[name],
                HERE / f"{name}_peer.py",
                "{pgdb}" if name in PG_PEERS else redis.url,
            )
            for name in chosen
        ]
        done = 0
        with tempfile.TemporaryDirectory() as tmp:
            for number in range(1, args.rounds + 1):
                elapsed = time.monotonic() - started
                if done and elapsed + elapsed / done > BUDGET:
                    print(f"time budget: stopping after {done} round(s)", file=sys.stderr)
                    break
                print(f"round {number}/{args.rounds} ...", file=sys.stderr, flush=True)
                done = number
                for scenario, n in counts.items():
                    order = systems if number % 2 else list(reversed(systems))
                    for system in order:
                        if system.unavailable is None and scenario in system.scenarios:
                            run_one(system, scenario, n, redis, Path(tmp), args.postgres)
    finally:
        redis.stop()
    load = os.getloadavg()
    print(
        f"\n{done} of {args.rounds} rounds, medians; enqueue {counts['enqueue_one']:,} one by one,"
        f" bulk and drain {counts['drain']:,} no-ops (one worker process),"
        f" {counts['round_trip']} round trips in a row; {os.cpu_count()} CPUs,"
        f" load {load[0]:.1f} {load[1]:.1f}, {time.monotonic() - started:.0f} s\n"
    )
    print(table(systems))
    print("\nNot quite fair:")
    for note in UNFAIR:
        print(f"- {note}")


if __name__ == "__main__":
    main()
