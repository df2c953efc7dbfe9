from dlstudio.celery import QUEUES, VISIBILITY_TIMEOUT, app


def test_each_queue_receives_only_its_own_messages():
    queues = app.amqp.queues
    for name in QUEUES:
        assert queues[name].routing_key == name
        assert queues[name].exchange.name == name


def test_tasks_route_to_their_queues():
    router = app.amqp.router
    assert router.route({}, "workers.tasks.train_run")["queue"].name == "train"
    assert router.route({}, "workers.tasks.ingest_dataset")["queue"].name == "ingest"
    assert router.route({}, "workers.tasks.ping")["queue"].name == "default"


def test_broker_settings_follow_the_design(settings):
    conf = app.conf
    assert conf.task_acks_late and conf.worker_prefetch_multiplier == 1
    assert conf.accept_content == ["json"] and conf.task_serializer == "json"
    # Redis must never re-deliver a long run by itself: far above the stale horizon.
    assert conf.broker_transport_options["visibility_timeout"] == VISIBILITY_TIMEOUT
    assert VISIBILITY_TIMEOUT > 100 * settings.STALE_AFTER
