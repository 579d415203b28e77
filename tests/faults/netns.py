"""Hosts as Linux network namespaces on one bridge, and the link faults between them.

Each host is a namespace ``jbf-<name>`` whose ``eth0`` is one end of a veth pair; the other end,
``jbf-<name>`` in the root namespace, is a port of the bridge ``jbf-br0``, which also carries the
client's address (``10.231.0.1``). Cutting a host's link sets its bridge port down: packets to
and from it are dropped, as in a partition (established connections time out, new ones find no
route). Everything is named with the ``jbf-`` prefix, so a run that died can be cleaned up by the
next one without touching anything else on the machine.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

PREFIX = "jbf-"
BRIDGE = f"{PREFIX}br0"
SUBNET = "10.231.0"
CLIENT_ADDRESS = f"{SUBNET}.1"
#: Host name -> last byte of its address.
HOSTS = {
    "store": 2,
    "replica": 3,
    "replica2": 4,
    "m1": 11,
    "m2": 12,
    "w1": 21,
    "w2": 22,
    "w3": 23,
    "s1": 31,
    "s2": 32,
    "s3": 33,
}


def unavailable_reason() -> str | None:
    """Why this machine cannot run the fault suite, or None."""
    if os.geteuid() != 0:
        return "the fault suite needs root (network namespaces); CI runs it as root"
    if shutil.which("ip") is None:
        return "the fault suite needs iproute2's `ip` command"
    if shutil.which("redis-server") is None:
        return "the fault suite needs redis-server"
    probe = subprocess.run(["ip", "netns", "list"], capture_output=True, check=False)
    if probe.returncode != 0:
        return f"`ip netns` does not work here: {probe.stderr.decode().strip()}"
    return None


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def address(host: str) -> str:
    return f"{SUBNET}.{HOSTS[host]}"


def namespace(host: str) -> str:
    return f"{PREFIX}{host}"


class Network:
    """The bridge and every host namespace; :meth:`remove` undoes all of it."""

    def __init__(self, hosts: Sequence[str] = tuple(HOSTS)) -> None:
        self.hosts = list(hosts)
        self.cut_hosts: set[str] = set()

    def create(self) -> None:
        remove_leftovers()
        _ip("link", "add", BRIDGE, "type", "bridge")
        _ip("addr", "add", f"{CLIENT_ADDRESS}/24", "dev", BRIDGE)
        _ip("link", "set", BRIDGE, "up")
        for host in self.hosts:
            ns, port = namespace(host), f"{PREFIX}{host}"
            _ip("netns", "add", ns)
            _ip("link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
            _ip("link", "set", port, "master", BRIDGE)
            _ip("link", "set", port, "up")
            _ip("-n", ns, "addr", "add", f"{address(host)}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")

    def remove(self) -> None:
        remove_leftovers()

    def cut(self, host: str) -> None:
        """Partition ``host`` from every other host and from the client."""
        _ip("link", "set", f"{PREFIX}{host}", "down")
        self.cut_hosts.add(host)

    def heal(self, host: str) -> None:
        _ip("link", "set", f"{PREFIX}{host}", "up")
        self.cut_hosts.discard(host)

    def heal_all(self) -> None:
        for host in list(self.cut_hosts):
            self.heal(host)

    def spawn(
        self,
        host: str,
        args: Sequence[str],
        *,
        log: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start ``args`` on ``host``; its output goes to ``log``."""
        with log.open("ab") as out:
            return subprocess.Popen(
                ["ip", "netns", "exec", namespace(host), *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
            )


def remove_leftovers() -> None:
    """Remove every ``jbf-`` namespace (after stopping what still runs in it), veth and bridge."""
    listed = _ip("netns", "list", check=False).stdout.split()
    ours = [name for name in listed if name.startswith(PREFIX)]
    for ns in ours:
        _kill_inside(ns)
    for ns in ours:
        _ip("netns", "del", ns, check=False)
    links = _ip("-o", "link", "show", check=False).stdout.splitlines()
    for line in links:
        name = line.split(":", 2)[1].strip().split("@", 1)[0]
        if name.startswith(PREFIX) and name != BRIDGE:
            _ip("link", "del", name, check=False)
    if _ip("link", "show", BRIDGE, check=False).returncode == 0:
        _ip("link", "del", BRIDGE, check=False)


def _kill_inside(ns: str) -> None:
    """Processes in a namespace this suite made are the suite's own (a run that died left them)."""
    pids = [int(p) for p in _ip("netns", "pids", ns, check=False).stdout.split()]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 5
    while pids and time.monotonic() < deadline:
        pids = [p for p in pids if os.path.exists(f"/proc/{p}")]
        time.sleep(0.02)
