"""What the broker holds: which task messages wait in a queue, so the reaper can tell a lost one.

The database says a run is queued; the broker is only the doorbell. Redis can lose the doorbell
(restarted without its data, flushed, a publish that failed while it was down). The reaper asks
here whether a message for the run is still there, and sends a new one only when it is not.

A message counts as there when it waits in the queue (any of kombu's priority lists) or has been
delivered to a worker and not yet acknowledged (kombu's `unacked` hash): with `acks_late`, the
message of a run being claimed, or reserved by a prefork worker, lives there.
"""
from __future__ import annotations

import ast
import base64
import json
import logging

log = logging.getLogger(__name__)

_BATCH = 1000  # list entries read per round trip


def waiting_args(queue: str, task: str) -> set | None:
    """The first argument of every `task` message in `queue` or delivered and unacknowledged.

    None when the broker cannot be read (not Redis, or not answering): the caller cannot tell a
    lost message from a present one and should do nothing this time.
    """
    from dlstudio.celery import app

    try:
        with app.connection_for_read() as conn:
            channel = conn.default_channel
            if not hasattr(channel, "_q_for_pri"):  # not the Redis transport
                return None
            client = channel.client
            found = set()
            for priority in channel.priority_steps:
                key = channel._q_for_pri(queue, priority)
                for start in range(0, client.llen(key), _BATCH):
                    for raw in client.lrange(key, start, start + _BATCH - 1):
                        _collect(found, raw, task)
            for raw in client.hvals(channel.unacked_key):
                try:
                    message = json.loads(raw)[0]
                except (ValueError, TypeError, IndexError, KeyError):
                    continue
                _collect(found, message, task)
            return found
    except Exception:  # a broker that is down: nothing can be decided now, the next round tries again
        log.warning("could not read the %s queue from the broker", queue, exc_info=True)
        return None


def ensure_queue(name: str) -> None:
    """Declare `name` and its binding again, bypassing kombu's cache of what it declared.

    After Redis restarts empty the binding of exchange `name` to queue `name` is gone, and a
    producer whose connection survived (redis-py reconnects silently) still believes it declared
    it: its messages would be routed nowhere until a consumer re-declares. The reaper calls this
    before it re-sends.
    """
    from dlstudio.celery import app

    queue = next(q for q in app.conf.task_queues if q.name == name)
    with app.connection_for_write() as conn:
        queue.bind(conn.default_channel).declare()


def _collect(found: set, message, task: str) -> None:
    if isinstance(message, (bytes, str)):
        try:
            message = json.loads(message)
        except ValueError:
            return
    if not isinstance(message, dict):
        return
    headers = message.get("headers") or {}
    if headers.get("task") != task:
        return
    args = _args(message, headers)
    if args:
        found.add(args[0])


def _args(message: dict, headers: dict) -> tuple:
    """The positional arguments: from the body (protocol 2: [args, kwargs, embed]), else `argsrepr`."""
    try:
        body = message.get("body")
        if (message.get("properties") or {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        payload = json.loads(body)
        return tuple(payload[0] if isinstance(payload, list) else payload.get("args", ()))
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        pass
    try:
        return tuple(ast.literal_eval(headers.get("argsrepr") or "()"))
    except (ValueError, SyntaxError, TypeError):
        return ()
