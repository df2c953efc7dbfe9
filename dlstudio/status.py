"""The state of the installation: database, broker, the workers that announced themselves (with how busy
they are, and the run each is training), and (under `make run`) the processes its loop keeps running."""
import logging

import redis
from django.conf import settings
from django.db import DatabaseError, connection

from apps.runs.selectors import runs_training_now
from workers import presence

from .supervisor import read_state

log = logging.getLogger(__name__)


def database_status() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception:  # any failure means "not ok"; its details may hold secrets, so they stay in the log
        return "unavailable"


def with_busy(workers: list[dict], *, database: str) -> list[dict]:
    """Each worker with `busy`: the id of the run it is training now, or None.

    The workers announce their machine's figures in Redis (workers/presence.py); which run each
    trains, the runs' rows say, as fresh as this request. Unknown (None) while the database is away.
    """
    training = {}
    if database == "ok" and workers:
        try:
            training = runs_training_now([w["name"] for w in workers])
        except DatabaseError:
            log.warning("the runs being trained could not be read", exc_info=True)
    return [{**w, "busy": training.get(w["name"])} for w in workers]


def system_status() -> dict:
    database = database_status()
    try:
        conn = presence.client(settings.REDIS_URL)
        conn.ping()
        broker, workers = "ok", presence.workers(conn)
    except redis.RedisError:
        broker, workers = "unavailable", []
    processes = read_state(settings.DATA_DIR)
    healthy = database == "ok" and broker == "ok" and not any(p["crash_looping"] for p in processes or ())
    status = {"status": "ok" if healthy else "degraded", "database": database, "broker": broker,
              "workers": with_busy(workers, database=database)}
    if processes is not None:
        status["processes"] = processes
    return status
