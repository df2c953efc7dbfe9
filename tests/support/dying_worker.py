"""`celery -A tests.support.dying_worker worker`: dlstudio's worker, whose training job kills its own
process with SIGKILL at a chosen moment, as the kernel's out-of-memory killer would:

- DLSTUDIO_TEST_DIE_AT_EPOCH=N: once epoch N is trained and its checkpoints written, before it is recorded;
- DLSTUDIO_TEST_DIE_BETWEEN_CHECKPOINTS=N: at the first epoch from N on that is a new best, after its `last`
  checkpoint is written and before its `best`;
- DLSTUDIO_TEST_DIE_WHILE_SAVING=N: halfway through writing epoch N's `last` checkpoint (its temporary file
  stays behind);
- DLSTUDIO_TEST_STOP_INSIDE_WRITE_AT_EPOCH=N: not killed but stopped (SIGSTOP, as a frozen VM or a debugger
  would), inside the transaction that records epoch N, holding the run's row locked.

Only the fault tests start it; the product itself carries no such hook.
"""
import os
import signal

from celery.signals import task_prerun

from dlstudio.celery import app  # noqa: F401  (what `celery -A` looks for in this module)

AT_EPOCH = os.environ.get("DLSTUDIO_TEST_DIE_AT_EPOCH")
BETWEEN_CHECKPOINTS = os.environ.get("DLSTUDIO_TEST_DIE_BETWEEN_CHECKPOINTS")
WHILE_SAVING = os.environ.get("DLSTUDIO_TEST_DIE_WHILE_SAVING")
STOP_INSIDE_WRITE = os.environ.get("DLSTUDIO_TEST_STOP_INSIDE_WRITE_AT_EPOCH")


def die():
    os.kill(os.getpid(), signal.SIGKILL)


def stop_after(also):
    def also_then_stop():
        result = also()
        os.kill(os.getpid(), signal.SIGSTOP)  # the row's UPDATE is done, its transaction still open
        return result
    return also_then_stop


@task_prerun.connect
def arm(**kwargs):
    from apps.runs import training  # once a task runs, Django is set up
    from workers.engine.train import checkpoint, loop

    if getattr(training, "armed", False):
        return
    training.armed = True
    if AT_EPOCH:
        record = training.Tracker.on_checkpoint

        def on_checkpoint(self, metrics, **files):
            if metrics["epoch"] == int(AT_EPOCH):
                die()
            record(self, metrics, **files)

        training.Tracker.on_checkpoint = on_checkpoint
    if STOP_INSIDE_WRITE:
        from dlstudio.jobs import Lease

        write = Lease.write

        def write_then_stop(self, also, **fields):
            if fields.get("epoch") == int(STOP_INSIDE_WRITE):
                also = stop_after(also)
            return write(self, also, **fields)

        Lease.write = write_then_stop
    save = loop.save_checkpoint

    def save_checkpoint(state, path):
        name = os.path.basename(path)
        if BETWEEN_CHECKPOINTS and name.startswith("best") and state["epoch"] >= int(BETWEEN_CHECKPOINTS):
            die()
        if WHILE_SAVING and name.startswith("last") and state["epoch"] == int(WHILE_SAVING):
            # Die once torch has written part of the temporary file.
            write = checkpoint._KeepWriteError.write

            def write_then_die(self, data):
                write(self, data)
                die()

            checkpoint._KeepWriteError.write = write_then_die
        return save(state, path)

    loop.save_checkpoint = save_checkpoint
