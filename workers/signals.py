"""What every worker does around its tasks: bound how long its transactions may sit idle, announce
itself (presence), and on a warm shutdown ask a long job to checkpoint and go back to the queue
(dlstudio.jobs.shutdown_requested)."""
from celery.signals import worker_init, worker_ready, worker_shutdown, worker_shutting_down
from django.conf import settings
from django.db import connections
from django.db.backends.signals import connection_created

from dlstudio.jobs import bound_idle_transactions, shutdown_requested

from . import presence

_announcer: presence.Announcer | None = None


@worker_init.connect
def bound_transactions(**kwargs):
    # Every connection this worker (and its pool's children) opens from now on; none opened before.
    connection_created.connect(bound_idle_transactions)
    connections.close_all()


@worker_ready.connect
def announce_worker(sender, **kwargs):
    global _announcer
    queues = [q.name for q in sender.task_consumer.queues]
    _announcer = presence.Announcer(url=settings.REDIS_URL, name=sender.hostname, queues=queues)
    _announcer.start()


@worker_shutdown.connect
def withdraw_worker(**kwargs):
    if _announcer is not None:
        _announcer.stop()


@worker_shutting_down.connect
def stop_long_jobs(**kwargs):
    # A warm shutdown (deploy, Ctrl-C) lets the running task finish; a training run would take
    # hours, so it is asked to checkpoint and go back to the queue instead.
    shutdown_requested.set()
