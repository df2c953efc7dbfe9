"""The state of the installation: database, broker, the workers that announced themselves, and (under
`make run`) the processes its loop keeps running."""
import redis
from django.conf import settings
from django.db import connection

from workers import presence

from .supervisor import read_state


def database_status() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception:  # any failure means "not ok"; its details may hold secrets, so they stay in the log
        return "unavailable"


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
    status = {"status": "ok" if healthy else "degraded", "database": database, "broker": broker, "workers": workers}
    if processes is not None:
        status["processes"] = processes
    return status
