"""Fork server: import Airflow's task machinery once, then fork one process per workload.

A plain child pays Python start-up plus about two seconds of CPU importing Airflow for every
task instance; a fork of this warm process pays neither.

``python -m airflow_jobbers.worker.zygote SOCKET`` listens on a Unix socket (mode 0600) and speaks
the fork-server protocol of ``airflow_jobbers.protocol``: per connection, the workload in; a
forked process that starts its own session, says its pid, sends its output and runs the
workload exactly as ``airflow_jobbers.worker.child`` does; then its exit code. The workload,
with its token, only ever travels over the socket.

The server is single-threaded (a selector over its sockets and a SIGCHLD wake-up pipe), so
forking it is safe; it dies with the worker that started it (Linux parent-death signal), and
every process it forks dies with it.
"""

from __future__ import annotations

import gc
import importlib
import os
import selectors
import socket
import sys
from typing import TYPE_CHECKING

from airflow_jobbers import config, protocol
from airflow_jobbers.worker.childproc import die_with_parent
from airflow_jobbers.worker.forker import Forker, recv_exact

if TYPE_CHECKING:
    from airflow_jobbers.worker.dagserver import DagServers

PRELOAD = (
    "airflow_jobbers.worker.workload",
    "airflow.executors.base_executor",
    "airflow.executors.workloads",
    "airflow.sdk",
    "airflow.sdk.execution_time.supervisor",
    "airflow.sdk.execution_time.task_runner",
    "airflow.sdk.execution_time.callback_supervisor",
    # what the task process needs to load a DAG bundle and parse a typical DAG file
    "airflow.dag_processing.bundles.manager",
    "airflow.dag_processing.dagbag",
    "airflow.sdk.bases.decorator",
    "airflow.sdk.definitions.decorators",
    "airflow.providers.standard.decorators.python",
    "airflow.providers.standard.operators.python",
    "airflow.providers.standard.operators.bash",
)


def preload() -> None:
    """Import what every workload needs, plus ``[jobbers] fork_server_preload`` modules."""
    extra = config.option("fork_server_preload")
    for name in (*PRELOAD, *(m.strip() for m in extra.split(",") if m.strip())):
        try:
            importlib.import_module(name)
        except Exception as exc:  # a missing optional module only costs speed
            print(f"airflow-jobbers fork server: cannot preload {name}: {exc}", file=sys.stderr)
    from airflow_jobbers.worker.workload import warm_up

    warm_up()
    # Move everything imported so far out of the garbage collector's reach: forks then don't
    # copy those pages when a collection would have touched them (copy-on-write stays shared).
    gc.collect()
    gc.freeze()


class ForkServer(Forker):
    """The accept/fork/reap loop (the worker's handle on this process is
    ``fork_client.ForkServerHandle``).

    One fork per workload, made in this single-threaded loop, so workloads start one at a
    time instead of in a burst that exhausts the Airflow API server's database connection
    pool.

    With ``dag_servers`` (the DAG parse cache), a workload that ``dag_servers.route`` assigns
    to a DAG file version is handed to that version's DAG server instead, which forks it.
    """

    def __init__(self, path: str, dag_servers: DagServers | None = None) -> None:
        super().__init__()
        self.path = path
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            self.listener.bind(path)
        finally:
            os.umask(old_umask)
        self.listener.listen(128)
        self.selector.register(self.listener, selectors.EVENT_READ)
        self.dag_servers = dag_servers
        if dag_servers is not None:
            dag_servers.attach(self)

    def close_inherited(self) -> None:
        super().close_inherited()
        self.listener.close()
        if self.dag_servers is not None:
            self.dag_servers.close_inherited()

    def serve_forever(self) -> None:
        while True:
            for key, _ in self.selector.select(timeout=1.0):
                if key.fileobj is self.listener:
                    self._accept()
                elif key.fileobj == self.wake_r:
                    self.drain_wake()
                elif self.dag_servers is not None:
                    self.dag_servers.readable(key.fileobj)
            exited = self.reap()
            if self.dag_servers is not None:
                self.dag_servers.tick(exited)

    def _accept(self) -> None:
        conn, _ = self.listener.accept()
        try:
            conn.settimeout(30)
            size = int.from_bytes(recv_exact(conn, protocol.FORK_LENGTH_BYTES), "big")
            if not 0 < size <= protocol.FORK_MAX_WORKLOAD:
                raise ValueError(f"bad workload size {size}")
            data = recv_exact(conn, size)
        except (OSError, ValueError) as exc:
            print(f"airflow-jobbers fork server: bad request: {exc}", file=sys.stderr)
            conn.close()
            return
        if self.dag_servers is not None and self.dag_servers.hand_over(conn, data):
            return
        self.fork_workload(conn, data)


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: python -m airflow_jobbers.worker.zygote SOCKET_PATH")
    die_with_parent()
    # stdout is the worker's handshake pipe. Airflow logs to stdout while it imports (3.2 does
    # at once), so keep the pipe aside and send fd 1 to the worker's log until the fork.
    handshake = os.dup(1)
    os.dup2(2, 1)
    preload()
    dag_servers = None
    if config.as_bool(config.option("dag_parse_cache")):
        from airflow_jobbers.worker import dagcache
        from airflow_jobbers.worker.dagserver import DagServers

        dag_servers = DagServers(dagcache.route, dagcache.warm, dagcache.fresh)
    server = ForkServer(sys.argv[1], dag_servers)
    print(f"airflow-jobbers fork server ready on {sys.argv[1]}", file=sys.stderr, flush=True)
    os.write(handshake, protocol.FORK_READY + b"\n")
    os.close(handshake)
    server.serve_forever()


if __name__ == "__main__":
    main()
