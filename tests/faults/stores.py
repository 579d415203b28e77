"""The store a scenario runs against, on its own host: a backend is a parameter of every
scenario. Each kind starts its server in the store host's namespace (its own data directory,
stopped by pid) and can be killed, restarted, paused and resumed as the faults need."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Protocol

import redis

from .netns import Network, address


class StoreHost(Protocol):
    kind: str

    def url(self, prefix: str, timeout: float) -> str: ...
    def start(self) -> None: ...
    def kill(self) -> None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def stop(self) -> None: ...


class RedisHost:
    """``redis-server`` on ``host``; ``fsync`` is None (no persistence) or an ``appendfsync``."""

    kind = "redis"

    def __init__(
        self,
        net: Network,
        workdir: Path,
        *,
        host: str = "store",
        port: int = 6379,
        fsync: str | None = None,
        extra: tuple[str, ...] = (),
    ) -> None:
        self.net = net
        self.workdir = workdir
        self.host = host
        self.port = port
        self.fsync = fsync
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def address(self) -> str:
        return address(self.host)

    def url(self, prefix: str, timeout: float) -> str:
        return f"redis://{self.address}:{self.port}/0?prefix={prefix}&timeout={timeout:g}"

    def args(self) -> list[str]:
        persistence = (
            ["--appendonly", "yes", "--appendfsync", self.fsync]
            if self.fsync
            else ["--appendonly", "no"]
        )
        return [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            self.address,
            "--protected-mode",
            "no",
            "--save",
            "",
            *persistence,
            "--dir",
            str(self.workdir),
            *self.extra,
        ]

    def start(self, timeout: float = 20.0) -> None:
        self.proc = self.net.spawn(self.host, self.args(), log=self.workdir / "redis.log")
        wait_for_redis(self.address, self.port, timeout, self.proc, self.workdir / "redis.log")

    def kill(self) -> None:
        """kill -9: what was not on disk is gone."""
        if self.proc is not None:
            self.resume()
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None

    def pause(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.resume()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)
        self.proc = None

    def wipe(self) -> None:
        """Forget everything on disk (a restart then comes back empty)."""
        for name in os.listdir(self.workdir):
            if name.startswith(("appendonly", "dump")):
                path = self.workdir / name
                if path.is_dir():
                    for inner in path.iterdir():
                        inner.unlink()
                    path.rmdir()
                else:
                    path.unlink()


def wait_for_redis(
    host: str,
    port: int,
    timeout: float,
    proc: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> None:
    """Until ``PING`` answers ``PONG`` (and not ``LOADING``): an AOF replays first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"redis-server exited: {log.read_text() if log else ''}")
        try:
            with socket.create_connection((host, port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(64).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        time.sleep(0.02)
    raise AssertionError(f"redis-server at {host}:{port} not up within {timeout} s")


SERVICE = "mymaster"
SENTINEL_PORT = 26379


class SentinelHost:
    """A primary (on ``store``), two replicas and three Sentinels (quorum 2), each on a host of
    its own; clients find the primary through the Sentinels. :meth:`kill` kills whichever
    server is the primary now."""

    kind = "redis+sentinel"

    def __init__(self, net: Network, workdir: Path, *, wait_replicas: int = 1) -> None:
        self.net = net
        self.workdir = workdir
        self.wait_replicas = wait_replicas
        self.servers = {
            host: RedisHost(net, workdir / host, host=host)
            for host in ("store", "replica", "replica2")
        }
        self.sentinels: dict[str, subprocess.Popen[bytes]] = {}

    def url(self, prefix: str, timeout: float) -> str:
        found = ",".join(f"{address(h)}:{SENTINEL_PORT}" for h in ("s1", "s2", "s3"))
        return (
            f"redis+sentinel://{found}/{SERVICE}/0?prefix={prefix}&timeout={timeout:g}"
            f"&wait_replicas={self.wait_replicas}"
        )

    def start(self) -> None:
        primary = self.servers["store"]
        primary.start()
        for host in ("replica", "replica2"):
            replica = self.servers[host]
            replica.extra = ("--replicaof", primary.address, str(primary.port))
            replica.start()
        for host in ("s1", "s2", "s3"):
            self.sentinels[host] = self._sentinel(host)
        self.wait_ready()

    def _sentinel(self, host: str) -> subprocess.Popen[bytes]:
        folder = self.workdir / host
        folder.mkdir(parents=True, exist_ok=True)
        conf = folder / "sentinel.conf"
        primary = self.servers["store"]
        conf.write_text(
            f"port {SENTINEL_PORT}\nbind {address(host)}\nprotected-mode no\ndir {folder}\n"
            f"sentinel monitor {SERVICE} {primary.address} {primary.port} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} 1000\n"
            f"sentinel failover-timeout {SERVICE} 10000\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )
        return self.net.spawn(
            host, ["redis-server", str(conf), "--sentinel"], log=folder / "sentinel.log"
        )

    def ask(self, host: str, *command: str) -> Any:
        client: Any = redis.Redis(
            address(host), SENTINEL_PORT, socket_timeout=1, decode_responses=True
        )
        try:
            return client.execute_command(*command)
        finally:
            client.close()

    def primary(self) -> str | None:
        """The primary's address as a majority of Sentinels see it."""
        seen: dict[str, int] = {}
        for host in self.sentinels:
            try:
                found = self.ask(host, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
            except Exception:
                continue
            if isinstance(found, list | tuple) and found:
                seen[str(found[0])] = seen.get(str(found[0]), 0) + 1
        best = max(seen.items(), key=lambda kv: kv[1], default=(None, 0))
        return best[0] if best[1] >= 2 else None

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until every Sentinel knows both replicas and both other Sentinels."""
        deadline = time.monotonic() + timeout
        for host in self.sentinels:
            while True:
                try:
                    replicas = self.ask(host, "SENTINEL", "REPLICAS", SERVICE)
                    others = self.ask(host, "SENTINEL", "SENTINELS", SERVICE)
                    if len(replicas) == 2 and len(others) == 2:
                        break
                except Exception:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"Sentinel on {host} not ready within {timeout} s")
                time.sleep(0.1)

    def kill(self) -> None:
        """kill -9 the current primary."""
        primary = self.primary()
        for server in self.servers.values():
            if server.address == primary:
                server.kill()
                return
        raise AssertionError(f"no server is the primary {primary}")

    def pause(self) -> None:
        raise NotImplementedError

    def resume(self) -> None:
        """Nothing paused: every server runs or was killed."""

    def stop(self) -> None:
        for proc in self.sentinels.values():
            proc.send_signal(signal.SIGTERM)
        for proc in self.sentinels.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.sentinels.clear()
        for server in self.servers.values():
            server.stop()
