"""Prometheus metrics: what every HTTP request and every dispatched edit did.

Two places record, never the routes: the outermost middleware (``api/middleware.py``) for every
HTTP request (count, duration, in flight, memory held), and ``MetricsHook``, a ``DispatchHook``
(``hooks.py``), for each edit that reached a provider (outcome, durations, overhead, cost,
images). ``GET /metrics`` (``api/metrics.py``) renders them in the text exposition format.

Labels come only from bounded sets: route templates (an unmatched path is one value), a fixed
list of methods, status codes, catalog card ids and provider names, and error codes (bounded in
practice; anything that does not look like one becomes ``other``), refusal reasons, and the
names of configured virtual keys (never the keys). Never prompts or users.

One process serves from prometheus-client's default registry. Several worker processes
(``imagegate serve --workers N``) use its multiprocess mode: ``imagegate serve`` sets
``PROMETHEUS_MULTIPROC_DIR`` to a fresh directory before the workers start (the mode is fixed
when prometheus-client is first imported), each worker writes its values there, and a scrape
served by any worker adds them all up. Live gauges of workers that died are dropped at scrape.
"""

from __future__ import annotations

import glob
import os
import re
import time

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from imagegate.core.errors import GatewayError
from imagegate.core.result import EditResult
from imagegate.hooks import RequestContext
from imagegate.providers.base import EditJob

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's own variable, not a setting
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UNMATCHED = "unmatched"  # the path label of every request no route matched
OTHER = "other"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_LIVE_FILE = re.compile(r"^gauge_live\w*?_(\d+)\.db$")

# Image edits take from milliseconds (local/pillow) to minutes (queued providers).
EDIT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
OVERHEAD_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

REQUESTS = Counter(
    "imagegate_requests",
    "HTTP requests answered, by route template and status.",
    ["method", "path_template", "status"],
)
REQUEST_DURATION = Histogram(
    "imagegate_request_duration_seconds",
    "Time from a request's arrival until its exchange (a stream included) ended.",
    ["path_template"],
    buckets=REQUEST_BUCKETS,
)
IN_FLIGHT = Gauge(
    "imagegate_in_flight_requests",
    "HTTP requests being served now.",
    multiprocess_mode="livesum",
)
MEMORY_HELD = Gauge(
    "imagegate_memory_held_bytes",
    "Request bytes held in memory by the in-flight memory gate, as of the latest request.",
    multiprocess_mode="livesum",
)
EDITS = Counter(
    "imagegate_edits",
    "Edits dispatched to a provider, by outcome: ok, or the error code (cancelled included).",
    ["model", "provider", "outcome"],
)
EDIT_DURATION = Histogram(
    "imagegate_edit_duration_seconds",
    "Time from a dispatched edit's request arrival until its answer.",
    ["model", "provider"],
    buckets=EDIT_BUCKETS,
)
UPSTREAM_DURATION = Histogram(
    "imagegate_upstream_duration_seconds",
    "Time an edit spent waiting on its provider (all attempts).",
    ["provider"],
    buckets=EDIT_BUCKETS,
)
OVERHEAD = Histogram(
    "imagegate_gateway_overhead_seconds",
    "What the gateway added to an edit: its total time minus the time upstream.",
    ["provider"],
    buckets=OVERHEAD_BUCKETS,
)
UPSTREAM_ERRORS = Counter(
    "imagegate_upstream_errors",
    "Errors a provider answered (or timed out with), by error code.",
    ["provider", "code"],
)
COST = Counter(
    "imagegate_cost_usd",
    "Priced cost of successful edits in US dollars, from the catalog's prices.",
    ["model", "provider"],
)
IMAGES = Counter(
    "imagegate_images",
    "Images sent to providers (in) and returned by them (out).",
    ["model", "provider", "direction"],
)
EDITS_REFUSED = Counter(
    "imagegate_edits_refused",
    "Edits refused before dispatch by a key's access, rates or budget, or a state outage.",
    ["reason"],
)
KEY_SPEND = Counter(
    "imagegate_key_spend_usd",
    "USD charged to each key's budget (key names are configured, so bounded).",
    ["key"],
)
REDIS_ERRORS = Counter(
    "imagegate_redis_errors",
    "Failed calls to the shared state store (Redis), by operation.",
    ["operation"],
)

# Routing (imagegate.routing.dispatch): labels are provider names, error codes, catalog ids or
# route names, and the config file's deployment names: all bounded by code and config.
RETRIES = Counter(
    "imagegate_upstream_retries",
    "Upstream attempts made again after a retryable failure, by the failure's provider and code.",
    ["provider", "code"],
)
FALLBACKS = Counter(
    "imagegate_fallbacks",
    "Requests handed to a fallback model after their model failed retryably.",
    ["from_model", "to_model"],
)
COOLDOWNS = Counter(
    "imagegate_deployment_cooldowns",
    "Times a deployment was set aside for a cooldown after failures.",
    ["provider", "deployment"],
)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def render() -> bytes:
    """The exposition text: this process's registry, or every worker's files added up."""
    path = multiprocess_dir()
    if path is None:
        return generate_latest(REGISTRY)
    _forget_dead_workers(path)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def _forget_dead_workers(path: str) -> None:
    """Drop the live gauges (in flight, memory held) of worker processes that are gone."""
    for file in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        match = _LIVE_FILE.match(os.path.basename(file))
        if match and not _alive(int(match.group(1))):
            multiprocess.mark_process_dead(int(match.group(1)), path)  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process under a reused pid: keep it
        return True
    return True


def mark_this_process_dead() -> None:
    """At a worker's shutdown: its live gauges stop counting."""
    path = multiprocess_dir()
    if path is not None:
        multiprocess.mark_process_dead(os.getpid(), path)  # type: ignore[no-untyped-call]


# -- HTTP requests (called by the outermost middleware) ----------------------------------------
def method_label(method: str | None) -> str:
    return method if method in _METHODS else OTHER


def observe_request(method: str | None, template: str, status: int, seconds: float) -> None:
    REQUESTS.labels(method_label(method), template, str(status)).inc()
    REQUEST_DURATION.labels(template).observe(seconds)


# -- edits (the dispatch hook) -----------------------------------------------------------------
def error_label(error: GatewayError) -> str:
    code = error.code or error.error_type
    return code if _CODE.match(code) else OTHER


class MetricsHook:
    """Records each dispatched edit once it has ended; never refuses one."""

    async def before_dispatch(self, ctx: RequestContext, job: EditJob) -> None:
        return None

    async def after_answer(
        self, ctx: RequestContext, job: EditJob, outcome: EditResult | GatewayError
    ) -> None:
        model = ctx.model or job.card.id  # the card that served it (a fallback's, maybe)
        provider = ctx.provider or job.card.provider
        now = time.perf_counter()
        IMAGES.labels(model, provider, "in").inc(len(job.request.images))
        if isinstance(outcome, EditResult):
            EDITS.labels(model, provider, "ok").inc()
            IMAGES.labels(model, provider, "out").inc(len(outcome.images))
            COST.labels(model, provider).inc(max(0.0, outcome.cost_usd))
        else:
            code = error_label(outcome)
            EDITS.labels(model, provider, code).inc()
            if outcome.origin == "provider":
                UPSTREAM_ERRORS.labels(provider, code).inc()
        EDIT_DURATION.labels(model, provider).observe(max(0.0, now - ctx.started))
        if ctx.attempts:
            UPSTREAM_DURATION.labels(provider).observe(ctx.upstream_seconds)
            OVERHEAD.labels(provider).observe(ctx.overhead_ms(now) / 1000)
