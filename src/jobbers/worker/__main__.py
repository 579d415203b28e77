"""``python -m jobbers.worker --store URL --tasks MOD --queues a,b --concurrency N``.

A plain entry point without the CLI's dependencies, used by the worker's own process tests. It
turns SIGTERM and SIGINT into :meth:`Worker.request_stop` (a second signal skips the grace).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from collections.abc import Sequence

from jobbers.registry import load_modules
from jobbers.store.base import DEFAULT_STORE_URL, Store, open_store
from jobbers.worker.loop import Worker
from jobbers.worker.settings import WorkerSettings


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="python -m jobbers.worker", description=__doc__)
    parser.add_argument("--store", default=env("JOBBERS_STORE_URL", DEFAULT_STORE_URL))
    parser.add_argument("--tasks", default="", help="task modules to import, comma separated")
    parser.add_argument("--queues", default=env("JOBBERS_QUEUES", "default"))
    parser.add_argument("--concurrency", type=int, default=int(env("JOBBERS_CONCURRENCY", "10")))
    parser.add_argument("--lease", type=float, default=30.0)
    parser.add_argument("--grace", type=float, default=30.0)
    parser.add_argument("--maintenance-interval", type=float, default=1.0)
    parser.add_argument("--retention", type=float, default=7 * 86400.0)
    parser.add_argument("--poll-cap", type=float, default=1.0)
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> WorkerSettings:
    return WorkerSettings(
        queues=tuple(q.strip() for q in args.queues.split(",") if q.strip()),
        concurrency=args.concurrency,
        lease=args.lease,
        shutdown_grace=args.grace,
        maintenance_interval=args.maintenance_interval,
        retention=args.retention,
        poll_cap=args.poll_cap,
    )


async def serve(settings: WorkerSettings, store: Store) -> None:
    worker = Worker(store, settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.request_stop)
    try:
        await worker.run()
    finally:
        await store.close()


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = settings_from(args)
        store = open_store(args.store)
        load_modules(args.tasks.split(","))
    except (ValueError, ImportError) as exc:
        raise SystemExit(f"python -m jobbers.worker: error: {exc}") from None
    asyncio.run(serve(settings, store))


if __name__ == "__main__":
    main()
