"""Parse a DAG file once for many task instances (``[jobbers] dag_parse_cache``; worker side).

Every task process parses its DAG file again before it runs (Airflow's task runner builds a
``BundleDagBag`` of the file): tens of milliseconds for a small DAG, a quarter of a CPU second
for a DAG of a thousand tasks, per task instance. With the cache, the fork server hands the
workloads of one DAG file version to a *DAG server* (``dagserver``): a fork that parsed the
file once and forks the workloads' processes, whose task process then finds the parsed bag.

The parsed bag is used only when it is still exact: the same bundle, file and parse options,
no import error, and neither the DAG file nor any module the parse imported from the bundle
has changed since (size, mtime, inode). Anything else parses as usual.

Trade-off (hence opt-in): the DAG file's top-level code runs once in the DAG server, not once
per task process, and outside any task: a thread it starts does not exist in the forked task
processes, a connection it opens is shared by all of them, and a top-level ``Variable.get``
runs without a task's context (if it raises, the file is an import error there and every task
parses as usual).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

#: (path, st_size, st_mtime_ns, st_ino) of every file the parsed bag depends on.
FileStamp = tuple[str, int, int, int]

_NAME = "airflow-jobbers DAG server"
_cached: dict[tuple[str, str, str], Any] = {}
_stamps: list[FileStamp] = []


def route(data: bytes) -> tuple[str, str, str] | None:
    """The DAG file version a workload needs: (bundle name, bundle version, relative path),
    or None when it is not a valid task workload (it then runs as always, and is refused)."""
    from airflow_jobbers.worker.workload import InvalidWorkload, parse_workload

    try:
        workload = parse_workload(data)
    except InvalidWorkload:
        return None
    bundle = getattr(workload, "bundle_info", None)
    rel_path = getattr(workload, "dag_rel_path", None)
    if workload.type != "ExecuteTask" or bundle is None or not rel_path:
        return None
    return (str(bundle.name), str(bundle.version or ""), os.fspath(rel_path))


def stamp(path: str) -> FileStamp | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (path, st.st_size, st.st_mtime_ns, st.st_ino)


def fresh(stamps: list[FileStamp]) -> bool:
    """Whether every file still looks as it did when the bag was parsed."""
    return all(stamp(s[0]) == s for s in stamps)


def warm(key: tuple[str, str, str]) -> list[FileStamp]:
    """Parse the DAG file of ``key`` as the task runner would, and make the task runner's
    ``BundleDagBag`` return that bag in this process's forks while it stays exact.

    Returns the stamps of the files the bag depends on (the DAG file alone when the parse
    failed: the fork server then starts a new DAG server once the file changes). Never raises.
    """
    name, version, rel_path = key
    try:
        from airflow.dag_processing import dagbag
        from airflow.dag_processing.bundles.manager import DagBundlesManager

        bundle = DagBundlesManager().get_bundle(name=name, version=version or None)
        bundle.initialize()
        bundle_path = Path(bundle.path)
        dag_path = os.fspath(Path(bundle_path, rel_path))
    except Exception as exc:
        print(f"{_NAME} {os.getpid()}: no cache for {rel_path}: {exc!r}", file=sys.stderr)
        return []
    first = stamp(dag_path)
    if first is None:
        return []
    before = set(sys.modules)
    started = time.monotonic()
    try:
        bag = dagbag.BundleDagBag(
            dag_folder=dag_path,
            safe_mode=False,
            load_op_links=False,
            bundle_path=bundle_path,
            bundle_name=name,
        )
    except BaseException as exc:
        print(f"{_NAME} {os.getpid()}: cannot parse {rel_path}: {exc!r}", file=sys.stderr)
        return [first]
    if bag.import_errors or not bag.dags:
        print(f"{_NAME} {os.getpid()}: {rel_path} has import errors; not cached", file=sys.stderr)
        return [first]
    root = os.fspath(bundle_path) + os.sep
    stamps = [first]
    for module_name in set(sys.modules) - before:
        path = getattr(sys.modules.get(module_name), "__file__", None)
        if path and path.startswith(root) and path != dag_path:
            found = stamp(path)
            if found is not None:
                stamps.append(found)
    if stamps[0] != stamp(dag_path):
        return [first]  # changed while it was parsed
    _cached[(dag_path, os.fspath(bundle_path), name)] = bag
    _stamps[:] = stamps
    _install(dagbag)
    took = time.monotonic() - started
    print(
        f"{_NAME} {os.getpid()}: parsed {rel_path} once for its task instances "
        f"({len(bag.dags)} DAG(s), {took * 1000:.0f} ms, {len(stamps)} file(s) watched)",
        file=sys.stderr,
        flush=True,
    )
    return stamps


def _install(dagbag: Any) -> None:
    """Make ``BundleDagBag(...)`` with the task runner's arguments return the cached bag."""
    original = dagbag.BundleDagBag
    if getattr(original, "_jobbers_cache", False):
        return

    class CachedBundleDagBag(original):  # type: ignore[misc,valid-type]
        _jobbers_cache = True

        def __new__(cls, *args: Any, **kwargs: Any) -> Any:
            hit = _lookup(args, kwargs)
            if hit is not None:
                return hit  # an instance of the parent class: __init__ is not run again
            return super().__new__(cls)

    dagbag.BundleDagBag = CachedBundleDagBag


def _lookup(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if args or kwargs.get("safe_mode", True) or kwargs.get("load_op_links", True):
        return None
    extra = set(kwargs) - {"dag_folder", "safe_mode", "load_op_links", "bundle_path", "bundle_name"}
    if extra:
        return None
    key = (
        os.fspath(kwargs.get("dag_folder") or ""),
        os.fspath(kwargs.get("bundle_path") or ""),
        str(kwargs.get("bundle_name")),
    )
    bag = _cached.get(key)
    if bag is None or not fresh(_stamps):
        return None
    return bag
