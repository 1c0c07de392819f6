"""A bulk import shared among processes, each job's events in one of them.

One importing process is bound by Python, which runs on one core at a time: reading,
validating and working out the mirror take about as long as PostgreSQL takes to store
the rows, and they mostly wait for each other. Several processes keep every core busy.

This process reads the lines and routes each to a worker by its job id (the event's
`job.id`; a line without one, or one that is not JSON, goes to the first worker, which
reports it). Each worker imports its lines with `bulk.numbered_import`, in line order,
in chunks committed on its own connection, exactly as a single process would. Routing by
job keeps what the mirror depends on in one process, in file order: a job's changes and
history, its applications and everything that happens to them. Shared between workers:

- candidates (one may apply to jobs in two workers): created with ON CONFLICT, so the
  second worker uses the first one's row;
- event ids (dedupe): an id used by events of two jobs in two workers is recorded once,
  by whichever commits first (the other chunk meets the key and is redone, counting the
  event as a duplicate); a single process keeps the first in the file;
- the event log's months: created here, before any line of a new month is handed on.

Memory stays bounded: a worker holds a few chunks, and each worker's queue holds at most
`QUEUE_BATCHES` batches of `BATCH_LINES` lines. Progress is counted as workers finish
chunks. A worker that fails stops the import with its error; what workers committed
before stays, and importing the file again finishes the rest (it is then duplicate).
"""

import logging
import multiprocessing
import os
import queue
import zlib
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
from django.db import connections

from failures.bulk import (
    LINE_TOO_LONG,
    ImportResult,
    LineError,
    _MonthBook,
    line_limit,
    numbered_import,
)
from failures.events import EventInvalid, _timestamp_any
from failures.models import AtsConnection
from failures.processes import inherited_connections_forget

logger = logging.getLogger(__name__)

BATCH_LINES = 1000
QUEUE_BATCHES = 4
# How long a blocked hand-over waits before checking that the workers are still alive.
POLL_SECONDS = 0.2


class WorkerFailed(RuntimeError):
    """A worker stopped with an error; the import stopped with it."""


def _route(raw: Any, workers: int) -> tuple[int, datetime | None]:
    """The worker for a line (by its job id) and when its event happened, if readable."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return 0, None
    if not isinstance(data, dict):
        return 0, None
    job = data.get("job")
    job_id = job.get("id") if isinstance(job, dict) else None
    # Stripped as event_parse strips it: " J1" and "J1" are the same job, in one worker.
    key = str(job_id).strip() if job_id is not None else ""
    worker = zlib.crc32(key.encode()) % workers if key else 0
    try:  # event_parse's own rule: ISO 8601, with a time zone, a year from 1970 to 2999
        moment = _timestamp_any(data.get("occurred_at"), "occurred_at")
    except EventInvalid:  # the worker refuses the line, naming the field
        return worker, None
    return worker, moment.astimezone(UTC)


def _worker(
    index: int,
    connection_pk: Any,
    inbox: Any,
    results: Any,
    detect: bool,
    chunk_lines: int,
) -> None:
    """One worker process: import the lines handed to it, report progress and the result."""

    inherited_connections_forget()
    router = os.getppid()

    def numbered() -> Iterator[tuple[int, Any]]:
        while True:
            try:
                batch = inbox.get(timeout=1)
            except queue.Empty:
                if os.getppid() != router:  # the router died: nobody will hand on more
                    raise WorkerFailed("The routing process is gone.") from None
                continue
            if batch is None:
                return
            yield from batch

    try:
        connection = AtsConnection.objects.get(pk=connection_pk)
        result = numbered_import(
            connection,
            numbered(),
            progress=lambda lines: results.put(("progress", index, lines)),
            detect=detect,
            chunk_lines=chunk_lines,
            partitions=False,
            analyze=index == 0,
        )
        results.put(("done", index, result))
    except BaseException as error:  # handed to the router, which raises it
        # Logged by class only: a message may quote a line's data.
        logger.error("bulk import worker failed worker=%s error=%s", index, type(error).__name__)
        results.put(("failed", index, f"{type(error).__name__}: {error}"))
    finally:
        connections.close_all()


class _Router:
    """Hands lines to the workers in batches, and follows what they report."""

    def __init__(self, processes: list, inboxes: list, results: Any, progress: Any) -> None:
        self.processes = processes
        self.inboxes = inboxes
        self.results = results
        self.progress = progress
        self.done: dict[int, ImportResult] = {}

    def put(self, worker: int, item: Any) -> None:
        while True:
            self.drain()
            try:
                self.inboxes[worker].put(item, timeout=POLL_SECONDS)
                return
            except queue.Full:
                self._check_alive()  # a worker that died would never take its batch

    def drain(self, *, wait: bool = False) -> None:
        """Take in the workers' reports; raise if one failed or died without a word."""
        while True:
            try:
                report = self.results.get(timeout=POLL_SECONDS if wait else 0)
            except queue.Empty:
                if wait:
                    self._check_alive()
                return
            self._take(*report)
            if wait:
                return

    def _take(self, kind: str, index: int, value: Any) -> None:
        if kind == "progress":
            if self.progress is not None:
                self.progress(value)
        elif kind == "done":
            self.done[index] = value
        else:
            raise WorkerFailed(f"Bulk import worker {index} failed: {value}")

    def _check_alive(self) -> None:
        for index, process in enumerate(self.processes):
            if index in self.done or process.is_alive():
                continue
            try:  # its last words may still be on their way
                self._take(*self.results.get(timeout=1))
            except queue.Empty:
                raise WorkerFailed(f"Bulk import worker {index} died.") from None
            return


def import_in_workers(
    *,
    connection: AtsConnection,
    lines: Iterable[Any],
    progress: Callable[[int], None] | None,
    detect: bool,
    chunk_lines: int,
    workers: int,
) -> ImportResult:
    """Import with `workers` processes (see the module's docstring); PostgreSQL only."""
    connections.close_all()  # each process opens its own; none may share this one
    if any(c.connection is not None for c in connections.all(initialized_only=True)):
        logger.warning("bulk import: a database connection stayed open across the fork")
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    inboxes = [context.Queue(maxsize=QUEUE_BATCHES) for _ in range(workers)]
    processes = [
        context.Process(
            target=_worker,
            args=(index, connection.pk, inboxes[index], results, detect, chunk_lines),
            name=f"bulk-import-{index}",
            daemon=True,
        )
        for index in range(workers)
    ]
    for process in processes:
        process.start()
    router = _Router(processes, inboxes, results, progress)
    own = ImportResult()  # the lines refused here (too long), never handed on
    limit = line_limit()
    months = _MonthBook()
    seen_months: set[tuple[int, int]] = set()
    batches: list[list[tuple[int, Any]]] = [[] for _ in range(workers)]
    handled_here = 0
    try:
        for number, raw in enumerate(lines, start=1):
            if raw is LINE_TOO_LONG or len(raw) > limit:
                own.lines += 1
                own.error_add(LineError(number, "body", f"Line longer than {limit} bytes."))
                handled_here += 1
                continue
            if not raw.strip():
                handled_here += 1
                continue
            worker, moment = _route(raw, workers)
            if moment is not None and (moment.year, moment.month) not in seen_months:
                seen_months.add((moment.year, moment.month))
                months.ensure([moment])  # before any line of the month is handed on
            batch = batches[worker]
            batch.append((number, raw))
            if len(batch) >= BATCH_LINES:
                router.put(worker, batch)
                batches[worker] = []
            if handled_here >= BATCH_LINES and progress is not None:
                progress(handled_here)
                handled_here = 0
        for worker, batch in enumerate(batches):
            if batch:
                router.put(worker, batch)
            router.put(worker, None)
        if handled_here and progress is not None:
            progress(handled_here)
        while len(router.done) < workers:
            router.drain(wait=True)
    finally:
        for process in processes:
            process.join(timeout=0 if len(router.done) < workers else 10)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
        for inbox in inboxes:  # what a stopped worker never took is dropped, not waited for
            inbox.cancel_join_thread()
            inbox.close()
        connections.close_all()  # opened here for the months; the caller's next query reopens
    return _merge(own, [router.done[index] for index in range(workers)])


def _merge(own: ImportResult, parts: list[ImportResult]) -> ImportResult:
    """One result: counts added up, the first errors by line number kept."""
    merged = ImportResult()
    everything = [own, *parts]
    for part in everything:
        merged.lines += part.lines
        merged.imported += part.imported
        merged.duplicates += part.duplicates
        merged.failures += part.failures
    for error in sorted((e for part in everything for e in part.errors), key=lambda e: e.line):
        merged.error_add(error)
    # Errors a part counted but did not keep (beyond its own limit) are counted too.
    merged.invalid = sum(part.invalid for part in everything)
    return merged
