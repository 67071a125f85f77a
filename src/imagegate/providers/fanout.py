"""``n`` images from an upstream that makes one per call: ``n`` concurrent calls, one answer.

The first failure cancels the other calls (their work would be billed for nothing) and is the
answer. Usage from each call is summed, so tokens and stated costs cover every image.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from imagegate.core.result import EditResult, Usage


async def fan_out(n: int, call: Callable[[int], Coroutine[Any, Any, EditResult]]) -> EditResult:
    """Run ``call(0) .. call(n-1)`` at once and merge their results in order."""
    if n == 1:
        return await call(0)
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(call(index)) for index in range(n)]
    except BaseExceptionGroup as failed:
        raise _first(failed) from None
    results = [task.result() for task in tasks]
    first = results[0]
    return EditResult(
        images=[image for result in results for image in result.images],
        model=first.model,
        provider=first.provider,
        usage=sum_usage([result.usage for result in results]),
        quality=first.quality,
        background=first.background,
    )


def sum_usage(usages: list[Usage]) -> Usage:
    def total(name: str) -> int | None:
        values = [getattr(usage, name) for usage in usages]
        return None if all(v is None for v in values) else sum(v or 0 for v in values)

    costs = [usage.provider_cost_usd for usage in usages]
    return Usage(
        input_tokens=total("input_tokens"),
        output_tokens=total("output_tokens"),
        input_text_tokens=total("input_text_tokens"),
        input_image_tokens=total("input_image_tokens"),
        output_image_tokens=total("output_image_tokens"),
        output_text_tokens=total("output_text_tokens"),
        provider_cost_usd=None if any(c is None for c in costs) else sum(c or 0.0 for c in costs),
    )


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else first
