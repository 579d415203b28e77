"""A real Airflow 3.3 + Jobbers stack for the end-to-end tests.

Runs in the repository's test interpreter (no Airflow there): every Airflow and Jobbers process
is started from the cached Airflow virtualenv (``scripts/ensure-venv.sh``) as its own process
group on loopback spare ports, and stopped by PID. State is read through Airflow's REST API,
the Jobbers Manager API, ``psql`` for the few columns the REST API does not show
(``external_executor_id``, ``queued_by_job_id``) and a read-only look at the Jobbers store.

Jobbers runs on any store backend: a SQLite file in the work directory, a private
``redis-server`` (spare loopback port, no persistence) that the stack starts first and stops last,
or PostgreSQL in Airflow's own metadata database (schema ``jobbers`` beside Airflow's tables: the
"no broker" deployment, nothing to start).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import redis

PROVIDER_DIR = Path(__file__).resolve().parents[2]
REPO = PROVIDER_DIR.parent
DAGS = PROVIDER_DIR / "tests" / "dags"
PG_HOST = os.environ.get("JOBBERS_E2E_PGHOST", "127.0.0.1")
PG_PORT = os.environ.get("JOBBERS_E2E_PGPORT", "5432")
PG_USER = os.environ.get("JOBBERS_E2E_PGUSER", "postgres")
STORES = ("sqlite", "redis", "postgres")
REDIS_PREFIX = "e2e"
PG_SCHEMA = "jobbers"
JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")

T = TypeVar("T")


def spare_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], T | None], timeout: float, what: str, every: float = 0.5) -> T:
    """Poll ``check`` until it returns a truthy value; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            value = check()
            if value:
                return value
        except (
            httpx.HTTPError,
            OSError,
            sqlite3.Error,
            redis.RedisError,
            ValueError,
            KeyError,
        ) as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"timed out after {timeout:.0f}s waiting for {what} (last error: {last!r})"
            )
        time.sleep(every)


def jwt_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    payload += "=" * (-len(payload) % 4)
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload))
    return claims


@dataclass
class Proc:
    """One process we started, in its own process group, output in a log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill9(self) -> None:
        """SIGKILL the process itself only (not its group): a crash, children left to their fate."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        self.popen.wait(timeout=30)

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM the group, SIGKILL it after ``grace`` seconds; always reaps."""
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, sig)
            try:
                self.popen.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
            if sig == signal.SIGTERM:
                # the leader is gone; make sure no child of the group outlives it
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.pid, signal.SIGKILL)
            return


@dataclass
class Stack:
    """The running Airflow + Jobbers deployment, shared by the whole test session."""

    venv: Path
    work: Path
    db_name: str
    store: str = "sqlite"
    api_port: int = field(default_factory=spare_port)
    manager_port: int = field(default_factory=spare_port)
    log_server_port: int = field(default_factory=spare_port)
    redis_port: int = field(default_factory=spare_port)
    overrides: dict[str, str] = field(default_factory=dict)
    procs: dict[str, Proc] = field(default_factory=dict)
    finished: list[Proc] = field(default_factory=list)
    _api: httpx.Client | None = None
    _jobbers: httpx.Client | None = None
    _redis: redis.Redis | None = None

    def __post_init__(self) -> None:
        if self.store not in STORES:
            raise ValueError(f"unknown Jobbers store {self.store!r}; one of {STORES}")

    # -- configuration ---------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def manager_url(self) -> str:
        return f"http://127.0.0.1:{self.manager_port}"

    @property
    def store_path(self) -> Path:
        return self.work / "jobbers.db"

    @property
    def store_url(self) -> str:
        if self.store == "redis":
            return f"redis://127.0.0.1:{self.redis_port}/0?prefix={REDIS_PREFIX}"
        if self.store == "postgres":
            # The very database Airflow's metadata lives in, as in the "no broker" set-up.
            return f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{self.db_name}?schema={PG_SCHEMA}"
        return f"sqlite:///{self.store_path}"

    @property
    def markers(self) -> Path:
        return self.work / "markers"

    def env(self) -> dict[str, str]:
        secret_file = self.work / "secrets.json"
        if not secret_file.exists():
            secret_file.write_text(
                json.dumps({"api": secrets.token_hex(16), "jwt": secrets.token_hex(32)})
            )
        sec = json.loads(secret_file.read_text())
        keep = ("PATH", "LANG", "LC_ALL", "TZ", "HOME", "TMPDIR", "SSL_CERT_FILE")
        env = {k: v for k, v in os.environ.items() if k in keep}
        env.update(
            {
                "PATH": f"{self.venv / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
                "AIRFLOW_HOME": str(self.work / "airflow-home"),
                "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "airflow_jobbers.executor.JobbersExecutor",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__CORE__PARALLELISM": "32",
                "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "32",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": (
                    f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{self.db_name}"
                ),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__API__BASE_URL": self.api_url,
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__SECRET_KEY": sec["api"],
                "AIRFLOW__API_AUTH__JWT_SECRET": sec["jwt"],
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.log_server_port),
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "2",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": "10",
                "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "40",
                "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "5",
                "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "5",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "300",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "2",
                "AIRFLOW__JOBBERS__MANAGER_URL": self.manager_url,
                "AIRFLOW__JOBBERS__REQUEST_TIMEOUT": "3",
                "AIRFLOW__JOBBERS__RECONCILE_INTERVAL": "20",
                "AIRFLOW__JOBBERS__KILL_GRACE_PERIOD": "5",
                "JOBBERS_STORE_URL": self.store_url,
                "JOBBERS_E2E_MARKERS": str(self.markers),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.overrides)
        return env

    # -- processes ---------------------------------------------------------------------------

    def run(self, *argv: str, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
        """Run a command from the Airflow venv to completion (bounded)."""
        return subprocess.run(
            list(argv),
            env=self.env(),
            cwd=self.work,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, name: str, *argv: str, env: dict[str, str] | None = None) -> Proc:
        log_path = self.work / "logs" / f"{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as out:
            popen = subprocess.Popen(
                list(argv),
                env={**self.env(), **(env or {})},
                cwd=self.work,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        proc = Proc(name, popen, log_path)
        self.procs[name] = proc
        return proc

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is not None:
            proc.stop()
            self.finished.append(proc)

    def crash(self, name: str) -> Proc:
        """SIGKILL one process (not its group) and forget it."""
        proc = self.procs.pop(name)
        proc.kill9()
        self.finished.append(proc)
        return proc

    def stop_all(self) -> None:
        """Everything, the store's own server last (workers finish against a live store)."""
        for name in sorted(self.procs, key=lambda name: name == "redis-server"):
            self.stop(name)

    def close(self) -> None:
        for client in (self._api, self._jobbers, self._redis):
            if client is not None:
                client.close()

    def leftovers(self) -> list[int]:
        """PIDs of live processes that carry this stack's environment (our descendants)."""
        needle = f"JOBBERS_E2E_MARKERS={self.markers}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                if needle in (entry / "environ").read_bytes().split(b"\0"):
                    state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                    if state != "Z":
                        found.append(int(entry.name))
            except OSError:
                continue
        return found

    def reap_leftovers(self, timeout: float = 15.0) -> list[int]:
        """Wait for our descendants to go; SIGKILL (by PID) and return the ones that did not."""
        deadline = time.monotonic() + timeout
        while (pids := self.leftovers()) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return pids

    def bin(self, tool: str) -> str:
        return str(self.venv / "bin" / tool)

    def start_store(self) -> Proc | None:
        """The store's server, if it has one: a ``redis-server`` that keeps nothing on disk."""
        if self.store != "redis":
            return None
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        proc = self.start(
            "redis-server",
            binary,
            "--port",
            str(self.redis_port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.work),
        )
        wait_for(lambda: proc.alive() and self.redis_client().ping(), 30, "redis-server")
        return proc

    def redis_client(self) -> redis.Redis:
        if self._redis is None:
            self._redis = redis.Redis(
                host="127.0.0.1", port=self.redis_port, socket_timeout=10, socket_connect_timeout=2
            )
        return self._redis

    def start_api_server(self) -> Proc:
        proc = self.start("api-server", self.bin("airflow"), "api-server")
        wait_for(self._api_healthy, 180, "the Airflow API server")
        return proc

    def _api_healthy(self) -> bool:
        return httpx.get(f"{self.api_url}/api/v2/monitor/health", timeout=3).status_code == 200

    def start_scheduler(self, name: str = "scheduler") -> Proc:
        proc = self.start(name, self.bin("airflow"), "scheduler")
        wait_for(
            lambda: (
                self.api("GET", "/monitor/health")["scheduler"]["status"] == "healthy"
                and proc.alive()
            ),
            120,
            "a healthy scheduler",
        )
        return proc

    def start_manager(self) -> Proc:
        proc = self.start(
            "manager",
            self.bin("airflow"),
            "jobbers",
            "manager",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.manager_port),
            "--store",
            self.store_url,
        )
        wait_for(
            lambda: httpx.get(f"{self.manager_url}/healthz", timeout=2).status_code == 200,
            60,
            "the Jobbers Manager",
        )
        return proc

    def start_worker(
        self,
        name: str,
        queues: str = "default",
        concurrency: int = 4,
        serve_logs: bool = False,
        lease: float = 8.0,
        env: dict[str, str] | None = None,
    ) -> Proc:
        argv = [
            self.bin("airflow"),
            "jobbers",
            "worker",
            "--queues",
            queues,
            "--concurrency",
            str(concurrency),
            "--store",
            self.store_url,
            "--lease",
            str(lease),
        ]
        if not serve_logs:
            argv.append("--skip-serve-logs")
        proc = self.start(name, *argv, env=env)
        wait_for(lambda: self.worker_registered(proc.pid), 60, f"Jobbers worker {name}")
        return proc

    def worker_registered(self, pid: int) -> bool:
        """The worker announced itself (GET /workers), or at least still runs after start-up."""
        proc = next((p for p in self.procs.values() if p.pid == pid), None)
        if proc is not None and not proc.alive():
            raise RuntimeError(f"worker {proc.name} exited:\n{proc.log_text()[-3000:]}")
        response = self.jobbers_http("GET", "/workers")
        if response.status_code != 200:
            return proc is not None and proc.alive()
        body = response.json()
        workers = body.get("workers", body) if isinstance(body, dict) else body
        return any(f":{pid}:" in json.dumps(w) or f'"pid": {pid}' in json.dumps(w) for w in workers)

    # -- Airflow -----------------------------------------------------------------------------

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        if self._api is None:
            self._api = httpx.Client(base_url=f"{self.api_url}/api/v2", timeout=15)
        response = self._api.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        wait_for(lambda: self.dag_ready(dag_id), 120, f"DAG {dag_id} to be parsed")
        body = {
            "dag_run_id": f"e2e_{uuid.uuid4().hex[:12]}",
            "logical_date": None,
            "conf": conf or {},
        }
        run = self.api("POST", f"/dags/{dag_id}/dagRuns", json=body)
        return str(run["dag_run_id"])

    def dag_ready(self, dag_id: str) -> bool:
        response = self._api_raw("GET", f"/dags/{dag_id}")
        if response.status_code != 200:
            return False
        if response.json().get("is_paused"):
            self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
        return True

    def _api_raw(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self.api("GET", "/version")
        assert self._api is not None
        return self._api.request(method, path, **kwargs)

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"])

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 180) -> str:
        return wait_for(
            lambda: (s := self.run_state(dag_id, run_id)) in ("success", "failed") and s,
            timeout,
            f"run {dag_id}/{run_id} to finish",
        )

    def tis(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        body = self.api(
            "GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100}
        )
        return list(body["task_instances"])

    def ti(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        return dict(self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"))

    def wait_ti_state(
        self, dag_id: str, run_id: str, task_id: str, states: set[str], timeout: float = 120
    ) -> dict[str, Any]:
        return wait_for(
            lambda: (ti := self.ti(dag_id, run_id, task_id))["state"] in states and ti,
            timeout,
            f"{dag_id}/{run_id}/{task_id} to reach {sorted(states)}",
        )

    def sql(self, query: str) -> list[list[str]]:
        out = subprocess.run(
            [
                "psql",
                "-h",
                PG_HOST,
                "-p",
                PG_PORT,
                "-U",
                PG_USER,
                "-d",
                self.db_name,
                "-v",
                "ON_ERROR_STOP=1",
                "-At",
                "-F",
                "\t",
                "-c",
                query,
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
        return [line.split("\t") for line in out.splitlines() if line]

    def ti_rows(self, dag_id: str, run_id: str) -> dict[str, dict[str, str]]:
        """task_id -> id, state, external_executor_id, hostname, try_number, queued_by_job_id."""
        cols = [
            "task_id",
            "id",
            "state",
            "external_executor_id",
            "hostname",
            "try_number",
            "queued_by_job_id",
        ]
        rows = self.sql(
            f"select {', '.join(cols)} from task_instance "
            f"where dag_id = '{dag_id}' and run_id = '{run_id}'"
        )
        return {row[0]: dict(zip(cols, row, strict=True)) for row in rows}

    # -- Jobbers -----------------------------------------------------------------------------

    def jobbers_http(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if self._jobbers is None:
            self._jobbers = httpx.Client(base_url=self.manager_url, timeout=10)
        return self._jobbers.request(method, path, **kwargs)

    def jobbers(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.jobbers_http(method, path, **kwargs)
        response.raise_for_status()
        return response.json()

    def job(self, job_id: str) -> dict[str, Any]:
        return dict(self.jobbers("GET", f"/tasks/{job_id}"))

    def wait_job(self, job_id: str, timeout: float = 60) -> dict[str, Any]:
        """The job once final (Airflow may see the task's end before the job records it)."""
        final = ("completed", "failed", "cancelled", "dead")
        return wait_for(
            lambda: (j := self.job(job_id))["status"] in final and j,
            timeout,
            f"job {job_id} to end",
        )

    def run_workload_directly(
        self, workload: dict[str, Any], prefix: str, timeout: float = 60
    ) -> dict[str, Any]:
        """Submit a (crafted) workload to the runner task ourselves, bypassing the executor as
        a broker redelivery or a forged request would; return the job once it has ended."""
        from airflow_jobbers.protocol import TASK_NAME

        job_id = f"{prefix}-{uuid.uuid4()}"
        submission = {"name": TASK_NAME, "id": job_id, "queue": "default"}
        self.jobbers("POST", "/tasks", json={**submission, "kwargs": {"workload": workload}})
        return self.wait_job(job_id, timeout)

    def wait_jobs_for_ti(self, ti_id: str, timeout: float = 60) -> list[dict[str, Any]]:
        """Every job of a task instance, once all of them are final."""
        final = ("completed", "failed", "cancelled", "dead")
        return wait_for(
            lambda: (
                (jobs := self.jobs_for_ti(ti_id))
                and all(j["status"] in final for j in jobs)
                and jobs
            ),
            timeout,
            f"the jobs of task instance {ti_id} to end",
        )

    def runner_jobs(self, status: str | None = None) -> list[dict[str, Any]]:
        """Every Jobbers task of the Airflow runner (follows the cursor)."""
        from airflow_jobbers.protocol import TASK_NAME

        jobs: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(100):
            params: dict[str, Any] = {"name": TASK_NAME, "limit": 1000}
            if status:
                params["status"] = status
            if cursor:
                params["cursor"] = cursor
            body = self.jobbers("GET", "/tasks", params=params)
            jobs.extend(body["tasks"])
            cursor = body.get("cursor")
            if not cursor:
                break
        return jobs

    def jobs_for_ti(self, ti_id: str) -> list[dict[str, Any]]:
        return [
            job
            for job in self.runner_jobs()
            if ((job.get("kwargs") or {}).get("workload") or {}).get("ti", {}).get("id") == ti_id
        ]

    def jobs_for_task(self, dag_id: str, run_id: str, task_id: str) -> list[dict[str, Any]]:
        """Jobs of every try of a task (Airflow 3 gives each try its own TI id)."""
        found = []
        for job in self.runner_jobs():
            ti = ((job.get("kwargs") or {}).get("workload") or {}).get("ti") or {}
            if (ti.get("dag_id"), ti.get("run_id"), ti.get("task_id")) == (dag_id, run_id, task_id):
                found.append(job)
        return found

    def stored_tokens(self) -> set[str]:
        """Every JWT in the Jobbers store, found without knowing its schema (read-only)."""
        found: set[str] = set()
        if self.store == "redis":
            values = self._redis_values()
        elif self.store == "postgres":
            values = self._postgres_values()
        else:
            values = self._sqlite_values()
        for value in values:
            if isinstance(value, bytes):
                value = value.decode(errors="ignore")
            if isinstance(value, str) and "eyJ" in value:
                found.update(JWT_RE.findall(value))
        return found

    def _sqlite_values(self) -> Iterator[object]:
        conn = sqlite3.connect(f"file:{self.store_path}?mode=ro", uri=True, timeout=10)
        try:
            tables = [
                r[0] for r in conn.execute("select name from sqlite_master where type='table'")
            ]
            for table in tables:
                for row in conn.execute(f'select * from "{table}"'):
                    yield from row
        finally:
            conn.close()

    def _postgres_values(self) -> Iterator[object]:
        """Every row of every table in the Jobbers schema, each as one line of text."""
        tables = self.sql(
            f"select tablename from pg_tables where schemaname = '{PG_SCHEMA}' order by 1"
        )
        for (table,) in tables:
            for row in self.sql(f'select t::text from {PG_SCHEMA}."{table}" t'):
                yield from row

    def _redis_values(self) -> Iterator[object]:
        """Every name and value under the deployment's key prefix, whatever the key's type."""
        client = self.redis_client()
        for key in client.scan_iter(match=f"{{{REDIS_PREFIX}}}*", count=1000):
            kind = client.type(key)
            if kind == b"string":
                yield client.get(key)
            elif kind == b"hash":
                for name, value in client.hgetall(key).items():
                    yield from (name, value)
            elif kind == b"list":
                yield from client.lrange(key, 0, -1)
            elif kind == b"set":
                yield from client.smembers(key)
            elif kind == b"zset":
                yield from client.zrange(key, 0, -1)
            elif kind == b"stream":
                for _entry_id, fields in client.xrange(key):
                    for name, value in fields.items():
                        yield from (name, value)
            elif kind != b"none":  # expired between SCAN and TYPE
                raise ValueError(f"store key {key!r} has a type this check cannot read: {kind!r}")

    def marker_lines(self, kind: str) -> list[str]:
        path = self.markers / kind
        return path.read_text().splitlines() if path.exists() else []

    def all_logs(self) -> dict[str, str]:
        return {p.name: p.log_text() for p in [*self.procs.values(), *self.finished]}


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, uniquely named PostgreSQL database, dropped at the end."""
    name = f"airflow_jobbers_e2e_{uuid.uuid4().hex[:10]}"
    base = ["-h", PG_HOST, "-p", PG_PORT, "-U", PG_USER]
    subprocess.run(["createdb", *base, name], check=True, timeout=60, capture_output=True)
    try:
        yield name
    finally:
        subprocess.run(
            ["dropdb", *base, "--if-exists", "--force", name],
            timeout=60,
            capture_output=True,
            check=False,
        )


def ensure_venv() -> Path:
    """Build (first time) or refresh the cached Airflow venv; bounded by 20 minutes."""
    out = subprocess.run(
        ["bash", str(PROVIDER_DIR / "scripts" / "ensure-venv.sh")],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"ensure-venv.sh failed:\n{out.stderr[-5000:]}")
    return Path(out.stdout.strip().splitlines()[-1])
