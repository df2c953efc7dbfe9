from dlstudio.celery import QUEUES, VISIBILITY_TIMEOUT, app


def test_each_queue_receives_only_its_own_messages():
    queues = app.amqp.queues
    for name in QUEUES:
        assert queues[name].routing_key == name
        assert queues[name].exchange.name == name


def test_tasks_route_to_their_queues():
    router = app.amqp.router
    assert router.route({}, "runs.train")["queue"].name == "train"
    assert router.route({}, "experiments.lr_range_test")["queue"].name == "train"
    assert router.route({}, "datasets.ingest")["queue"].name == "ingest"
    assert router.route({}, "workers.tasks.ping")["queue"].name == "default"


def test_broker_settings_follow_the_design(settings):
    conf = app.conf
    assert conf.task_acks_late and conf.worker_prefetch_multiplier == 1
    assert conf.accept_content == ["json"] and conf.task_serializer == "json"
    # Redis must never re-deliver a long run by itself: far above the stale horizon.
    assert conf.broker_transport_options["visibility_timeout"] == VISIBILITY_TIMEOUT
    assert VISIBILITY_TIMEOUT > 100 * settings.STALE_AFTER


def test_every_task_the_product_sends_by_name_is_a_registered_task():
    # Services send tasks by name (workers.broker.send_on_commit): a name that matches no task would be
    # a message no worker takes.
    from apps.datasets.services import INGEST_TASK
    from apps.experiments.services import LR_RANGE_TEST_TASK
    from apps.runs.services import TRAIN_TASK

    app.loader.import_default_modules()
    sent = {INGEST_TASK, LR_RANGE_TEST_TASK, TRAIN_TASK, *app.conf.task_routes,
            *(entry["task"] for entry in app.conf.beat_schedule.values())}
    assert sent <= set(app.tasks), sent - set(app.tasks)
