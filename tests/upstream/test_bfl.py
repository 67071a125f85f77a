"""Black Forest Labs end to end: the official OpenAI SDK -> the gateway -> the strict BFL fake
(submit, polls at the regional URL the fake issued, the signed delivery URL)."""

from __future__ import annotations

import base64
import io
import time
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI
from PIL import Image

from imagegate.testing.bfl import FakeBfl
from imagegate.testing.fake import Fault
from tests import imaging
from tests.server import Gateway
from tests.support import sdk, sse
from tests.support.envelope import error_of
from tests.upstream.conftest import BFL_POLL_TIMEOUT_SECONDS, KEYS, RunningFake

KONTEXT = ("bfl/flux-kontext-pro", "bfl/flux-kontext-max")
FLUX2 = ("bfl/flux-2-pro", "bfl/flux-2-max")
MODELS = KONTEXT + FLUX2
CAP = {
    "bfl/flux-kontext-pro": 4,
    "bfl/flux-kontext-max": 4,
    "bfl/flux-2-pro": 8,
    "bfl/flux-2-max": 8,
}
# BFL's stated cost in credits, as the fake states it: Kontext per image; FLUX.2 the first MP
# plus each input (the fake counts each small input as 1 MP).
FIRST = {
    "bfl/flux-kontext-pro": 4,
    "bfl/flux-kontext-max": 8,
    "bfl/flux-2-pro": 3,
    "bfl/flux-2-max": 7,
}
PER_INPUT = {
    "bfl/flux-kontext-pro": 0,
    "bfl/flux-kontext-max": 0,
    "bfl/flux-2-pro": 1.5,
    "bfl/flux-2-max": 3,
}
PNG = imaging.png()  # 64x48
KEY = KEYS["bfl"]
B64 = base64.b64encode(PNG).decode()


def credits(model: str, inputs: int = 1) -> float:
    return (FIRST[model] + PER_INPUT[model] * inputs) / 100


@pytest.fixture()
def fake(fakes: dict[str, RunningFake]) -> FakeBfl:
    running = fakes["bfl"]
    running.reset()
    bfl = running.fake
    assert isinstance(bfl, FakeBfl)
    bfl.tasks.clear()
    bfl.pending_polls = 2
    bfl.polling_host = None
    bfl.state_cost = True
    bfl.credits = None
    return bfl


def edit(client: OpenAI, model: str, **params: Any) -> Any:
    params.setdefault("image", ("in.png", PNG, "image/png"))
    params.setdefault("prompt", "make the box blue")
    return sdk.edit(client, model=model, **params)


def refused(client: OpenAI, status: int, *, origin: str = "gateway", **params: Any) -> Any:
    params.setdefault("image", ("in.png", PNG, "image/png"))
    params.setdefault("prompt", "make the box blue")
    with pytest.raises(openai.APIStatusError) as caught:
        client.images.edit(**params)
    return error_of(caught.value.response, status, origin=origin)


def decoded(b64: str | None) -> Image.Image:
    assert b64 is not None
    return imaging.decode_b64(b64)


def cost(result: Any) -> float:
    total: float = result.usage.model_extra["cost"]["total_cost"]
    return total


def queue(fake: FakeBfl, fault: str, **options: Any) -> None:
    fake.faults.clear()
    fake.faults.append(Fault(fault, **options))  # type: ignore[arg-type]


def upstream(model: str) -> str:
    return model.split("/", 1)[1]


# -- one good edit per card ----------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_one_image_is_submitted_polled_at_the_issued_url_and_downloaded(
    upstream_client: OpenAI, fake: FakeBfl, model: str
) -> None:
    result = edit(upstream_client, model)
    (submit,) = fake.submits()
    assert (submit.method, submit.path) == ("POST", f"/v1/{upstream(model)}")
    assert submit.content_type == "application/json"
    assert submit.summary["auth"] == "ok"
    assert submit.summary["keys"] == ["input_image", "prompt"]  # nothing the client did not ask
    assert submit.summary["prompt"] == "make the box blue"
    task_id = submit.summary["answered"]["id"]
    polls = fake.polls()
    assert [p.summary["answered"] for p in polls] == ["Pending", "Pending", "ready"]
    assert all(p.summary["id"] == task_id and p.summary["auth"] == "ok" for p in polls)
    assert all(p.path.endswith("/v1/get_result") and p.path != "/v1/get_result" for p in polls)
    (delivery,) = fake.deliveries()
    assert delivery.summary["key_sent"] is False  # the signed URL gets no key
    (image,) = result.data
    out = decoded(image.b64_json)
    assert out.size == (64, 48)  # no size: the input's
    assert out.format == ("PNG" if model in KONTEXT else "JPEG")  # BFL's default per model
    assert result.model_extra["model"] == model
    assert cost(result) == pytest.approx(credits(model))


@pytest.mark.parametrize(
    ("alias", "model"), [("flux-kontext-max", KONTEXT[1]), ("flux-2-pro", FLUX2[0])]
)
def test_aliases(upstream_client: OpenAI, fake: FakeBfl, alias: str, model: str) -> None:
    result = edit(upstream_client, alias)
    assert result.model_extra["model"] == model
    assert fake.submits()[0].path == f"/v1/{upstream(model)}"


# -- references and masks ------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_references_up_to_the_cap_and_one_over(
    upstream_client: OpenAI, fake: FakeBfl, model: str
) -> None:
    cap = CAP[model]
    images = [imaging.png(), imaging.jpeg(80, 60), imaging.webp(40, 40)] * 3
    result = edit(upstream_client, model, image=images[:cap])
    expected = ["input_image"] + [f"input_image_{i}" for i in range(2, cap + 1)]
    assert fake.submits()[0].summary["keys"] == sorted([*expected, "prompt"])
    assert cost(result) == pytest.approx(credits(model, inputs=cap))
    fake.calls.clear()
    error = refused(upstream_client, 400, model=model, image=images[: cap + 1])
    assert (error["param"], error["code"]) == ("image", "too_many_images")
    assert fake.calls == []


@pytest.mark.parametrize("model", MODELS)
def test_a_mask_is_refused_before_any_call(
    upstream_client: OpenAI, fake: FakeBfl, model: str
) -> None:
    error = refused(upstream_client, 400, model=model, mask=imaging.mask_left_half())
    assert (error["param"], error["code"]) == ("mask", "mask_not_supported")
    assert fake.calls == []


# -- n -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_n_is_one_task_each_with_its_own_seed_and_cost_summed(
    upstream_client: OpenAI, fake: FakeBfl, model: str
) -> None:
    result = edit(upstream_client, model, n=2, extra_body={"seed": 7})
    assert len(result.data) == 2
    submits = fake.submits()
    assert sorted(s.summary["seed"] for s in submits) == [7, 8]
    assert len({s.summary["answered"]["id"] for s in submits}) == 2
    assert len(fake.deliveries()) == 2
    assert cost(result) == pytest.approx(2 * credits(model))


# -- sizing --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "sent", "size"),
    [
        ({"extra_body": {"aspect_ratio": "16:9"}}, "16:9", (128, 72)),
        ({"size": "1536x1024"}, "3:2", (128, 85)),  # a size sent as its shape
        ({"extra_body": {"aspect_ratio": "9:21"}}, "9:21", (55, 128)),
        ({"size": "auto"}, None, (64, 48)),
    ],
)
@pytest.mark.parametrize("model", KONTEXT)
def test_kontext_takes_an_aspect_ratio(
    upstream_client: OpenAI,
    fake: FakeBfl,
    model: str,
    params: dict[str, Any],
    sent: str | None,
    size: tuple[int, int],
) -> None:
    result = edit(upstream_client, model, **params)
    summary = fake.submits()[0].summary
    assert summary.get("aspect_ratio") == sent
    assert "width" not in summary["keys"] and "height" not in summary["keys"]
    assert decoded(result.data[0].b64_json).size == size


@pytest.mark.parametrize(
    ("params", "size"),
    [
        ({"size": "1024x768"}, (1024, 768)),  # a size sent as width and height
        ({"extra_body": {"width": 256, "height": 128}}, (256, 128)),
        ({"size": "auto"}, (64, 48)),
    ],
)
@pytest.mark.parametrize("model", FLUX2)
def test_flux2_takes_width_and_height(
    upstream_client: OpenAI,
    fake: FakeBfl,
    model: str,
    params: dict[str, Any],
    size: tuple[int, int],
) -> None:
    result = edit(upstream_client, model, **params)
    summary = fake.submits()[0].summary
    if size == (64, 48):
        assert "width" not in summary["keys"]  # 0 / omitted: the input's size
    else:
        assert (summary["width"], summary["height"]) == size
    assert "aspect_ratio" not in summary["keys"]
    assert decoded(result.data[0].b64_json).size == size


@pytest.mark.parametrize(
    ("model", "params", "param"),
    [
        (KONTEXT[0], {"size": "1000x700"}, "size"),  # 10:7 is no listed shape
        (KONTEXT[1], {"extra_body": {"aspect_ratio": "3:1"}}, "aspect_ratio"),  # past 21:9
        (KONTEXT[0], {"extra_body": {"resolution": "2K"}}, "resolution"),
        (FLUX2[0], {"size": "1000x1000"}, "size"),  # not multiples of 16
        (FLUX2[1], {"size": "4096x2048"}, "size"),  # over 4 MP
        (FLUX2[0], {"size": "48x48"}, "size"),  # under 64
        (FLUX2[0], {"extra_body": {"aspect_ratio": "16:9"}}, "aspect_ratio"),  # pixels only
    ],
)
def test_sizes_bfl_cannot_make_are_refused_before_any_call(
    upstream_client: OpenAI, fake: FakeBfl, model: str, params: dict[str, Any], param: str
) -> None:
    error = refused(upstream_client, 400, model=model, **params)
    assert (error["param"], error["code"]) == (param, "unsupported_size")
    assert fake.calls == []


# -- options, formats and fields BFL lacks -------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_safety_tolerance_is_forwarded_within_the_models_range(
    upstream_client: OpenAI, fake: FakeBfl, model: str
) -> None:
    edit(upstream_client, model, extra_body={"safety_tolerance": 1})
    assert fake.submits()[0].summary["safety_tolerance"] == 1
    top = 2 if model in KONTEXT else 5
    edit(upstream_client, model, extra_body={"safety_tolerance": top})
    fake.calls.clear()
    error = refused(upstream_client, 400, model=model, extra_body={"safety_tolerance": top + 1})
    assert (error["param"], error["code"]) == ("safety_tolerance", "integer_above_max_value")
    assert fake.calls == []


def test_prompt_upsampling_goes_to_kontext_only(upstream_client: OpenAI, fake: FakeBfl) -> None:
    edit(upstream_client, KONTEXT[0], extra_body={"prompt_upsampling": True})
    assert fake.submits()[0].summary["prompt_upsampling"] is True
    fake.calls.clear()
    error = refused(upstream_client, 400, model=FLUX2[0], extra_body={"prompt_upsampling": True})
    assert (error["param"], error["code"]) == ("prompt_upsampling", "unsupported_parameter")
    assert fake.calls == []


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"quality": "high"}, "quality"),
        ({"input_fidelity": "high"}, "input_fidelity"),
        ({"extra_body": {"moderation": "low"}}, "moderation"),
        ({"extra_body": {"input_image_2": "aGVsbG8="}}, "input_image_2"),
        ({"extra_body": {"webhook_url": "https://example.com/hook"}}, "webhook_url"),
        ({"extra_body": {"safety_tolerance": "lax"}}, "safety_tolerance"),
    ],
)
def test_fields_bfl_lacks_are_refused(
    upstream_client: OpenAI, fake: FakeBfl, params: dict[str, Any], param: str
) -> None:
    error = refused(upstream_client, 400, model=FLUX2[0], **params)
    assert error["param"] == param
    assert fake.calls == []


def test_unknown_fields_are_never_forwarded(upstream_client: OpenAI, fake: FakeBfl) -> None:
    edit(upstream_client, KONTEXT[0], extra_body={"style": "vivid", "negative_prompt": "x"})
    assert fake.submits()[0].summary["keys"] == ["input_image", "prompt"]


@pytest.mark.parametrize(
    ("model", "params", "asked", "got"),
    [
        (FLUX2[0], {"output_format": "png"}, "png", "PNG"),
        (KONTEXT[0], {"output_format": "jpeg"}, "jpeg", "JPEG"),
        (KONTEXT[1], {"output_format": "webp"}, "png", "WEBP"),  # converted from BFL's PNG
        (FLUX2[1], {"output_format": "jpeg", "output_compression": 40}, "png", "JPEG"),
    ],
)
def test_output_formats(
    upstream_client: OpenAI,
    fake: FakeBfl,
    model: str,
    params: dict[str, Any],
    asked: str,
    got: str,
) -> None:
    result = edit(upstream_client, model, **params)
    assert fake.submits()[0].summary["output_format"] == asked
    assert decoded(result.data[0].b64_json).format == got


# -- faults --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "options", "status", "code", "retry_after"),
    [
        ("rate_limit", {"retry_after": 9}, 429, "rate_limit_exceeded", "9"),
        ("rate_limit", {}, 429, "rate_limit_exceeded", None),
        ("server_error", {}, 502, "upstream_error", None),
        ("unavailable", {}, 502, "upstream_error", None),
        ("timeout", {"delay": 4.0}, 504, "upstream_timeout", None),
        ("malformed", {}, 502, "upstream_malformed", None),
        ("truncated", {}, 502, "upstream_malformed", None),
        ("bad_key", {}, 502, "provider_auth_failed", None),
    ],
)
def test_each_submit_fault_in_bfls_shape(
    upstream_client: OpenAI,
    fake: FakeBfl,
    fault: str,
    options: dict[str, Any],
    status: int,
    code: str,
    retry_after: str | None,
) -> None:
    queue(fake, fault, **options)
    with pytest.raises(openai.APIStatusError) as caught:
        upstream_client.images.edit(model=FLUX2[0], image=PNG, prompt="x")
    error = error_of(caught.value.response, status, origin="provider")
    assert error["code"] == code
    assert caught.value.response.headers.get("retry-after") == retry_after
    assert len(fake.submits()) == 1 and fake.polls() == []
    assert KEY not in error["message"]


def test_insufficient_credits_is_the_operators_problem(
    upstream_client: OpenAI, fake: FakeBfl
) -> None:
    fake.credits = 1.0
    error = refused(upstream_client, 502, model=KONTEXT[0], origin="provider")
    assert error["code"] == "upstream_error"
    assert "insufficient credits" in error["message"].lower()
    assert fake.polls() == []


@pytest.mark.parametrize(
    ("fault", "variant", "status", "code", "words"),
    [
        ("server_error", "task_error", 502, "upstream_error", "status Error: Generation failed"),
        ("server_error", "task_failed", 502, "upstream_error", "status Failed"),
        ("server_error", "task_not_found", 502, "upstream_error", "not found"),
        ("no_image", None, 502, "upstream_malformed", "without result.sample"),
        ("malformed", "poll", 502, "upstream_malformed", "not JSON"),
        ("truncated", "poll", 502, "upstream_malformed", "not JSON"),
        ("moderation", None, 400, "content_policy_violation", "Request Moderated"),
        ("moderation", "request", 400, "content_policy_violation", "Request Moderated"),
        ("moderation", "content", 400, "content_policy_violation", "Content Moderated"),
    ],
)
def test_a_task_that_ends_without_an_image(
    upstream_client: OpenAI,
    fake: FakeBfl,
    fault: str,
    variant: str | None,
    status: int,
    code: str,
    words: str,
) -> None:
    queue(fake, fault, variant=variant)
    error = refused(upstream_client, status, model=KONTEXT[0], origin="provider")
    assert error["code"] == code
    assert words in error["message"]
    if fault == "moderation":
        assert "Derivative Works" in error["message"]  # BFL's reason, passed on
    assert len(fake.submits()) == 1 and fake.polls()
    assert fake.deliveries() == []
    assert KEY not in error["message"]


def test_a_task_that_never_settles_is_a_504_and_polling_stops(
    upstream_client: OpenAI, fake: FakeBfl
) -> None:
    queue(fake, "timeout", variant="never_settles")
    started = time.monotonic()
    error = refused(upstream_client, 504, model=FLUX2[0], origin="provider")
    elapsed = time.monotonic() - started
    assert error["code"] == "upstream_timeout"
    assert BFL_POLL_TIMEOUT_SECONDS <= elapsed < BFL_POLL_TIMEOUT_SECONDS + 2
    polled = len(fake.polls())
    assert polled >= 3
    time.sleep(0.6)
    assert len(fake.polls()) == polled  # nothing more is polled after the answer


def test_a_client_that_goes_away_mid_poll_stops_the_polling(
    upstream_gateway: Gateway, fake: FakeBfl
) -> None:
    queue(fake, "timeout", variant="never_settles")
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            upstream_gateway.base_url + "/v1/images/edits",
            data={"model": KONTEXT[0], "prompt": "x"},
            files={"image": ("a.png", PNG, "image/png")},
            timeout=httpx.Timeout(10, read=0.6),  # then the client closes the connection
        )
    time.sleep(0.2)  # a poll in flight when the client left may still land
    polled = len(fake.polls())
    assert polled >= 2  # it was polling when the client went away
    time.sleep(1.2)  # past several more poll intervals, and short of the poll deadline
    assert len(fake.polls()) == polled


def test_a_polling_url_on_an_untrusted_host_is_refused_and_gets_no_key(
    upstream_client: OpenAI, fake: FakeBfl
) -> None:
    fake.polling_host = "localhost"  # the fake's own port, under a host the gateway does not trust
    error = refused(upstream_client, 502, model=KONTEXT[0], origin="provider")
    assert error["code"] == "upstream_polling_refused"
    assert len(fake.submits()) == 1
    assert fake.polls() == [] and fake.deliveries() == []  # nothing was sent there, no key


# -- stream, cost and the key --------------------------------------------------------------------


@pytest.mark.parametrize("model", [KONTEXT[0], FLUX2[0]])
def test_a_stream_gets_one_completed_event_per_image(
    upstream_client: OpenAI, fake: FakeBfl, model: str
) -> None:
    events = sdk.stream(upstream_client, model=model, image=PNG, prompt="x", n=2, partial_images=2)
    assert [event.type for event in events] == ["image_edit.completed"] * 2
    total = events[-1].usage.model_extra["cost"]["total_cost"]  # type: ignore[union-attr]
    assert total == pytest.approx(2 * credits(model))


def test_a_stream_whose_task_fails_ends_with_an_error_event(
    upstream_client: OpenAI, fake: FakeBfl
) -> None:
    queue(fake, "server_error", variant="task_error")
    raw = upstream_client.images.with_raw_response.edit(
        model=KONTEXT[0], image=PNG, prompt="x", stream=True
    )
    events = sse.events(raw.http_response.read())
    assert events[-1].name == "error"
    assert events[-1].data["error"]["code"] == "upstream_error"


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (KONTEXT[0], 0.04),
        (KONTEXT[1], 0.08),
        # per output MP at the first-MP rate, plus each input: 64x48 px and one input
        (FLUX2[0], 0.03 * 64 * 48 / 1_000_000 + 0.015),
        (FLUX2[1], 0.07 * 64 * 48 / 1_000_000 + 0.03),
    ],
)
def test_list_prices_apply_when_bfl_states_no_cost(
    upstream_client: OpenAI, fake: FakeBfl, model: str, expected: float
) -> None:
    fake.state_cost = False
    assert cost(edit(upstream_client, model)) == pytest.approx(expected, abs=1e-8)


def test_the_stated_cost_is_billed_exactly(upstream_client: OpenAI, fake: FakeBfl) -> None:
    # 1024x1024 is 1 MP out; three inputs: 3 + 3 x 1.5 = 7.5 credits = $0.075
    result = edit(upstream_client, FLUX2[0], image=[PNG] * 3, size="1024x1024")
    assert fake.submits()[0].summary["answered"]["cost"] == 7.5
    assert cost(result) == 0.075


def test_the_key_never_reaches_the_log_or_a_message(
    upstream_client: OpenAI, upstream_gateway: Gateway, fake: FakeBfl
) -> None:
    for name, variant in (("bad_key", None), ("server_error", "task_error"), ("moderation", None)):
        queue(fake, name, variant=variant)
        with pytest.raises(openai.APIStatusError) as caught:
            edit(upstream_client, FLUX2[0])
        assert KEY not in caught.value.response.text
    edit(upstream_client, FLUX2[0])
    upstream_gateway.log_lines(lambda line: line.get("provider") == "bfl")
    logs = upstream_gateway.logs()
    assert "provider_auth_failed" in logs or "credential" in logs
    assert KEY not in logs and KEY[8:] not in logs


# -- the fake itself -----------------------------------------------------------------------------


def _submit(fakes: dict[str, RunningFake], model: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{fakes['bfl'].base_url}/v1/{model}", json=body, headers={"x-key": KEY}, timeout=10
    )


def test_the_fake_polls_only_the_url_it_issued(
    fakes: dict[str, RunningFake], fake: FakeBfl
) -> None:
    body = {"prompt": "x", "input_image": B64}
    task = _submit(fakes, "flux-kontext-pro", body).json()
    base = fakes["bfl"].base_url
    assert (
        task["polling_url"].startswith(base + "/") and "/v1/get_result?id=" in task["polling_url"]
    )
    assert set(task) == {"id", "polling_url", "cost", "input_mp", "output_mp"}
    headers = {"x-key": KEY}
    rebuilt = httpx.get(f"{base}/v1/get_result", params={"id": task["id"]}, headers=headers)
    assert rebuilt.status_code == 404
    region = task["polling_url"].split("/")[3]
    other = next(r for r in ("eu1", "eu2", "us1") if r != region)
    elsewhere = httpx.get(
        f"{base}/{other}/v1/get_result", params={"id": task["id"]}, headers=headers
    )
    assert elsewhere.status_code == 404
    assert httpx.get(task["polling_url"]).status_code == 403  # no key
    answers = [httpx.get(task["polling_url"], headers=headers).json() for _ in range(3)]
    assert [a["status"] for a in answers] == ["Pending", "Pending", "Ready"]
    sample = answers[-1]["result"]["sample"]
    assert httpx.get(sample, headers=headers).status_code == 403  # the key must not go there
    assert httpx.get(sample.replace("sig=", "sig=x")).status_code == 403
    assert Image.open(io.BytesIO(httpx.get(sample).content)).format == "PNG"
    unknown = httpx.get(task["polling_url"].replace(task["id"], "nope"), headers=headers)
    assert unknown.json() == {"id": "nope", "status": "Task not found"}


@pytest.mark.parametrize(
    ("model", "body", "loc"),
    [
        ("flux-kontext-pro", {"input_image": "IMAGE"}, "prompt"),
        (
            "flux-kontext-pro",
            {"prompt": "x", "input_image": "data:image/png;base64,IMAGE"},
            "input_image",
        ),
        ("flux-kontext-pro", {"prompt": "x", "input_image": "aGVsbG8="}, "input_image"),
        ("flux-kontext-pro", {"prompt": "x", "input_image_2": "IMAGE"}, "input_image"),
        (
            "flux-kontext-pro",
            {"prompt": "x", "input_image": "IMAGE", "safety_tolerance": 3},
            "safety_tolerance",
        ),
        (
            "flux-kontext-pro",
            {"prompt": "x", "input_image": "IMAGE", "aspect_ratio": "3:1"},
            "aspect_ratio",
        ),
        ("flux-kontext-pro", {"prompt": "x", "input_image": "IMAGE", "width": 64}, "width"),
        (
            "flux-2-pro",
            {"prompt": "x", "input_image": "IMAGE", "width": 1000, "height": 1024},
            "width",
        ),
        (
            "flux-2-pro",
            {"prompt": "x", "input_image": "IMAGE", "prompt_upsampling": True},
            "prompt_upsampling",
        ),
        (
            "flux-2-pro",
            {"prompt": "x", "input_image": "IMAGE", "safety_tolerance": 6},
            "safety_tolerance",
        ),
        ("flux-2-pro", {"prompt": "x", "input_image_9": "IMAGE"}, "input_image_9"),
    ],
)
def test_the_fake_refuses_what_bfl_refuses_with_a_422(
    fakes: dict[str, RunningFake], fake: FakeBfl, model: str, body: dict[str, Any], loc: str
) -> None:
    body = {key: B64 if value == "IMAGE" else value for key, value in body.items()}
    response = _submit(fakes, model, body)
    assert response.status_code == 422, response.text
    if loc == "prompt":  # BFL's own answer, as the reference fixture has it
        assert response.json() == {
            "detail": [{"loc": ["body", "prompt"], "msg": "Field required", "type": "missing"}]
        }
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["body", loc] and problem["msg"] and problem["type"]
    assert fake.tasks == {}
