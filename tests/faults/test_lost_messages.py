"""Which queued rows the reaper treats as lost, from what the broker holds (workers/broker.py)."""
import math

import pytest
from django.utils import timezone

from workers import broker

QUEUED = timezone.now()
BEFORE = (QUEUED - timezone.timedelta(seconds=60)).timestamp()
AFTER = (QUEUED + timezone.timedelta(seconds=1)).timestamp()


@pytest.fixture
def held(monkeypatch):
    declared = []
    monkeypatch.setattr(broker, "ensure_queue", declared.append)

    def held(messages):
        monkeypatch.setattr(broker, "messages", lambda queue, task: messages)
        return declared
    return held


def test_a_message_waiting_in_the_queue_is_not_lost(held):
    declared = held({7: math.inf})
    assert broker.lost_messages("train", "t", {7: QUEUED}) == [] and declared == []


def test_a_delivery_since_the_run_was_queued_is_not_lost(held):
    held({7: AFTER})
    assert broker.lost_messages("train", "t", {7: QUEUED}) == []


def test_a_delivery_from_before_it_was_queued_again_is_the_killed_attempts_and_does_not_count(held):
    """A worker killed mid-run leaves its delivery unacknowledged for the visibility timeout (a week).
    When the run is re-queued and that publish is lost, the old delivery must not hide the loss."""
    declared = held({7: BEFORE})
    assert broker.lost_messages("train", "t", {7: QUEUED}) == [7] and declared == ["train"]


def test_nothing_held_means_lost_and_an_unreadable_broker_decides_nothing(held):
    held({})
    assert broker.lost_messages("train", "t", {7: QUEUED, 8: QUEUED}) == [7, 8]
    held(None)
    assert broker.lost_messages("train", "t", {7: QUEUED}) == []
