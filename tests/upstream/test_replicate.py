"""Replicate end to end: the official OpenAI SDK -> the gateway -> the strict Replicate fake.

The session gateway waits briefly (``Prefer: wait=1``, polls from 50 ms, a 4 s deadline): a
prediction that settles at once is answered by the create alone; one that does not costs the
test the 1 s the create holds.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from imagegate.testing.fake import Fault
from imagegate.testing.replicate import FakeReplicate
from tests import imaging
from tests.server import Gateway
from tests.support import sdk, sse
from tests.support.envelope import error_of
from tests.upstream.conftest import (
    KEYS,
    REPLICATE_DEADLINE_SECONDS,
    REPLICATE_WAIT_SECONDS,
    RunningFake,
)

KONTEXT = "replicate/black-forest-labs/flux-kontext-pro"
NANO = "replicate/google/nano-banana"
SEEDREAM = "replicate/bytedance/seedream-4"
PRICE = {KONTEXT: 0.04, NANO: 0.039, SEEDREAM: 0.03}
MAX_REFS = {KONTEXT: 1, NANO: 3, SEEDREAM: 10}
IMAGE_FIELD = {KONTEXT: "string", NANO: "list", SEEDREAM: "list"}
MODELS = list(PRICE)
PNG = imaging.png()  # 64x48


@pytest.fixture()
def fake(fakes: dict[str, RunningFake]) -> FakeReplicate:
    running = fakes["replicate"]
    running.reset()
    replicate = running.fake
    assert isinstance(replicate, FakeReplicate)
    replicate.jobs.clear()
    replicate.served.clear()
    replicate.reset_knobs()
    return replicate


def edit(client: OpenAI, **params: Any) -> Any:
    params.setdefault("model", KONTEXT)
    params.setdefault("image", ("in.png", PNG, "image/png"))
    params.setdefault("prompt", "make it a 90s cartoon")
    return sdk.edit(client, **params)


def refused(client: OpenAI, status: int, *, origin: str = "gateway", **params: Any) -> Any:
    params.setdefault("model", KONTEXT)
    params.setdefault("image", ("in.png", PNG, "image/png"))
    params.setdefault("prompt", "make it a 90s cartoon")
    with pytest.raises(openai.APIStatusError) as caught:
        client.images.edit(**params)
    return error_of(caught.value.response, status, origin=origin)


def cost(result: Any) -> float:
    total: float = result.usage.model_extra["cost"]["total_cost"]
    return total


def creates(fake: FakeReplicate) -> list[dict[str, Any]]:
    return [call.summary for call in fake.calls if call.summary.get("kind") == "create"]


def queue(fake: FakeReplicate, fault: str, **options: Any) -> None:
    fake.faults.clear()
    fake.faults.append(Fault(fault, **options))


# -- one good edit per model ---------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_one_image_is_one_prediction_answered_by_the_create(
    upstream_client: OpenAI, fake: FakeReplicate, model: str
) -> None:
    result = edit(upstream_client, model=model)
    (create,) = creates(fake)
    assert (create["auth"], create["prefer"]) == ("ok", f"wait={REPLICATE_WAIT_SECONDS}")
    assert create["image_field"] == IMAGE_FIELD[model]
    assert create["images"] == [{"format": "PNG", "size": [64, 48]}]
    assert create["input"]["prompt"] == "make it a 90s cartoon"
    assert create["answered"] == "succeeded"  # settled within the wait: no poll
    assert fake.kinds() == ["create", "delivery"]
    (image,) = result.data
    out = imaging.decode_b64(image.b64_json)
    assert out.size == ((128, 96) if model == SEEDREAM else (64, 48))  # the input's shape
    assert result.model_extra["model"] == model
    assert cost(result) == pytest.approx(PRICE[model])


@pytest.mark.parametrize(
    ("alias", "model"),
    [
        ("replicate-flux-kontext-pro", KONTEXT),
        ("replicate-nano-banana", NANO),
        ("replicate-seedream-4", SEEDREAM),
    ],
)
def test_the_aliases(upstream_client: OpenAI, fake: FakeReplicate, alias: str, model: str) -> None:
    result = edit(upstream_client, model=alias)
    assert result.model_extra["model"] == model
    assert fake.calls[0].path == f"/v1/models/{model.removeprefix('replicate/')}/predictions"


def test_the_models_are_listed(upstream_client: OpenAI) -> None:
    listed = {model.id for model in upstream_client.models.list()}
    assert set(MODELS) <= listed


# -- references and masks ------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_references_at_the_cap_all_go(
    upstream_client: OpenAI, fake: FakeReplicate, model: str
) -> None:
    images = [imaging.png(64 + i, 48) for i in range(MAX_REFS[model])]
    edit(upstream_client, model=model, image=images)
    (create,) = creates(fake)
    assert [image["size"] for image in create["images"]] == [
        [64 + i, 48] for i in range(len(images))
    ]


@pytest.mark.parametrize("model", MODELS)
def test_one_reference_over_the_cap_is_refused_before_any_call(
    upstream_client: OpenAI, fake: FakeReplicate, model: str
) -> None:
    error = refused(upstream_client, 400, model=model, image=[PNG] * (MAX_REFS[model] + 1))
    assert (error["code"], error["param"]) == ("too_many_images", "image")
    assert fake.calls == []


@pytest.mark.parametrize("model", MODELS)
def test_a_mask_is_refused_not_dropped(
    upstream_client: OpenAI, fake: FakeReplicate, model: str
) -> None:
    error = refused(upstream_client, 400, model=model, mask=imaging.mask_left_half())
    assert (error["param"], error["code"]) == ("mask", "mask_not_supported")
    assert fake.calls == []


# -- n -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", [KONTEXT, NANO])
def test_n_is_fanned_out_into_predictions(
    upstream_client: OpenAI, fake: FakeReplicate, model: str
) -> None:
    result = edit(upstream_client, model=model, n=2)
    assert len(result.data) == 2 and len(creates(fake)) == 2
    assert cost(result) == pytest.approx(2 * PRICE[model])


def test_each_fanned_out_kontext_prediction_gets_its_own_seed(
    upstream_client: OpenAI, fake: FakeReplicate
) -> None:
    edit(upstream_client, n=3, extra_body={"seed": 41})
    assert sorted(create["input"]["seed"] for create in creates(fake)) == [41, 42, 43]


def test_n_is_seedreams_own_max_images(upstream_client: OpenAI, fake: FakeReplicate) -> None:
    result = edit(upstream_client, model=SEEDREAM, n=2)
    (create,) = creates(fake)
    assert create["input"]["sequential_image_generation"] == "auto"
    assert create["input"]["max_images"] == 2
    assert len(result.data) == 2
    assert fake.kinds().count("delivery") == 2  # the output is a list: every URI downloaded
    assert cost(result) == pytest.approx(0.06)


def test_seedream_may_make_fewer_and_bills_what_it_made(
    upstream_client: OpenAI, fake: FakeReplicate
) -> None:
    fake.sequential_shortfall = 1
    result = edit(upstream_client, model=SEEDREAM, n=3)
    assert len(result.data) == 2 and cost(result) == pytest.approx(0.06)


# -- sizing --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "params", "sent", "size"),
    [
        (KONTEXT, {"extra_body": {"aspect_ratio": "16:9"}}, {"aspect_ratio": "16:9"}, (128, 72)),
        (KONTEXT, {"size": "1536x1024"}, {"aspect_ratio": "3:2"}, (128, 85)),
        (KONTEXT, {"size": "auto"}, {"aspect_ratio": "match_input_image"}, (64, 48)),
        (
            NANO,
            {"extra_body": {"aspect_ratio": "match_input_image"}},
            {"aspect_ratio": "match_input_image"},
            (64, 48),
        ),
        (NANO, {"extra_body": {"aspect_ratio": "4:5"}}, {"aspect_ratio": "4:5"}, (102, 128)),
        (
            SEEDREAM,
            {"extra_body": {"resolution": "1K"}},
            {"aspect_ratio": "match_input_image", "size": "1K"},
            (64, 48),
        ),
        (
            SEEDREAM,
            {"extra_body": {"resolution": "4K", "aspect_ratio": "21:9"}},
            {"aspect_ratio": "21:9", "size": "4K"},
            (256, 110),
        ),
        (
            SEEDREAM,
            {"size": "2048x1536"},
            {"size": "custom", "width": 2048, "height": 1536},
            (128, 96),
        ),
        (SEEDREAM, {"size": "1024x768"}, {"aspect_ratio": "4:3", "size": "1K"}, (64, 48)),
    ],
)
def test_sizes_reach_each_model_in_its_own_keys(
    upstream_client: OpenAI,
    fake: FakeReplicate,
    model: str,
    params: dict[str, Any],
    sent: dict[str, Any],
    size: tuple[int, int],
) -> None:
    result = edit(upstream_client, model=model, **params)
    (create,) = creates(fake)
    sizing_keys = {"aspect_ratio", "size", "width", "height"}
    assert {k: v for k, v in create["input"].items() if k in sizing_keys} == sent
    assert imaging.decode_b64(result.data[0].b64_json).size == size


@pytest.mark.parametrize(
    ("model", "params", "param"),
    [
        (KONTEXT, {"size": "1200x1000"}, "size"),
        (KONTEXT, {"extra_body": {"resolution": "2K"}}, "resolution"),
        (NANO, {"extra_body": {"aspect_ratio": "9:21"}}, "aspect_ratio"),
        (SEEDREAM, {"extra_body": {"resolution": "8K"}}, "resolution"),
        (SEEDREAM, {"extra_body": {"aspect_ratio": "2:1"}}, "aspect_ratio"),
    ],
)
def test_sizes_a_model_cannot_make_are_refused_before_any_call(
    upstream_client: OpenAI, fake: FakeReplicate, model: str, params: dict[str, Any], param: str
) -> None:
    error = refused(upstream_client, 400, model=model, **params)
    assert (error["param"], error["code"]) == (param, "unsupported_size")
    assert fake.calls == []


# -- fields and options --------------------------------------------------------------------------


def test_kontext_options_seed_and_format_are_forwarded(
    upstream_client: OpenAI, fake: FakeReplicate
) -> None:
    result = edit(
        upstream_client,
        output_format="jpeg",
        extra_body={"seed": 7, "safety_tolerance": "1", "prompt_upsampling": "true"},
    )
    (create,) = creates(fake)
    assert create["input"] == {
        "prompt": "make it a 90s cartoon",
        "aspect_ratio": "match_input_image",
        "output_format": "jpg",
        "seed": 7,
        "safety_tolerance": 1,
        "prompt_upsampling": True,
    }
    assert imaging.decode_b64(result.data[0].b64_json).format == "JPEG"


def test_webp_is_asked_as_png_and_converted_by_the_gateway(
    upstream_client: OpenAI, fake: FakeReplicate
) -> None:
    result = edit(upstream_client, model=NANO, output_format="webp")
    assert creates(fake)[0]["input"]["output_format"] == "png"
    assert imaging.decode_b64(result.data[0].b64_json).format == "WEBP"


def test_unknown_fields_are_never_forwarded(upstream_client: OpenAI, fake: FakeReplicate) -> None:
    edit(
        upstream_client,
        model=SEEDREAM,
        extra_body={"webhook": "https://example.com/h", "style": "vivid", "enhance_prompt": False},
    )
    (create,) = creates(fake)
    assert create["keys"] == ["aspect_ratio", "enhance_prompt", "image_input", "prompt"]


@pytest.mark.parametrize(
    ("model", "params", "param", "code"),
    [
        (
            KONTEXT,
            {"extra_body": {"safety_tolerance": 5}},
            "safety_tolerance",
            "integer_above_max_value",
        ),
        (
            NANO,
            {"extra_body": {"safety_tolerance": 1}},
            "safety_tolerance",
            "unsupported_parameter",
        ),
        (NANO, {"extra_body": {"seed": 1}}, "seed", "unsupported_parameter"),
        (SEEDREAM, {"extra_body": {"seed": 1}}, "seed", "unsupported_parameter"),
        (KONTEXT, {"quality": "high"}, "quality", "unsupported_value"),
        (SEEDREAM, {"n": 6, "image": [PNG] * 10}, "n", "too_many_images"),
    ],
)
def test_what_replicate_would_refuse_is_refused_before_any_call(
    upstream_client: OpenAI,
    fake: FakeReplicate,
    model: str,
    params: dict[str, Any],
    param: str,
    code: str,
) -> None:
    error = refused(upstream_client, 400, model=model, **params)
    assert (error["param"], error["code"]) == (param, code)
    assert fake.calls == []


# -- queued: polling, deadline, disconnect -------------------------------------------------------


def test_a_prediction_that_takes_longer_is_polled_on_the_urls_replicate_gave(
    upstream_client: OpenAI, fake: FakeReplicate
) -> None:
    fake.polls_to_settle = 2
    started = time.monotonic()
    result = edit(upstream_client, model=NANO)
    assert time.monotonic() - started >= REPLICATE_WAIT_SECONDS  # the create held for the wait
    assert fake.kinds() == ["create", "poll", "poll", "delivery"]
    (create, first, second, _) = [call.summary for call in fake.calls]
    assert create["answered"] == "starting"
    assert (first["status"], second["status"]) == ("processing", "succeeded")
    assert first["prediction"] == create["prediction"] and first["auth"] == "ok"
    assert fake.calls[1].path.startswith("/v1/shards/")  # as issued, never rebuilt from the id
    assert len(result.data) == 1


def test_polls_that_fail_for_a_moment_are_polled_again(
    upstream_client: OpenAI, fake: FakeReplicate
) -> None:
    faults = ["rate_limit", "server_error", "unavailable"]
    fake.faults.extend(Fault(name, variant="poll") for name in faults)
    result = edit(upstream_client, model=SEEDREAM)
    assert len(result.data) == 1
    polls = [call.summary for call in fake.calls if call.summary["kind"] == "poll"]
    assert [poll.get("fault") for poll in polls[:3]] == faults
    assert polls[-1]["status"] == "succeeded" and "cancel" not in fake.kinds()


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [("malformed", 502, "upstream_malformed"), ("bad_key", 502, "provider_auth_failed")],
)
def test_a_poll_that_fails_for_good_cancels_the_prediction(
    upstream_client: OpenAI, fake: FakeReplicate, fault: str, status: int, code: str
) -> None:
    queue(fake, fault, variant="poll")
    error = refused(upstream_client, status, origin="provider", model=KONTEXT)
    assert error["code"] == code
    assert fake.kinds()[-1] == "cancel"


def test_a_prediction_that_never_settles_is_cancelled_at_the_deadline(
    upstream_client: OpenAI, fake: FakeReplicate
) -> None:
    queue(fake, "timeout", variant="never")
    started = time.monotonic()
    error = refused(upstream_client, 504, origin="provider", model=NANO)
    elapsed = time.monotonic() - started
    assert error["code"] == "upstream_timeout" and "cancelled" in error["message"]
    assert REPLICATE_DEADLINE_SECONDS <= elapsed < REPLICATE_DEADLINE_SECONDS + 2
    kinds = fake.kinds()
    assert kinds[0] == "create" and kinds[-1] == "cancel" and kinds.count("poll") >= 2
    (job,) = fake.jobs.values()
    assert job.status == "canceled"


def test_a_client_that_goes_away_mid_poll_cancels_the_prediction(
    upstream_gateway: Gateway, fake: FakeReplicate
) -> None:
    queue(fake, "timeout", variant="never")
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            upstream_gateway.base_url + "/v1/images/edits",
            data={"model": SEEDREAM, "prompt": "x"},
            files={"image": ("a.png", PNG, "image/png")},
            timeout=httpx.Timeout(10, read=REPLICATE_WAIT_SECONDS + 0.8),
        )
    while "cancel" not in fake.kinds() and time.monotonic() - started < REPLICATE_DEADLINE_SECONDS:
        time.sleep(0.02)
    assert time.monotonic() - started < REPLICATE_DEADLINE_SECONDS  # not the deadline's cancel
    kinds = fake.kinds()
    assert kinds[-1] == "cancel" and kinds.count("poll") >= 1
    time.sleep(0.5)
    assert fake.kinds() == kinds  # nothing polled after the cancel
    (job,) = fake.jobs.values()
    assert job.status == "canceled"


# -- faults and failed predictions ---------------------------------------------------------------


FAULTS = [
    ("rate_limit", {"retry_after": 9}, 429, "rate_limit_exceeded", "9"),
    ("rate_limit", {}, 429, "rate_limit_exceeded", None),
    ("server_error", {}, 502, "upstream_error", None),
    ("unavailable", {}, 502, "upstream_error", None),
    ("timeout", {"delay": 4.0}, 504, "upstream_timeout", None),
    ("malformed", {}, 502, "upstream_malformed", None),
    ("truncated", {}, 502, "upstream_malformed", None),
    ("no_image", {}, 502, "upstream_malformed", None),
    ("moderation", {}, 400, "content_policy_violation", None),
    ("bad_key", {}, 502, "provider_auth_failed", None),
]


@pytest.mark.parametrize(
    ("model", "fault", "options", "status", "code", "retry_after"),
    [
        (model, *case)
        for model in MODELS
        for case in FAULTS
        if case[0] != "timeout" or model == KONTEXT  # the read timeout is the same for all
    ],
)
def test_each_fault_in_replicates_shape(
    upstream_client: OpenAI,
    fake: FakeReplicate,
    model: str,
    fault: str,
    options: dict[str, Any],
    status: int,
    code: str,
    retry_after: str | None,
) -> None:
    queue(fake, fault, **options)
    with pytest.raises(openai.APIStatusError) as caught:
        upstream_client.images.edit(model=model, image=PNG, prompt="x")
    error = error_of(caught.value.response, status, origin="provider")
    assert error["code"] == code
    assert caught.value.response.headers.get("retry-after") == retry_after
    assert len(creates(fake)) == 1
    assert KEYS["replicate"] not in error["message"]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize(("variant", "words"), [(None, "flagged as sensitive"), ("nsfw", "NSFW")])
def test_a_safety_failure_is_a_content_policy_400_with_the_reason(
    upstream_client: OpenAI, fake: FakeReplicate, model: str, variant: str | None, words: str
) -> None:
    queue(fake, "moderation", variant=variant)
    error = refused(upstream_client, 400, origin="provider", model=model)
    assert error["code"] == "content_policy_violation"
    assert words in error["message"] and "replicate" in error["message"]


@pytest.mark.parametrize(("model", "polls"), [(KONTEXT, 0), (NANO, 1), (SEEDREAM, 0)])
def test_a_failed_prediction_is_a_502_with_replicates_error(
    upstream_client: OpenAI, fake: FakeReplicate, model: str, polls: int
) -> None:
    fake.polls_to_settle = polls  # ended within the wait, or found ended by a poll
    queue(fake, "server_error", variant="failed")
    error = refused(upstream_client, 502, origin="provider", model=model)
    assert error["code"] == "upstream_error"
    assert "CUDA out of memory" in error["message"] and "(E1001)" in error["message"]
    assert "cancel" not in fake.kinds()  # it ended by itself


@pytest.mark.parametrize("variant", ["canceled", "aborted"])
def test_a_prediction_ended_upstream_is_a_502(
    upstream_client: OpenAI, fake: FakeReplicate, variant: str
) -> None:
    queue(fake, "server_error", variant=variant)
    error = refused(upstream_client, 502, origin="provider")
    assert error["code"] == "upstream_error" and variant in error["message"]


def test_an_output_given_as_a_data_uri_is_decoded(
    upstream_client: OpenAI, fake: FakeReplicate
) -> None:
    fake.output_as_data_uri = True
    result = edit(upstream_client, model=SEEDREAM, n=2)
    assert len(result.data) == 2 and "delivery" not in fake.kinds()


def test_the_cost_follows_the_images_replicate_bills(
    upstream_client: OpenAI, fake: FakeReplicate
) -> None:
    fake.billed_images = 0
    result = edit(upstream_client, model=KONTEXT, n=3)  # 3 predictions, each billing none
    assert cost(result) == 0


def test_images_billed_beyond_n_are_still_what_replicate_billed(
    upstream_client: OpenAI, fake: FakeReplicate
) -> None:
    # The cost is what the provider says it billed, even past what was asked (and held): the
    # budget records the truth and the gateway logs the excess (accounts/budgets.py).
    fake.billed_images = 2
    result = edit(upstream_client, model=KONTEXT, n=3)  # 3 predictions, each billing 2
    assert cost(result) == pytest.approx(6 * 0.04)


# -- stream --------------------------------------------------------------------------------------


def test_a_stream_sends_one_completed_event_per_image(
    upstream_client: OpenAI, fake: FakeReplicate
) -> None:
    fake.polls_to_settle = 1
    events = sdk.stream(upstream_client, model=NANO, image=PNG, prompt="x", n=2)
    assert [event.type for event in events] == ["image_edit.completed"] * 2
    assert events[0].usage.model_extra["cost"]["total_cost"] == pytest.approx(0.078)


def test_a_stream_that_fails_ends_with_an_error_event(
    upstream_client: OpenAI, fake: FakeReplicate
) -> None:
    queue(fake, "moderation")
    raw = upstream_client.images.with_raw_response.edit(
        model=KONTEXT, image=PNG, prompt="x", stream=True
    )
    events = sse.events(raw.http_response.read())
    assert events[-1].name == "error"
    assert events[-1].data["error"]["code"] == "content_policy_violation"


# -- the token -----------------------------------------------------------------------------------


def test_the_token_is_never_logged_nor_echoed_nor_sent_for_results(
    upstream_client: OpenAI, upstream_gateway: Gateway, fake: FakeReplicate
) -> None:
    queue(fake, "bad_key")
    error = refused(upstream_client, 502, origin="provider")
    assert error["code"] == "provider_auth_failed" and "not about your API key" in error["message"]
    fake.polls_to_settle = 1
    edit(upstream_client, model=SEEDREAM, n=2)  # create, poll and downloads, logged too
    deliveries = [call.summary for call in fake.calls if call.summary["kind"] == "delivery"]
    assert len(deliveries) == 2 and not any(d.get("auth_sent") for d in deliveries)
    logs = upstream_gateway.logs()
    assert '"provider":"replicate"' in logs.replace(" ", "")
    token = KEYS["replicate"]
    assert token not in logs and token[6:] not in logs and token not in error["message"]
