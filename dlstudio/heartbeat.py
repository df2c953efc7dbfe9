"""A thread that proves a worker is alive while it holds a row (a run it trains, a dataset it ingests).

`beat()` writes the row's heartbeat, conditional on the worker still holding it, and says whether it
did. The reaper treats a row whose heartbeat is older than DLSTUDIO_STALE_AFTER as abandoned (its
worker was killed, or ran out of memory), so a beat comes several times per horizon and one slow
write never makes a live worker look gone.
"""
import logging
import threading
from typing import Callable

from django.conf import settings
from django.db import connection

log = logging.getLogger(__name__)


class Heartbeat(threading.Thread):
    # It holds no lock a forked child needs (it sleeps, or runs one UPDATE on its own connection), so
    # the ingest's decoder pool may still fork while it runs (workers/engine/ingest_pool.py).
    fork_safe = True

    def __init__(self, name: str, beat: Callable[[], bool]):
        super().__init__(name=f"heartbeat-{name}", daemon=True)
        self.beat = beat
        self.lost = threading.Event()  # set when the row is no longer this worker's
        self._finished = threading.Event()

    def run(self):
        every = min(5.0, settings.STALE_AFTER / 4)
        try:
            while not self._finished.wait(every):
                if not self.beat():
                    self.lost.set()
                    return
        except Exception:  # a database hiccup must not kill the worker; the reaper covers a silent one
            log.exception("%s failed", self.name)
        finally:
            connection.close()

    def stop(self):
        self._finished.set()
        # Short: in tests a beat can wait on the test's own open transaction; it ends by itself after.
        self.join(timeout=2)
