"""Side by side: the fan-out DAG (start -> N leaves -> collect -> finish) under LocalExecutor,
JobbersExecutor and, when ``apache-airflow-providers-celery`` is installed in the Airflow
virtualenv, CeleryExecutor with a private Redis broker. Each run gets a fresh PostgreSQL
database and a fresh set of processes (the e2e harness's), parallelism 32.

    .venv/bin/python airflow-jobbers/bench/compare.py --n 200
    .venv/bin/python airflow-jobbers/bench/compare.py --n 1000 --executors local,jobbers
    .venv/bin/python airflow-jobbers/bench/compare.py --executors jobbers --store sqlite,postgres

``--store`` picks the Jobbers store of every Jobbers run, one row per store: ``sqlite`` (a file,
the default), ``postgres`` (schema ``jobbers`` in the run's own Airflow metadata database: the
"no broker" set-up) or ``redis`` (a private ``redis-server``).

Prints per run: the DAG run's duration from the database (start -> end, and queued -> end),
queued-to-start p50/p95 of its task instances, CPU seconds spent during the run per process
(and per child role: fork server, its forks, LocalExecutor workers, ...) and Jobbers' ratio to
Local. ``--py-spy DIR`` also records py-spy profiles of the scheduler and the Jobbers worker
(with its fork server and forks). A benchmark, not a test: numbers depend on the machine's load.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "e2e"))
sys.path.insert(0, str(HERE.parent / "src"))

from airflow_harness import (  # noqa: E402
    STORES,
    Stack,
    ensure_venv,
    postgres_database,
    spare_port,
)

TICK = os.sysconf("SC_CLK_TCK")
#: Airflow's defaults for the timers the e2e tests shorten (a long run queues for longer).
PRODUCTION_TIMERS = {
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "600",
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "120",
    "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "300",
    "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "5",
    "AIRFLOW__JOBBERS__RECONCILE_INTERVAL": "60",
}


@dataclass
class Sample:
    """CPU seconds of one process: its own, and its reaped (waited-for) descendants'."""

    label: str
    own: float
    reaped: float
    children: list[int] = field(default_factory=list)


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in threads:
        try:
            found += [int(p) for p in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
        except OSError:
            continue
    return found


def _role(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    text = " ".join(a.decode(errors="replace") for a in argv)
    if "airflow_jobbers.worker.zygote" in text:
        return "fork server"
    if "serve_logs" in text:
        return "log server"
    try:
        title = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        title = "?"
    return f"child ({title})"


def snapshot(top: dict[str, int]) -> dict[int, Sample]:
    """Every process under the stack's top-level processes, with its CPU counters."""
    samples: dict[int, Sample] = {}

    def visit(pid: int, label: str) -> None:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return
        own = (int(fields[11]) + int(fields[12])) / TICK
        reaped = (int(fields[13]) + int(fields[14])) / TICK
        kids = _children(pid)
        samples[pid] = Sample(label, own, reaped, kids)
        for kid in kids:
            visit(kid, f"{label} > {_role(kid)}" if label in top else f"{label} > forks")

    for name, pid in top.items():
        visit(pid, name)
    return samples


def cpu_during(before: dict[int, Sample], after: dict[int, Sample]) -> dict[str, float]:
    """CPU seconds per label spent between two snapshots (reaped time goes to the parent's
    label as "exited children")."""
    spent: dict[str, float] = defaultdict(float)
    for pid, now in after.items():
        then = before.get(pid)
        own = now.own - (then.own if then else 0.0)
        reaped = now.reaped - (then.reaped if then else 0.0)
        spent[now.label] += own
        if reaped > 0:
            key = now.label if now.label.endswith("forks") else f"{now.label} > exited children"
            spent[key] += reaped
    return dict(spent)


@dataclass
class Result:
    executor: str
    state: str
    duration: float
    queued_to_end: float
    p50: float
    p95: float
    run_p50: float
    tis: dict[str, int]
    cpu: dict[str, float]
    load: str
    phases: dict[str, float] = field(default_factory=dict)


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else 0.0


def _epoch(value: object) -> float:
    """A Manager timestamp (ISO 8601, or epoch seconds) as epoch seconds."""
    if isinstance(value, (int, float)):
        return float(value)
    return datetime.fromisoformat(str(value)).timestamp()


def phases(stack: Stack, dag_id: str, run_id: str, executor: str) -> dict[str, float]:
    """Where a task instance's time goes: median seconds of each step (Jobbers' own timestamps
    split queued-to-start and the time after the task's end), and the mean number of task
    instances running (their run time summed over the DAG run's duration)."""
    rows = stack.sql(
        "select extract(epoch from queued_dttm), extract(epoch from start_date), "
        "extract(epoch from end_date), coalesce(external_executor_id, ''), task_id "
        "from task_instance "
        f"where dag_id = '{dag_id}' and run_id = '{run_id}' and queued_dttm is not null"
    )
    span = stack.sql(
        "select extract(epoch from start_date), extract(epoch from end_date) from dag_run "
        f"where dag_id = '{dag_id}' and run_id = '{run_id}'"
    )[0]
    tis = [(float(q), float(s), float(e), x) for q, s, e, x, _ in rows if q and s and e]
    serial = {
        t: (float(q), float(s), float(e))
        for q, s, e, _, t in rows
        if q and s and e and "leaf" not in t
    }
    busy = sum(e - s for _, s, e, _ in tis) / max(1e-9, float(span[1]) - float(span[0]))
    # Keyed by job id: LocalExecutor's task instances have none (their split is the path's).
    singles = {x: t for q, s, e, x, t in rows if q and s and e and x and "leaf" not in t}
    found: dict[str, list[float]] = defaultdict(list)
    for queued, start, end, job_id in tis:
        found["TI run"].append(end - start)
        name = singles.get(job_id, "").removeprefix("bench_")
        if name:
            found[f"{name}: queued->TI start"].append(start - queued)
            found[f"{name}: run"].append(end - start)
        if executor != "jobbers" or not job_id:
            continue
        try:
            job = stack.job(job_id)
        except Exception:
            continue
        submitted, started, finished = (
            job.get("submitted_at"),
            job.get("started_at"),
            job.get("finished_at"),
        )
        if submitted and started and finished:
            sub, got, done = (_epoch(v) for v in (submitted, started, finished))
            found["queued->submitted"].append(sub - queued)
            found["submitted->claimed"].append(got - sub)
            found["claimed->TI start"].append(start - got)
            found["TI end->job done"].append(done - end)
            if name:
                found[f"{name}: queued->claimed"].append(got - queued)
                after = (job.get("result") or {}).get("ti_started_after")
                if isinstance(after, int | float):
                    found[f"{name}: fork->TI start"].append(float(after))
    result = {name: _median(values) for name, values in found.items()}
    result.update(_critical_path(serial, tis, (float(span[0]), float(span[1]))))
    result["mean TIs running"] = busy
    result["queueing passes"] = len({round(q, 2) for q, _, _, _ in tis})
    return result


def _critical_path(
    serial: dict[str, tuple[float, float, float]],
    tis: list[tuple[float, float, float, str]],
    span: tuple[float, float],
) -> dict[str, float]:
    """The DAG run's duration split along its one path: the three single task instances (each
    from its queueing to its end), the leaves (first queued to last ended), and the waits
    between (the scheduler noticing an end and queueing what follows)."""
    single = [serial[t] for t in ("bench_start", "bench_collect", "bench_finish") if t in serial]
    if len(single) < 3 or not tis:
        return {}
    leaves = [(q, e) for q, s, e, _ in tis if (q, s, e) not in single]
    first_leaf, last_leaf = min(q for q, _ in leaves), max(e for _, e in leaves)
    start, collect, finish = single
    return {
        "path: single TIs queued->start": sum(s - q for q, s, _ in single),
        "path: single TIs run": sum(e - s for _, s, e in single),
        "path: leaves": last_leaf - first_leaf,
        "path: waits": (start[0] - span[0])
        + (first_leaf - start[2])
        + (collect[0] - last_leaf)
        + (finish[0] - collect[2])
        + (span[1] - finish[2]),
    }


def _load() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()


def _celery_installed(venv: Path) -> bool:
    probe = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import airflow.providers.celery"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


def _start_executor_side(stack: Stack, executor: str, args: argparse.Namespace) -> None:
    if executor == "jobbers":
        stack.start_store()
        stack.start_manager()
        for i in range(args.workers):
            stack.start_worker(f"worker-{i}", "default", args.concurrency, serve_logs=i == 0)
    elif executor == "celery":
        stack.start(
            "celery-worker",
            stack.bin("airflow"),
            "celery",
            "worker",
            "--concurrency",
            str(args.concurrency * args.workers),
            "--queues",
            "default",
        )


def _snapshot_sources(work: Path, rev: str | None) -> str:
    """Copy jobbers and airflow_jobbers as they are now (or as of git revision ``rev``):
    editing the checkout during a sitting cannot change the code a run measures, and one
    sitting can compare two versions (``--executors local,jobbers@HEAD~3,jobbers``)."""
    target = work / "src"
    repo = HERE.parents[1]
    packages = (repo / "src" / "jobbers", HERE.parent / "src" / "airflow_jobbers")
    if rev:
        export = work / "export"
        export.mkdir()
        paths = [str(p.relative_to(repo)) for p in packages]
        archive = subprocess.run(
            ["git", "-C", str(repo), "archive", rev, *paths],
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(export)], input=archive, check=True)
        packages = tuple(export / p.relative_to(repo) for p in packages)
    for package in packages:
        skip = shutil.ignore_patterns("__pycache__")
        shutil.copytree(package, target / package.name, ignore=skip)
    return str(target)


def _env_for(
    executor: str, n: int, db: str, broker_port: int, src: str, args: argparse.Namespace
) -> dict[str, str]:
    env = {
        **PRODUCTION_TIMERS,
        "AIRFLOW__CORE__DAGS_FOLDER": str(HERE / "dags"),
        "JOBBERS_BENCH_N": str(n),
        "PYTHONPATH": src,
    }
    if executor == "jobbers":
        env["AIRFLOW__JOBBERS__DAG_PARSE_CACHE"] = str(args.dag_parse_cache)
        for option, value in args.jobbers_option:
            env[f"AIRFLOW__JOBBERS__{option.upper()}"] = value
    if executor == "local":
        env["AIRFLOW__CORE__EXECUTOR"] = "LocalExecutor"
    elif executor == "celery":
        env["AIRFLOW__CORE__EXECUTOR"] = "CeleryExecutor"
        env["AIRFLOW__CELERY__BROKER_URL"] = f"redis://127.0.0.1:{broker_port}/0"
        env["AIRFLOW__CELERY__RESULT_BACKEND"] = f"db+postgresql://postgres@127.0.0.1:5432/{db}"
    return env


def _profile(stack: Stack, out: Path, executor: str) -> list[subprocess.Popen[bytes]]:
    spy = shutil.which("py-spy") or str(stack.venv / "bin" / "py-spy")
    procs = []
    for name, proc in stack.procs.items():
        if name in ("scheduler", "worker-0", "celery-worker", "api-server"):
            target = out / f"{executor}-{name}.txt"
            procs.append(
                subprocess.Popen(
                    [
                        spy,
                        "record",
                        "--pid",
                        str(proc.pid),
                        "--subprocesses",
                        "--nonblocking",
                        "--rate",
                        "50",
                        "--format",
                        "raw",
                        "--output",
                        str(target),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
    return procs


def run_one(venv: Path, label: str, args: argparse.Namespace, store: str = "sqlite") -> Result:
    """One fresh deployment, one DAG run; ``store`` is the Jobbers store (Jobbers runs only)."""
    executor, _, rev = label.partition("@")
    work = Path(tempfile.mkdtemp(prefix=f"airflow-bench-{executor}-"))
    dag_id = f"bench_fanout_{args.n}"
    src = _snapshot_sources(work, rev or None)
    with postgres_database() as db:
        broker_port = spare_port()
        overrides = _env_for(executor, args.n, db, broker_port, src, args)
        stack = Stack(venv=venv, work=work, db_name=db, store=store, overrides=overrides)
        stack.markers.mkdir(parents=True)
        spies: list[subprocess.Popen[bytes]] = []
        try:
            migrate = stack.run(stack.bin("airflow"), "db", "migrate")
            assert migrate.returncode == 0, migrate.stderr[-3000:]
            if executor == "celery":
                stack.start(
                    "redis",
                    "redis-server",
                    "--port",
                    str(broker_port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                )
            stack.start("dag-processor", stack.bin("airflow"), "dag-processor")
            stack.start_api_server()
            stack.start_scheduler()
            _start_executor_side(stack, executor, args)
            from airflow_harness import wait_for

            wait_for(lambda: stack.dag_ready(dag_id), 300, f"DAG {dag_id} to be parsed")
            time.sleep(args.settle)  # let start-up CPU (imports, first parse) die down
            top = {name: proc.pid for name, proc in stack.procs.items()}
            if args.py_spy:
                spies = _profile(stack, Path(args.py_spy), label.replace("@", "-"))
            before = snapshot(top)
            run_id = stack.trigger(dag_id)
            state = stack.wait_run(dag_id, run_id, timeout=args.timeout)
            after = snapshot(top)
            load = _load()
            for spy in spies:
                spy.send_signal(2)
            for spy in spies:
                try:
                    spy.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    spy.kill()
            row = stack.sql(
                "select extract(epoch from end_date - start_date), "
                "extract(epoch from end_date - queued_at) "
                f"from dag_run where dag_id = '{dag_id}' and run_id = '{run_id}'"
            )[0]
            lat = stack.sql(
                "select percentile_cont(0.5) within group (order by s), "
                "percentile_cont(0.95) within group (order by s), "
                "percentile_cont(0.5) within group (order by r) from ("
                "select extract(epoch from start_date - queued_dttm) as s, "
                "extract(epoch from end_date - start_date) as r from task_instance "
                f"where dag_id = '{dag_id}' and run_id = '{run_id}' "
                "and queued_dttm is not null) q"
            )[0]
            steps = phases(stack, dag_id, run_id, executor)
            states = stack.sql(
                "select coalesce(state, 'none'), count(*) from task_instance "
                f"where dag_id = '{dag_id}' and run_id = '{run_id}' group by 1"
            )
            return Result(
                executor=_row_label(label, store, args),
                state=state,
                duration=float(row[0]),
                queued_to_end=float(row[1]),
                p50=float(lat[0] or 0),
                p95=float(lat[1] or 0),
                run_p50=float(lat[2] or 0),
                tis={s: int(c) for s, c in states},
                cpu=cpu_during(before, after),
                load=load,
                phases=steps,
            )
        finally:
            for spy in spies:
                if spy.poll() is None:
                    spy.kill()
            stack.stop_all()
            stack.reap_leftovers()
            if args.keep:
                print(f"logs kept in {work}", file=sys.stderr)
            else:
                shutil.rmtree(work, ignore_errors=True)


def _row_label(label: str, store: str, args: argparse.Namespace) -> str:
    """``jobbers/postgres`` when the sitting compares stores; plain ``jobbers`` otherwise."""
    if label.partition("@")[0] != "jobbers" or args.store == ["sqlite"]:
        return label
    return f"{label}/{store}"


def _store_ratios(results: list[Result]) -> list[str]:
    """Each non-SQLite Jobbers row's duration over the same revision's SQLite row."""
    by_label = {r.executor: r for r in results}
    found = []
    for r in results:
        base, sep, store = r.executor.rpartition("/")
        sqlite = by_label.get(f"{base}/sqlite")
        if sep and store != "sqlite" and sqlite and sqlite.duration:
            found.append(f"{r.executor} / {sqlite.executor} = {r.duration / sqlite.duration:.2f}x")
    return found


def report(rounds: list[list[Result]], args: argparse.Namespace) -> None:
    """One table row per run; each ratio is to LocalExecutor's run of the same round."""
    print(
        f"\nfan-out DAG, N={args.n}, parallelism 32, PostgreSQL; "
        f"Jobbers: {args.workers} worker(s) x {args.concurrency} slots, "
        f"[jobbers] dag_parse_cache = {args.dag_parse_cache} (revisions without it ignore it)"
        + "".join(f", {option} = {value}" for option, value in args.jobbers_option)
    )
    print(
        f"{'round':<5} {'executor':<16} {'state':<8} {'duration':>9} {'queued->end':>12} "
        f"{'q->start p50':>13} {'p95':>6} {'TI run p50':>11} {'CPU s':>6} {'ratio':>6}"
        "  TIs, load(1/5/15)"
    )
    for number, results in enumerate(rounds, 1):
        local = next((r for r in results if r.executor == "local"), None)
        for r in results:
            ratio = f"{r.duration / local.duration:.2f}x" if local and local.duration else "-"
            tis = ",".join(f"{k}={v}" for k, v in sorted(r.tis.items()))
            print(
                f"{number:<5} {r.executor:<16} {r.state:<8} {r.duration:>8.1f}s "
                f"{r.queued_to_end:>11.1f}s {r.p50:>12.2f}s {r.p95:>5.1f}s {r.run_p50:>10.2f}s "
                f"{sum(r.cpu.values()):>6.1f} {ratio:>6}  {tis} {r.load}"
            )
    ratios = [(n, line) for n, results in enumerate(rounds, 1) for line in _store_ratios(results)]
    if ratios:
        print("\nstore against store (duration):")
        for number, line in ratios:
            print(f"  {number} {line}")
    print(
        "\nmedian seconds per step (Jobbers: from its own timestamps), the run's path split"
        " (seconds), mean TIs running:"
    )
    for number, results in enumerate(rounds, 1):
        for r in results:
            steps = ", ".join(f"{k} {v:.2f}" for k, v in r.phases.items())
            print(f"  {number} {r.executor}: {steps}")
    for number, results in enumerate(rounds, 1):
        for r in results:
            total = sum(r.cpu.values())
            print(f"\nCPU seconds during round {number}, {r.executor} (total {total:.1f}):")
            for label, secs in sorted(r.cpu.items()):
                if secs >= 0.05:
                    print(f"  {label:<50} {secs:7.1f}")


def _option(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, not {text!r}")
    return name.strip(), value.strip()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=200, help="leaves of the fan-out DAG")
    parser.add_argument(
        "--executors",
        default="local,jobbers,celery",
        help="comma-separated, run in this order: local, jobbers, jobbers@GIT-REV (that "
        "revision's code), celery (skipped when not installed)",
    )
    parser.add_argument(
        "--store",
        default="sqlite",
        help="comma-separated Jobbers stores, one run (row) each per Jobbers executor: sqlite, "
        "postgres (in the run's Airflow database, schema jobbers), redis",
    )
    parser.add_argument("--workers", type=int, default=1, help="Jobbers workers")
    parser.add_argument("--concurrency", type=int, default=32, help="slots per Jobbers worker")
    parser.add_argument(
        "--dag-parse-cache",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="[jobbers] dag_parse_cache for Jobbers runs (opt-in in production; default here)",
    )
    parser.add_argument(
        "--jobbers-option",
        metavar="NAME=VALUE",
        type=_option,
        action="append",
        default=[],
        help="another [jobbers] option for Jobbers runs, e.g. sync_interval=0.25 (repeatable)",
    )
    parser.add_argument("--runs", type=int, default=1, help="rounds of every executor")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds a run may take")
    parser.add_argument("--settle", type=float, default=10, help="seconds idle before trigger")
    parser.add_argument("--py-spy", metavar="DIR", help="record py-spy profiles into DIR")
    parser.add_argument("--keep", action="store_true", help="keep each run's logs")
    args = parser.parse_args()
    args.store = [s.strip() for s in args.store.split(",") if s.strip()]
    if not args.store or set(args.store) - set(STORES):
        parser.error(f"--store: a comma list of {', '.join(STORES)}")
    venv = ensure_venv()
    executors = [e.strip() for e in args.executors.split(",") if e.strip()]
    unknown = [e for e in executors if e.partition("@")[0] not in ("local", "jobbers", "celery")]
    if unknown:
        parser.error(f"unknown executor(s): {', '.join(unknown)}")
    if "celery" in executors and not _celery_installed(venv):
        print(
            "compare: apache-airflow-providers-celery is not installed; skipping Celery",
            file=sys.stderr,
        )
        executors.remove("celery")
    if args.py_spy:
        Path(args.py_spy).mkdir(parents=True, exist_ok=True)
    rounds: list[list[Result]] = []
    for _ in range(args.runs):
        rounds.append([])
        for executor in executors:
            stores = args.store if executor.partition("@")[0] == "jobbers" else ["sqlite"]
            for store in stores:
                name = _row_label(executor, store, args)
                print(f"compare: running N={args.n} under {name} ...", file=sys.stderr, flush=True)
                rounds[-1].append(run_one(venv, executor, args, store))
                r = rounds[-1][-1]
                print(
                    f"compare: {name}: {r.state} in {r.duration:.1f}s (load {r.load})",
                    file=sys.stderr,
                    flush=True,
                )
    report(rounds, args)


if __name__ == "__main__":
    main()
