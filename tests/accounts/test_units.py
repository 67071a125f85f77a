"""The pure parts: key records, globs, GCRA, periods, messages, metadata, redaction, the CLI
file edit, and the hook's settle rules (a billed failure keeps what was billed)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from imagegate.accounts.access import allowed
from imagegate.accounts.budgets import budget_message, hold_for, period_window
from imagegate.accounts.hook import AccountsHook
from imagegate.accounts.keyfile import add_key
from imagegate.accounts.keys import KeyInfo, hash_key, new_key, parse_keys
from imagegate.accounts.limits import gcra, retry_after_header
from imagegate.accounts.memory import MemoryStore
from imagegate.core.ceiling import cost_ceiling
from imagegate.core.errors import InvalidRequest, PaymentRequired, PermissionDenied, UpstreamError
from imagegate.core.redact import redact
from imagegate.hooks import RequestContext
from imagegate.providers.base import DiscardEvents
from imagegate.wire.fields import coerce_metadata
from tests.test_service import Scripted, request, service


def entry(name: str = "a", **extra: object) -> dict[str, object]:
    return {"name": name, "key_sha256": hash_key(new_key()), **extra}


def test_keys_are_random_and_stored_as_sha256() -> None:
    key = new_key()
    assert key.startswith("ig-") and len(key) == 46 and key != new_key()
    assert len(hash_key(key)) == 64


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        ([entry("a"), entry("a")], "used twice"),
        ([entry(models=["gemini/[ab"])], "never closes"),
        ([entry(models=["gemini/ *"])], "spaces"),
        ([entry(period="week")], "period"),
        ([entry("master")], "reserved"),
        ([entry(key_sha256="abc")], "64 hex"),
        ([entry(rpm=0)], "rpm"),
        ([entry(colour="red")], "colour"),
    ],
)
def test_bad_key_records_are_refused(entries: list[dict[str, object]], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_keys(entries)


def test_check_config_refuses_duplicate_names(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"keys": [entry("a"), entry("a")]}))
    done = subprocess.run(
        [sys.executable, "-m", "imagegate", "check-config", "--config", str(config)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 2 and "used twice" in done.stderr


def test_globs_match_the_card_id_or_the_name_sent() -> None:
    assert allowed(["gemini/*"], "gemini/gemini-2.5-flash-image", "nano-banana")
    assert allowed(["nano-banana"], "gemini/gemini-2.5-flash-image", "nano-banana")
    assert not allowed(["openai/gpt-image-1"], "openai/gpt-image-1-mini", "gpt-image-1-mini")


def test_gcra_spaces_a_burst_and_never_admits_early() -> None:
    tat = 0.0
    for _ in range(60):
        check = gcra(tat, 1000.0, 1, 60)
        assert check.allowed
        tat = check.tat
    refused = gcra(tat, 1000.0, 1, 60)
    assert not refused.allowed and refused.retry_after == pytest.approx(1.0)
    assert gcra(tat, 1001.0, 1, 60).allowed
    assert retry_after_header(0.2) == "1" and retry_after_header(3.0) == "3"
    assert retry_after_header(3.01) == "4"


def test_periods_roll_over_at_utc_boundaries() -> None:
    end_of_year = datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)
    month = period_window("month", end_of_year)
    assert month.id == "month:2026-12" and month.resets_at == datetime(2027, 1, 1, tzinfo=UTC)
    day = period_window("day", end_of_year)
    assert day.id == "day:2026-12-31" and day.resets_at == datetime(2027, 1, 1, tzinfo=UTC)
    assert period_window("total", end_of_year).resets_at is None


def test_the_budget_message_names_budget_period_and_reset() -> None:
    window = period_window("month", datetime(2026, 12, 10, tzinfo=UTC))
    message = budget_message(50, window, 49.98, 0, 0.17)
    assert message == (
        "The key's monthly budget of $50.00 cannot cover this request ($49.98 used, $0.17 "
        "needed for this request; resets 2027-01-01T00:00:00Z)."
    )


def test_metadata_follows_the_openai_convention() -> None:
    assert coerce_metadata('{"team": "a"}', from_json=False) == {"team": "a"}
    for bad in ({"k": 1}, {str(i): "v" for i in range(17)}, {"k" * 65: "v"}, "not json", [1]):
        with pytest.raises(InvalidRequest):
            coerce_metadata(bad, from_json=not isinstance(bad, str))


def test_virtual_keys_are_scrubbed_from_text() -> None:
    key = new_key()
    assert key not in redact(f"failed for {key} today")
    assert key not in redact(f"Authorization: Bearer {key}")


def test_keys_create_keeps_the_rest_of_the_file(tmp_path: Path) -> None:
    config = tmp_path / "imagegate.yaml"
    config.write_text(
        "# our gateway\nmax_images: 4  # a comment\nkeys:\n- name: a\n  key_sha256: "
        + "ab" * 32
        + "\n  models:\n  - local/*\naliases: {bw: local/pillow}\n"
    )
    add_key(config, entry("b", models=["gemini/*"]))
    text = config.read_text()
    assert text.startswith("# our gateway\nmax_images: 4  # a comment\n")
    doc = yaml.safe_load(text)
    assert [k["name"] for k in doc["keys"]] == ["a", "b"] and doc["aliases"] == {
        "bw": "local/pillow"
    }
    with pytest.raises(ValueError, match="used twice"):
        add_key(config, entry("b"))


def hooked(provider: Scripted, key: KeyInfo) -> tuple[object, MemoryStore, RequestContext]:
    store = MemoryStore()
    svc = service(provider)
    svc.hooks = (AccountsHook(store, hold_seconds=5),)
    return svc, store, RequestContext("req_test", key=key)


def test_a_failure_releases_the_hold_unless_the_provider_billed() -> None:
    key = KeyInfo("team", budget_usd=1.0, period="total")
    billed = UpstreamError("the job ran, then failed", billed_usd=0.3)
    svc, store, ctx = hooked(Scripted(error=billed), key)
    with pytest.raises(UpstreamError):
        asyncio.run(svc.run(svc.prepare(request()), DiscardEvents(), ctx))  # type: ignore[attr-defined]
    assert asyncio.run(store.spent("team", period_window("total"))) == (0.3, 0.0)

    svc, store, ctx = hooked(Scripted(error=UpstreamError("refused")), key)
    with pytest.raises(UpstreamError):
        asyncio.run(svc.run(svc.prepare(request()), DiscardEvents(), ctx))  # type: ignore[attr-defined]
    assert asyncio.run(store.spent("team", period_window("total"))) == (0.0, 0.0)


def test_the_hold_covers_the_ceiling_and_settles_to_the_cost() -> None:
    ceiling = cost_ceiling(service(Scripted()).prepare(request()))
    assert ceiling > 0.15  # the token-priced card's most for one image
    svc, store, ctx = hooked(Scripted(), KeyInfo("team", budget_usd=0.15, period="total"))
    with pytest.raises(PaymentRequired, match=r"total budget of \$0.15 cannot cover") as refused:
        asyncio.run(svc.run(svc.prepare(request()), DiscardEvents(), ctx))  # type: ignore[attr-defined]
    assert f"${ceiling:,.2f} needed" in refused.value.message
    svc, store, ctx = hooked(Scripted(), KeyInfo("team", budget_usd=5.0, period="total"))
    result = asyncio.run(svc.run(svc.prepare(request(n=2)), DiscardEvents(), ctx))  # type: ignore[attr-defined]
    spent, held = asyncio.run(store.spent("team", period_window("total")))
    assert spent == pytest.approx(result.cost_usd) and held == 0 and ctx.hold is None


def test_the_hold_covers_the_dearest_candidate() -> None:
    """A route's other targets and fallbacks may serve the request: the hold is the dearest."""
    svc = service(Scripted())
    one, two = svc.prepare(request()), svc.prepare(request(n=2))
    assert cost_ceiling(two) > cost_ceiling(one) > 0
    assert hold_for(one) == cost_ceiling(one)
    assert hold_for(replace(one, fallbacks=(two,))) == cost_ceiling(two)
    assert hold_for(replace(two, fallbacks=(one,))) == cost_ceiling(two)


def test_a_route_is_allowed_by_its_own_name() -> None:
    """A route's job carries its target's id; the key's list is checked on the route's name too."""
    job = replace(service(Scripted()).prepare(request()), route="team-edit")
    hook = AccountsHook(MemoryStore(), hold_seconds=5)
    by_route = RequestContext("req_route", key=KeyInfo("team", models=("team-edit",)))
    asyncio.run(hook.before_dispatch(by_route, job))
    elsewhere = RequestContext("req_route", key=KeyInfo("team", models=("gemini/*",)))
    with pytest.raises(PermissionDenied, match="may not use the model 'team-edit'"):
        asyncio.run(hook.before_dispatch(elsewhere, job))
