"""Polling a queued job: backoff, the deadline, and cancelling the job when the wait ends."""

from __future__ import annotations

import asyncio

import pytest

from imagegate.core.errors import UpstreamTimeout
from imagegate.providers.polling import Backoff, poll_until_settled

FAST = Backoff(first=0.01, factor=2.0, maximum=0.04)


def test_polls_until_the_job_settles_with_growing_sleeps(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter([None, None, None, None, "done"])
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def record_sleep(delay: float) -> None:
        slept.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", record_sleep)

    async def check() -> str | None:
        return next(answers)

    result = asyncio.run(poll_until_settled(check, provider="p", deadline_seconds=5, backoff=FAST))
    assert result == "done"
    assert slept == [0.01, 0.02, 0.04, 0.04]  # backs off, up to the maximum


def test_a_job_that_never_settles_is_cancelled_and_504() -> None:
    cancelled: list[bool] = []

    async def check() -> None:
        return None

    async def cancel() -> None:
        cancelled.append(True)

    with pytest.raises(UpstreamTimeout) as caught:
        asyncio.run(
            poll_until_settled(
                check, provider="p", deadline_seconds=0.1, cancel=cancel, backoff=FAST
            )
        )
    assert caught.value.status == 504 and cancelled == [True]


def test_a_client_that_goes_away_cancels_the_job_and_polling_stops() -> None:
    polls: list[int] = []
    cancelled: list[bool] = []

    async def check() -> None:
        polls.append(1)
        return None

    async def cancel() -> None:
        await asyncio.sleep(0.01)  # still sent although the caller was cancelled
        cancelled.append(True)

    async def scenario() -> int:
        task = asyncio.create_task(
            poll_until_settled(
                check, provider="p", deadline_seconds=60, cancel=cancel, backoff=FAST
            )
        )
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        seen = len(polls)
        await asyncio.sleep(0.1)
        assert len(polls) == seen  # nothing more is polled
        return seen

    assert asyncio.run(scenario()) > 0
    assert cancelled == [True]


def test_a_failing_cancel_does_not_change_the_answer() -> None:
    async def check() -> None:
        return None

    async def cancel() -> None:
        raise RuntimeError("already finished")

    with pytest.raises(UpstreamTimeout):
        asyncio.run(
            poll_until_settled(
                check, provider="p", deadline_seconds=0.05, cancel=cancel, backoff=FAST
            )
        )
