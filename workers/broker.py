"""The broker seen from the database: sending a task so that a broker that is down loses nothing, and
reading which task messages the broker still holds, so the reaper can tell a lost one.

The database says a run or an upload is queued; the broker is only the doorbell. Redis can lose the
doorbell (restarted without its data, flushed, a publish that failed while it was down). The reaper
asks here whether a message for the row is still there, and sends a new one only when it is not.

A message counts as there when it waits in the queue (any of kombu's priority lists) or was delivered
to a worker, and not yet acknowledged, since the row was queued (kombu's `unacked` hash, and the
delivery time in `unacked_index`): with `acks_late`, the message of a run being claimed, or reserved
by a prefork worker, lives there. A delivery from before the row was queued again is the previous
attempt's, left behind by a worker that was killed, and does not count.
"""
from __future__ import annotations

import ast
import base64
import json
import logging
import math
from datetime import datetime

from django.db import transaction
from kombu.exceptions import OperationalError

from dlstudio.celery import app

log = logging.getLogger(__name__)

_BATCH = 1000  # list entries read per round trip


def send_on_commit(task: str, *args) -> None:
    """Send the task named `task` once the transaction commits; a broker that is down is logged, not raised.

    Services enqueue by name, so no service imports a task module (docs/ARCHITECTURE.md). The row is
    committed as queued either way, so the person who started it gets their answer; the reaper
    sends the message of a run or an upload again once the broker answers (`lost_messages`).
    """
    transaction.on_commit(lambda: send(task, *args))


def send(task: str, *args) -> None:
    try:
        # No one reads a task's result (the row says what became of the job): without ignore_result, every
        # send would subscribe to the result backend first, and with Redis down that raises its own error.
        app.send_task(task, args=args, ignore_result=True)
    except (OperationalError, OSError) as exc:  # the broker is down (after kombu's own retries)
        log.warning("%s%s is queued in the database but the broker did not take its message (%s)",
                    task, args, exc)


def lost_messages(queue: str, task: str, waiting: dict[int, datetime]) -> list[int]:
    """The ids in `waiting` ({id: when it was queued}) whose `task` message the broker no longer holds.

    Empty when the broker cannot be read (nothing can be decided now; the next round tries again).
    When some are lost, `queue` is declared again first, so that the messages sent next are routed.
    """
    held = messages(queue, task)
    if held is None:
        return []
    lost = [pk for pk, since in waiting.items() if held.get(pk, -math.inf) < since.timestamp()]
    if lost:
        ensure_queue(queue)
    return lost


def messages(queue: str, task: str) -> dict | None:
    """{first argument: when its message was delivered} for every `task` message in `queue` (math.inf:
    still waiting there) or delivered and not yet acknowledged.

    None when the broker cannot be read (not Redis, or not answering).
    """
    try:
        with app.connection_for_read() as conn:
            channel = conn.default_channel
            if not hasattr(channel, "_q_for_pri"):  # not the Redis transport
                return None
            client = channel.client
            found: dict = {}
            for priority in channel.priority_steps:
                key = channel._q_for_pri(queue, priority)
                for start in range(0, client.llen(key), _BATCH):
                    for raw in client.lrange(key, start, start + _BATCH - 1):
                        _collect(found, raw, task, math.inf)
            delivered = dict(client.zrange(channel.unacked_index_key, 0, -1, withscores=True))
            for tag, raw in client.hgetall(channel.unacked_key).items():
                try:
                    message = json.loads(raw)[0]
                except (ValueError, TypeError, IndexError, KeyError):
                    continue
                _collect(found, message, task, delivered.get(tag, math.inf))
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
    queue = next(q for q in app.conf.task_queues if q.name == name)
    with app.connection_for_write() as conn:
        queue.bind(conn.default_channel).declare()


def _collect(found: dict, message, task: str, when: float) -> None:
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
        found[args[0]] = max(when, found.get(args[0], -math.inf))


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
