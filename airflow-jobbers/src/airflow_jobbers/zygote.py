"""Fork server: import Airflow's task machinery once, then run workloads in a pool of its forks.

A plain child pays Python start-up plus about two seconds of CPU importing Airflow for every
task instance; a fork of this warm process pays neither.

``python -m airflow_jobbers.zygote SOCKET`` listens on a Unix socket (mode 0600) and speaks
the fork-server protocol of ``airflow_jobbers.protocol``: per connection, the workload in; a
pool process (its own session) says its pid, sends its output and runs the workload exactly
as ``airflow_jobbers.child`` does; then the exit code. The runner may ask to stop the workload
on the same connection. The workload, with its token, only ever travels over Unix sockets.

The server is single-threaded (a selector over its sockets and a SIGCHLD wake-up pipe), so
forking it is safe; it dies with the worker that started it (Linux parent-death signal), and
every process it forks dies with it.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import selectors
import signal
import socket
import sys
import traceback
from dataclasses import dataclass

from airflow_jobbers import config, protocol
from airflow_jobbers.childproc import die_with_parent, signal_group

PRELOAD = (
    "airflow_jobbers.workload",
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
    from airflow_jobbers.workload import warm_up

    warm_up()
    # Move everything imported so far out of the garbage collector's reach: forks then don't
    # copy those pages when a collection would have touched them (copy-on-write stays shared).
    gc.collect()
    gc.freeze()


def _recv_exact(conn: socket.socket, size: int) -> bytes:
    chunks: list[bytes] = []
    while size:
        chunk = conn.recv(min(size, 1 << 20))
        if not chunk:
            raise ConnectionError("the runner closed the connection before sending the workload")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


@dataclass(eq=False)
class _Member:
    """A pool process: runs one workload at a time, then waits for the next."""

    pid: int
    control: socket.socket  # the server's end of the pair; the member reads workloads from it
    conn: socket.socket | None = None  # the runner's connection while a workload runs
    said: bytes = b""
    retiring: bool = False


class ForkServer:
    """The accept/hand-over/reap loop (the worker's handle on this process is
    ``fork_client.ForkServerHandle``).

    Workloads run in pool members forked from this process on demand and reused: a member
    runs Airflow's supervisor for one workload, reports its exit code and takes the next, as
    LocalExecutor's worker processes do, so a task instance costs no fork of this large
    process and finds the supervisor's caches warm. The server holds a copy of each busy
    member's connection: it writes the exit code there when the member reports it (or when
    the member dies, with the signal), and it turns the runner's stop requests into signals
    for that member's process group. A member retires after ``MEMBER_WORKLOADS`` workloads.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            self.listener.bind(path)
        finally:
            os.umask(old_umask)
        self.listener.listen(128)
        self.members: dict[int, _Member] = {}
        self.idle: list[_Member] = []
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ)
        self.selector.register(self.wake_r, selectors.EVENT_READ)

    def serve_forever(self) -> None:
        while True:
            for key, _ in self.selector.select(timeout=1.0):
                if key.fileobj is self.listener:
                    self._accept()
                elif key.fileobj is self.wake_r:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self.wake_r, 4096)
                elif key.data is not None:
                    member, what = key.data
                    if what == "control":
                        self._member_says(member)
                    else:
                        self._runner_says(member)
            self._reap()

    # -- a workload in ---------------------------------------------------------------------

    def _accept(self) -> None:
        conn, _ = self.listener.accept()
        try:
            conn.settimeout(30)
            size = int.from_bytes(_recv_exact(conn, protocol.FORK_LENGTH_BYTES), "big")
            if not 0 < size <= protocol.FORK_MAX_WORKLOAD:
                raise ValueError(f"bad workload size {size}")
            data = _recv_exact(conn, size)
        except (OSError, ValueError) as exc:
            print(f"airflow-jobbers fork server: bad request: {exc}", file=sys.stderr)
            conn.close()
            return
        header = size.to_bytes(protocol.FORK_LENGTH_BYTES, "big")
        for _ in range(3):
            member: _Member | None = None
            try:
                member = self.idle.pop() if self.idle else self._spawn()
                socket.send_fds(member.control, [header], [conn.fileno()])
                member.control.sendall(data)
            except OSError as exc:
                print(f"airflow-jobbers fork server: hand-over failed: {exc}", file=sys.stderr)
                if member is not None:
                    self._kill(member, signal.SIGKILL)  # gone or stuck: reaped later
                continue
            member.conn = conn
            conn.setblocking(False)
            self.selector.register(conn, selectors.EVENT_READ, (member, "conn"))
            return
        print("airflow-jobbers fork server: no pool process takes work", file=sys.stderr)
        conn.close()

    def _spawn(self) -> _Member:
        ours, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            ours.close()
            self._become_member(theirs)  # never returns
        theirs.close()
        member = _Member(pid, ours)
        self.members[pid] = member
        self.selector.register(ours, selectors.EVENT_READ, (member, "control"))
        return member

    # -- messages ----------------------------------------------------------------------------

    def _member_says(self, member: _Member) -> None:
        """``<exit code>[ retire]\\n`` once a workload has ended."""
        try:
            chunk = member.control.recv(4096)
        except OSError:
            chunk = b""
        if not chunk:
            self.selector.unregister(member.control)
            return  # exiting: the reaper reports anything still open
        member.said += chunk
        while b"\n" in member.said:
            line, member.said = member.said.split(b"\n", 1)
            words = line.split()
            member.retiring = b"retire" in words[1:]
            self._finish(member, int(words[0]))
            if not member.retiring:
                self.idle.append(member)

    def _runner_says(self, member: _Member) -> None:
        """A stop request from the runner, or its end of the connection closing."""
        conn = member.conn
        if conn is None:
            return
        try:
            chunk = conn.recv(64)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._kill(member, signal.SIGKILL)  # nobody waits for this workload any more
            self.selector.unregister(conn)
            return
        if protocol.FORK_KILL in chunk:
            self._kill(member, signal.SIGKILL)
        elif protocol.FORK_TERM in chunk:
            self._kill(member, signal.SIGTERM)

    def _finish(self, member: _Member, code: int) -> None:
        conn, member.conn = member.conn, None
        if conn is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(conn)
        with contextlib.suppress(OSError):
            conn.setblocking(True)
            conn.sendall(protocol.FORK_EXIT_PREFIX + str(code).encode() + b"\n")
        conn.close()

    def _kill(self, member: _Member, sig: signal.Signals) -> None:
        with contextlib.suppress(ValueError):
            self.idle.remove(member)
        signal_group(member.pid, sig)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            member = self.members.pop(pid, None)
            if member is None:
                continue
            with contextlib.suppress(ValueError):
                self.idle.remove(member)
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(member.control)
            member.control.close()
            code = os.waitstatus_to_exitcode(status)
            # A member ends on its own only between workloads: one that ends while it holds a
            # workload died with it, whatever its code.
            self._finish(member, code if code != 0 else protocol.EXIT_ERROR)

    # -- a pool member -------------------------------------------------------------------

    def _become_member(self, control: socket.socket) -> None:
        code = 0
        try:
            self.selector.close()
            self.listener.close()
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.close(self.wake_r)
            os.close(self.wake_w)
            for other in self.members.values():
                other.control.close()
                if other.conn is not None:
                    other.conn.close()
            os.setsid()
            die_with_parent()
            # Every process the supervisor forks (the task process) dies with it too.
            os.register_at_fork(after_in_child=die_with_parent)
            devnull = os.open(os.devnull, os.O_RDONLY)
            os.dup2(devnull, 0)
            _serve_workloads(control)
        except BaseException:
            traceback.print_exc()
            code = protocol.EXIT_ERROR
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)


#: Workloads a pool member runs before it retires (bounds what one process accumulates).
MEMBER_WORKLOADS = 100


def _serve_workloads(control: socket.socket) -> None:
    """A member's loop: workload and connection in from the server, exit code out."""
    from airflow_jobbers.child import run_bytes

    log_out, log_err = os.dup(1), os.dup(2)
    for served in range(1, MEMBER_WORKLOADS + 1):
        header, fds, _, _ = socket.recv_fds(control, protocol.FORK_LENGTH_BYTES, 1)
        if not header:
            return  # the server is gone
        if len(header) < protocol.FORK_LENGTH_BYTES:
            header += _recv_exact(control, protocol.FORK_LENGTH_BYTES - len(header))
        data = _recv_exact(control, int.from_bytes(header, "big"))
        conn = socket.socket(fileno=fds[0])
        conn.setblocking(True)
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(conn.fileno(), 1)
        os.dup2(conn.fileno(), 2)
        conn.close()
        code = protocol.EXIT_ERROR
        try:
            os.write(1, f"{protocol.FORK_PID_PREFIX}{os.getpid()}\n".encode())
            code = run_bytes(data)
        except Exception:
            traceback.print_exc()
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os.dup2(log_out, 1)
            os.dup2(log_err, 2)
        del data
        retire = served == MEMBER_WORKLOADS
        control.sendall(f"{code}{' retire' if retire else ''}\n".encode())


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: python -m airflow_jobbers.zygote SOCKET_PATH")
    die_with_parent()
    # stdout is the worker's handshake pipe. Airflow logs to stdout while it imports (3.2 does
    # at once), so keep the pipe aside and send fd 1 to the worker's log until the fork.
    handshake = os.dup(1)
    os.dup2(2, 1)
    preload()
    server = ForkServer(sys.argv[1])
    print(f"airflow-jobbers fork server ready on {sys.argv[1]}", file=sys.stderr, flush=True)
    os.write(handshake, protocol.FORK_READY + b"\n")
    os.close(handshake)
    server.serve_forever()


if __name__ == "__main__":
    main()
