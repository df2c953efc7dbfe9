"""The heartbeat thread of a job (dlstudio/jobs.py): it beats until the row is no longer held, and a beat
that fails (the database restarting) costs that beat only."""
import threading

import pytest
from django.test import override_settings

from dlstudio.jobs import Heartbeat, beat_interval
from tests.support.services import wait_until


@pytest.fixture
def quick():
    with override_settings(STALE_AFTER=0.2):  # a beat every 0.05 s
        assert beat_interval() == pytest.approx(0.05)
        yield


def beats(answers):
    """A beat that gives `answers` in turn (an exception is raised) and counts its calls."""
    calls = []

    def beat():
        calls.append(threading.get_ident())
        answer = answers[min(len(calls), len(answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return beat, calls


def test_a_failed_beat_is_retried_and_the_thread_goes_on_until_the_row_is_lost(quick, caplog):
    beat, calls = beats([True, ConnectionError("the database restarts"), ConnectionError("still"), True, False])
    thread = Heartbeat("run-1", beat)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive()  # ended by the lost row, the fifth beat
    assert len(calls) == 5
    assert sum("could not beat" in r.getMessage() for r in caplog.records) == 2


def test_stop_ends_a_thread_that_beats(quick):
    beat, calls = beats([True])
    thread = Heartbeat("run-2", beat)
    thread.start()
    wait_until(lambda: len(calls) >= 3, timeout=10, interval=0.01, message="three beats")
    thread.stop()
    assert not thread.is_alive()
