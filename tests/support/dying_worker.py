"""`celery -A tests.support.dying_worker worker`: dlstudio's worker, whose training job kills its own
process with SIGKILL on reaching epoch DLSTUDIO_TEST_DIE_AT_EPOCH (before recording it), as the kernel's
out-of-memory killer would. Only the fault tests start it; the product itself carries no such hook."""
import os
import signal

from celery.signals import task_prerun

from dlstudio.celery import app  # noqa: F401  (what `celery -A` looks for in this module)

DIE_AT_EPOCH = int(os.environ["DLSTUDIO_TEST_DIE_AT_EPOCH"])


@task_prerun.connect
def arm(**kwargs):
    from apps.runs import training  # once a task runs, Django is set up

    if getattr(training.Tracker.on_epoch, "armed", False):
        return
    record = training.Tracker.on_epoch

    def on_epoch(self, metrics):
        if metrics["epoch"] == DIE_AT_EPOCH:
            os.kill(os.getpid(), signal.SIGKILL)
        record(self, metrics)

    on_epoch.armed = True
    training.Tracker.on_epoch = on_epoch
