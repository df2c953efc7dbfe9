"""The state of the installation: database, broker and the workers that announced themselves."""
import redis
from django.conf import settings
from django.db import connection

from workers import presence


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
    healthy = database == "ok" and broker == "ok"
    return {"status": "ok" if healthy else "degraded", "database": database, "broker": broker, "workers": workers}
