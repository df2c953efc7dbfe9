"""The skeleton every long job on a worker shares: a training run, an LR range test, an ingest.

The job's database row is its truth; the broker only rings the bell (docs/ARCHITECTURE.md). A worker

1. claims the row with one conditional UPDATE (`claim`): a duplicate delivery finds it taken and
   returns, however often the message arrives;
2. proves it is alive while it works (`working` runs a `Heartbeat`): the reaper treats a row whose
   heartbeat is older than DLSTUDIO_STALE_AFTER as abandoned (its worker was killed, or ran out of
   memory) and hands it on or fails it;
3. writes everything after the claim through its `Lease`, conditional on still holding the row, so
   a worker that lost it (the reaper gave it to another) changes nothing; `Lease.write` extends that
   to rows of other tables (an epoch, an evaluation), written in the same transaction;
4. ends a failure with one sentence a person can act on (`failure_sentence`), the traceback in the
   worker's log;
5. gives its memory back when it is done (`working` again): a training worker lives for many jobs.
"""
from __future__ import annotations

import gc
import logging
import sys
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Model, QuerySet
from django.utils import timezone

from workers.engine.diskspace import disk_full
from workers.engine.errors import SELF_EXPLAINING, PackError

log = logging.getLogger(__name__)

OUT_OF_MEMORY = "The device ran out of memory; lower batch_size or image size, or pick a smaller arch."
MISSING_FILES = "The dataset's packed images or a checkpoint are missing or damaged; upload the dataset again."

# Set when the worker begins a warm shutdown (a deploy, Ctrl-C; workers/signals.py): a job that would
# take hours checkpoints and goes back to the queue instead of holding the shutdown up.
shutdown_requested = threading.Event()


class Lease:
    """A claimed row, seen only while this worker still holds it."""

    def __init__(self, model: type[Model], pk: int, **held):
        self.pk = pk
        self.mine = model.objects.filter(pk=pk, **held)

    def update(self, **fields) -> bool:
        """Write to the row if it is still this worker's; whether it was."""
        return bool(self.mine.update(**fields))

    def write(self, also: Callable[[], object], **fields) -> bool:
        """`also()` (writes to other tables: an epoch's row, an evaluation) and the row's `fields`, in one
        transaction and only while the row is this worker's; whether it was.

        The conditional UPDATE comes first: it locks the row until the commit (PostgreSQL; SQLite's write
        lock is the whole file's), so the reaper cannot hand the row on between the check and `also()`.
        """
        with transaction.atomic():
            held = self.mine.update(**fields) if fields else self.mine.select_for_update().exists()
            if held:
                also()
            return bool(held)

    def beat(self) -> bool:
        return self.update(heartbeat_at=timezone.now())


def update_unlocked(rows: QuerySet, **changes) -> int:
    """UPDATE those of `rows` that no other transaction holds locked now; how many.

    For the reaper: a row locked by a worker's open transaction is being written by its holder, so it is
    not abandoned this round; and a worker stopped inside that transaction must not hold the reaper up at
    its row, and with it every other run (PostgreSQL; SQLite has no row locks, docs/RELIABILITY.md).
    """
    with transaction.atomic():
        pks = list(rows.select_for_update(skip_locked=True).values_list("pk", flat=True))
        return rows.filter(pk__in=pks).update(**changes) if pks else 0


IDLE_TRANSACTION_FLOOR = 30  # seconds


def bound_idle_transactions(sender=None, connection=None, **kwargs) -> None:
    """Have PostgreSQL end this connection's session once it has sat idle inside a transaction for
    DLSTUDIO_STALE_AFTER, and at least IDLE_TRANSACTION_FLOOR seconds (a `connection_created` receiver,
    connected in worker processes).

    A worker stopped inside a transaction (SIGSTOP, a frozen VM) would otherwise keep its row locks for
    ever: a cancel of its run would wait on them. No job of a worker holds a transaction open while it
    computes, so a transaction idle that long belongs to a worker the reaper already counts as gone; the
    floor keeps a worker that a loaded machine merely slows from being taken for a stopped one.
    """
    if connection is not None and connection.vendor == "postgresql":
        seconds = max(settings.STALE_AFTER, IDLE_TRANSACTION_FLOOR)
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('idle_in_transaction_session_timeout', %s, false)",
                           [f"{int(seconds * 1000)}"])


def claim(model: type[Model], pk: int, *, where: dict, changes: dict, held: dict) -> Lease | None:
    """Take the row if it is as `where` says, in one conditional UPDATE that makes it `changes`;
    the lease then holds while the row matches `held`. None when another worker (or nobody) has it."""
    if model.objects.filter(pk=pk, **where).update(**changes) != 1:
        return None
    return Lease(model, pk, **held)


def beat_interval() -> float:
    """Seconds between two heartbeats: several per DLSTUDIO_STALE_AFTER, so one slow write never makes a
    live worker look gone."""
    return min(5.0, settings.STALE_AFTER / 4)


class Heartbeat(threading.Thread):
    """A thread that beats while a job runs, until a beat finds the row no longer held.

    It only proves the worker alive. Whether the job still holds its row is for the job's own writes
    to tell (each is conditional on the lease): this thread's connection may not see the row at all,
    as in a test that runs a job inside a transaction it has not committed."""

    # It holds no lock a forked child needs (it sleeps, or runs one UPDATE on its own connection), so
    # the ingest's decoder pool may still fork while it runs (workers/engine/ingest/pool.py).
    fork_safe = True

    def __init__(self, name: str, beat: Callable[[], bool]):
        super().__init__(name=f"heartbeat-{name}", daemon=True)
        self.beat = beat
        self._finished = threading.Event()

    def run(self):
        every = beat_interval()
        last = time.monotonic()
        try:
            while not self._finished.wait(every):
                try:
                    if not self.beat():
                        return
                except Exception:
                    # A database hiccup (a restart, a dropped connection) costs this beat, not the job: one
                    # exception ending the thread would let the reaper hand a live run on. The next beat
                    # reconnects; a database down past DLSTUDIO_STALE_AFTER is the reaper's to judge.
                    log.warning("%s could not beat; trying again in %.1f s", self.name, every, exc_info=True)
                    connection.close()
                    continue
                now = time.monotonic()
                if now - last > 2 * every:  # what a reaper that handed this run on will have seen
                    log.warning("%s beat %.1f s after the last (every %.1f s is due; DLSTUDIO_STALE_AFTER is %s s)",
                                self.name, now - last, every, settings.STALE_AFTER)
                last = now
        finally:
            connection.close()

    def stop(self):
        self._finished.set()
        # Short: in tests a beat can wait on the test's own open transaction; it ends by itself after.
        self.join(timeout=2)


@contextmanager
def working(name: str, lease: Lease, *, heartbeat: bool = True) -> Iterator[None]:
    """While the job runs: its heartbeat (when the row has one); afterwards, its memory released."""
    beating = Heartbeat(name, lease.beat) if heartbeat else None
    if beating is not None:
        beating.start()
    try:
        yield
    finally:
        if beating is not None:
            beating.stop()
        release_memory()


def failure_sentence(exc: BaseException, *, doing: str, subject: str, again: str) -> str:
    """One sentence for the person who started the job.

    `doing` names the job when nothing better is known ("Training failed with ..."); `subject` and
    `again` finish the sentence of a full disk ("this run could not write its files ...; free some
    space on the data disk, then start the run again").
    """
    text = str(exc).strip()
    if isinstance(exc, SELF_EXPLAINING):
        return sentence(text)  # the engine's own: which field is wrong, which file to put where
    if "out of memory" in text.lower() or type(exc).__name__ in ("OutOfMemoryError", "MemoryError"):
        return OUT_OF_MEMORY
    full = disk_full(exc)
    if full is not None:
        return (f"The disk is full: {subject} could not write its files ({full.strerror}); free some space on "
                f"the data disk, then {again}.")
    if isinstance(exc, (PackError, FileNotFoundError)):
        return MISSING_FILES
    log.error("%s failed", doing, exc_info=exc)
    return sentence(f"{doing} failed with {type(exc).__name__}: {text[:300]}")


def sentence(text: str) -> str:
    """`text` begun with a capital and ended with a full stop."""
    text = text.strip()
    if not text:
        return text
    return text[0].upper() + text[1:] + ("" if text.endswith((".", "!", "?")) else ".")


def release_memory() -> None:
    gc.collect()
    torch = sys.modules.get("torch")  # an ingest worker never imports it; nothing to give back then
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
