"""fal.ai end to end: the official OpenAI SDK -> the gateway -> the strict fal queue fake.

Every job goes submit -> status polls on the URLs fal issued -> result -> result files, and
every failure (at submit, while polling, in the output) reaches the client in OpenAI's shape.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from imagegate.testing.fake import Call, Fault
from imagegate.testing.fal import FakeFal
from tests import imaging
from tests.server import Gateway
from tests.support import sdk, sse
from tests.support.envelope import error_of
from tests.upstream.conftest import FAL_POLL_TIMEOUT_SECONDS, KEYS, RunningFake

KONTEXT = "fal/fal-ai/flux-pro/kontext"
MULTI = "fal/fal-ai/flux-pro/kontext/multi"
SEEDREAM = "fal/fal-ai/bytedance/seedream/v4/edit"
NANO = "fal/fal-ai/nano-banana/edit"
QWEN = "fal/fal-ai/qwen-image-edit"
MODELS = [KONTEXT, MULTI, SEEDREAM, NANO, QWEN]
# Each card: its fal image field, its reference cap, the app its job URLs are under.
IMAGE_FIELD = {
    KONTEXT: "image_url",
    MULTI: "image_urls",
    SEEDREAM: "image_urls",
    NANO: "image_urls",
    QWEN: "image_url",
}
CAP = {KONTEXT: 1, MULTI: 4, SEEDREAM: 10, NANO: 3, QWEN: 1}
APP = {
    KONTEXT: "fal-ai/flux-pro",
    MULTI: "fal-ai/flux-pro",
    SEEDREAM: "fal-ai/bytedance",
    NANO: "fal-ai/nano-banana",
    QWEN: "fal-ai/qwen-image-edit",
}
PER_IMAGE = {KONTEXT: 0.04, MULTI: 0.04, SEEDREAM: 0.03, NANO: 0.039}
PER_MEGAPIXEL = 0.03  # Qwen Image Edit
PNG = imaging.png()  # 64x48
PORTRAIT = {"image_size": "portrait_16_9"}
KEY = KEYS["fal"]


@pytest.fixture()
def fake(fakes: dict[str, RunningFake]) -> FakeFal:
    running = fakes["fal"]
    running.reset()
    fal = running.fake
    assert isinstance(fal, FakeFal)
    return fal


def edit(client: OpenAI, model: str, **params: Any) -> Any:
    params.setdefault("image", ("in.png", PNG, "image/png"))
    params.setdefault("prompt", "turn the box into a cake")
    return sdk.edit(client, model=model, **params)


def refused(
    client: OpenAI, status: int, model: str, *, origin: str = "gateway", **params: Any
) -> dict[str, Any]:
    params.setdefault("image", ("in.png", PNG, "image/png"))
    params.setdefault("prompt", "turn the box into a cake")
    with pytest.raises(openai.APIStatusError) as caught:
        client.images.edit(model=model, **params)
    return error_of(caught.value.response, status, origin=origin)


def cost(result: Any) -> float:
    total: float = result.usage.model_extra["cost"]["total_cost"]
    return total


def queue(fake: FakeFal, fault: str, **options: Any) -> None:
    fake.faults.clear()
    fake.faults.append(Fault(fault, **options))


def submit(fake: FakeFal) -> Call:
    (call,) = fake.of_kind("submit")
    return call


def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def expected_cost(model: str, sizes: list[tuple[int, int]]) -> float:
    if model == QWEN:
        return PER_MEGAPIXEL * sum(w * h for w, h in sizes) / 1_000_000
    return PER_IMAGE[model] * len(sizes)


# -- one good edit, through the whole queue ------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_one_image_through_the_queue(upstream_client: OpenAI, fake: FakeFal, model: str) -> None:
    upstream = model.removeprefix("fal/")
    result = edit(upstream_client, model=model)
    kinds = [call.summary["kind"] for call in fake.calls]
    assert kinds == ["submit", "status", "status", "status", "result", "file"]
    call = submit(fake)
    assert (call.method, call.path, call.content_type) == (
        "POST",
        "/" + upstream,
        "application/json",
    )
    summary = call.summary
    assert summary["auth"] == "ok"
    assert IMAGE_FIELD[model] in summary["keys"]
    assert summary["images"] == [{"format": "PNG", "size": [64, 48], "mime": "image/png"}]
    assert summary["num_images"] == 1
    assert "sync_mode" not in summary["keys"] and "mask" not in summary["keys"]
    # The job is polled and read on the URLs fal issued: the app only, no endpoint subpath.
    job = summary["request_id"]
    base = f"/{APP[model]}/requests/{job}"
    assert [c.path for c in fake.of_kind("status")] == [base + "/status"] * 3
    assert [c.path for c in fake.of_kind("result")] == [base]
    assert fake.of_kind("cancel") == []
    (image,) = result.data
    out = imaging.decode_b64(image.b64_json)
    assert out.size == (64, 48) and out.format == "PNG"
    assert out.getpixel((32, 24)) != imaging.picture().getpixel((32, 24))  # the fake inverts
    assert result.model_extra["model"] == model
    assert cost(result) == pytest.approx(expected_cost(model, [(64, 48)]))


def test_the_job_is_polled_on_the_url_fal_returned_without_the_edit_subpath(
    upstream_client: OpenAI, fake: FakeFal
) -> None:
    edit(upstream_client, model=NANO)
    assert submit(fake).path == "/fal-ai/nano-banana/edit"
    assert all("/edit/" not in call.path for call in fake.of_kind("status"))
    assert all(c.path.startswith("/fal-ai/nano-banana/requests/") for c in fake.of_kind("status"))


@pytest.mark.parametrize(
    ("alias", "model"),
    [
        ("qwen-image-edit", QWEN),
        ("seedream-4-edit", SEEDREAM),
        ("fal-nano-banana", NANO),
        ("fal-flux-kontext-pro", KONTEXT),
    ],
)
def test_aliases_reach_their_fal_endpoint(
    upstream_client: OpenAI, fake: FakeFal, alias: str, model: str
) -> None:
    result = edit(upstream_client, model=alias)
    assert submit(fake).path == "/" + model.removeprefix("fal/")
    assert result.model_extra["model"] == model


# -- references and masks ------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_references_at_the_cap_all_go_with_their_own_types(
    upstream_client: OpenAI, fake: FakeFal, model: str
) -> None:
    kinds = [(PNG, "PNG", "image/png"), (imaging.jpeg(), "JPEG", "image/jpeg")]
    kinds.append((imaging.webp(), "WEBP", "image/webp"))
    chosen = [kinds[i % 3] for i in range(CAP[model])]
    images = [
        (f"{i}.bin", data, "application/octet-stream") for i, (data, _, _) in enumerate(chosen)
    ]
    edit(upstream_client, model=model, image=images if len(images) > 1 else images[0])
    sent = submit(fake).summary["images"]
    assert [(i["format"], i["mime"]) for i in sent] == [(f, m) for _, f, m in chosen]


@pytest.mark.parametrize("model", MODELS)
def test_one_reference_over_the_cap_is_refused_before_any_call(
    upstream_client: OpenAI, fake: FakeFal, model: str
) -> None:
    error = refused(upstream_client, 400, model, image=[PNG] * (CAP[model] + 1))
    assert (error["code"], error["param"]) == ("too_many_images", "image")
    assert fake.calls == []


@pytest.mark.parametrize("model", MODELS)
def test_a_mask_is_refused_not_dropped(upstream_client: OpenAI, fake: FakeFal, model: str) -> None:
    error = refused(upstream_client, 400, model, mask=imaging.mask_left_half())
    assert (error["param"], error["code"]) == ("mask", "mask_not_supported")
    assert fake.calls == []


# -- n -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_n_is_num_images_in_one_job(upstream_client: OpenAI, fake: FakeFal, model: str) -> None:
    result = edit(upstream_client, model=model, n=2)
    assert len(result.data) == 2
    assert submit(fake).summary["num_images"] == 2
    assert len(fake.of_kind("file")) == 2  # both downloaded before the answer
    assert cost(result) == pytest.approx(expected_cost(model, [(64, 48)] * 2))


# -- sizing --------------------------------------------------------------------------------------


def wh(width: int, height: int) -> dict[str, Any]:
    return {"image_size": {"width": width, "height": height}}


@pytest.mark.parametrize(
    ("model", "params", "sent", "size"),
    [
        (KONTEXT, {"size": "1536x1024"}, {"aspect_ratio": "3:2"}, (128, 85)),
        (KONTEXT, {"extra_body": {"aspect_ratio": "9:21"}}, {"aspect_ratio": "9:21"}, (55, 128)),
        (KONTEXT, {"size": "auto"}, {}, (64, 48)),
        (MULTI, {"size": "1024x1024"}, {"aspect_ratio": "1:1"}, (128, 128)),
        (NANO, {"size": "auto"}, {"aspect_ratio": "auto"}, (64, 48)),
        (NANO, {"extra_body": {"aspect_ratio": "5:4"}}, {"aspect_ratio": "5:4"}, (128, 102)),
        (SEEDREAM, {"extra_body": {"image_size": "portrait_16_9"}}, PORTRAIT, (576, 1024)),
        (SEEDREAM, {"extra_body": {"image_size": "auto_2K"}}, {"image_size": "auto_2K"}, (64, 48)),
        (SEEDREAM, {"size": "1024x1024"}, {"image_size": "square_hd"}, (1024, 1024)),
        (SEEDREAM, {"size": "1280x720"}, wh(1280, 720), (1280, 720)),
        (QWEN, {"size": "1024x768"}, {"image_size": "landscape_4_3"}, (1024, 768)),
        (QWEN, {"size": "640x480"}, wh(640, 480), (640, 480)),
        (QWEN, {"extra_body": {"width": 320, "height": 200}}, wh(320, 200), (320, 200)),
    ],
)
def test_each_sizing_style_reaches_fal(
    upstream_client: OpenAI,
    fake: FakeFal,
    model: str,
    params: dict[str, Any],
    sent: dict[str, Any],
    size: tuple[int, int],
) -> None:
    result = edit(upstream_client, model=model, **params)
    summary = submit(fake).summary
    assert {k: summary[k] for k in ("aspect_ratio", "image_size") if k in summary} == sent
    assert "size" not in summary["keys"] and "width" not in summary["keys"]
    assert imaging.decode_b64(result.data[0].b64_json).size == size
    assert cost(result) == pytest.approx(expected_cost(model, [size]))


def test_qwen_is_billed_per_megapixel_of_output(upstream_client: OpenAI, fake: FakeFal) -> None:
    result = edit(upstream_client, model=QWEN, size="1024x768", n=2)
    assert cost(result) == pytest.approx(0.03 * 2 * 1024 * 768 / 1_000_000)  # $0.0471859...
    assert cost(result) == pytest.approx(0.04718592)


@pytest.mark.parametrize(
    ("model", "params", "param"),
    [
        (KONTEXT, {"size": "1200x1000"}, "size"),  # 6:5 is no Kontext ratio
        (NANO, {"extra_body": {"aspect_ratio": "7:4"}}, "aspect_ratio"),
        (SEEDREAM, {"size": "1024x768"}, "size"),  # under Seedream's 960x960 in all
        (SEEDREAM, {"size": "800x800"}, "size"),
        (SEEDREAM, {"extra_body": {"aspect_ratio": "1:1"}}, "aspect_ratio"),  # two presets
        (QWEN, {"size": "5000x5000"}, "size"),
        (QWEN, {"extra_body": {"resolution": "2K"}}, "resolution"),
    ],
)
def test_sizes_fal_cannot_make_are_refused_before_any_call(
    upstream_client: OpenAI, fake: FakeFal, model: str, params: dict[str, Any], param: str
) -> None:
    error = refused(upstream_client, 400, model, **params)
    assert (error["param"], error["code"]) == (param, "unsupported_size")
    assert fake.calls == []


# -- fields: fal's own, OpenAI's, and anything else ----------------------------------------------


def test_kontext_options_are_forwarded_with_fals_types(
    upstream_client: OpenAI, fake: FakeFal
) -> None:
    # Multipart sends every value as text; fal takes a number, a string enum and a boolean.
    edit(
        upstream_client,
        model=KONTEXT,
        extra_body={
            "guidance_scale": 5.5,
            "safety_tolerance": 2,
            "enhance_prompt": True,
            "seed": 42,
            "style": "vivid",
            "negative_prompt_of_nobody": "x",
        },
    )
    summary = submit(fake).summary
    assert summary["guidance_scale"] == 5.5
    assert summary["safety_tolerance"] == "2"
    assert summary["enhance_prompt"] is True
    assert summary["seed"] == 42
    assert summary["keys"] == [
        "enhance_prompt",
        "guidance_scale",
        "image_url",
        "num_images",
        "output_format",
        "prompt",
        "safety_tolerance",
        "seed",
    ]


def test_qwen_and_seedream_options_are_forwarded(upstream_client: OpenAI, fake: FakeFal) -> None:
    options = {
        "negative_prompt": "blurry",
        "guidance_scale": "4",
        "num_inference_steps": "12",
        "acceleration": "high",
        "enable_safety_checker": "false",
    }
    edit(upstream_client, model=QWEN, extra_body=options)
    summary = submit(fake).summary
    assert (summary["negative_prompt"], summary["guidance_scale"]) == ("blurry", 4.0)
    assert (summary["num_inference_steps"], summary["acceleration"]) == (12, "high")
    assert summary["enable_safety_checker"] is False
    fake.calls.clear()
    edit(
        upstream_client,
        model=SEEDREAM,
        extra_body={"enable_safety_checker": False, "enhance_prompt_mode": "fast", "seed": 7},
    )
    summary = submit(fake).summary
    assert (summary["enable_safety_checker"], summary["enhance_prompt_mode"]) == (False, "fast")
    assert summary["seed"] == 7
    assert "output_format" not in summary["keys"]  # Seedream has none


@pytest.mark.parametrize(
    ("model", "extra", "param"),
    [
        (KONTEXT, {"safety_tolerance": 7}, "safety_tolerance"),
        (KONTEXT, {"guidance_scale": 30}, "guidance_scale"),
        (KONTEXT, {"negative_prompt": "x"}, "negative_prompt"),  # another endpoint's option
        (QWEN, {"num_inference_steps": 2.5}, "num_inference_steps"),
        (SEEDREAM, {"enhance_prompt_mode": "slow"}, "enhance_prompt_mode"),
        (NANO, {"num_images": 3}, "num_images"),  # set from n
        (SEEDREAM, {"sync_mode": True}, "sync_mode"),
        (NANO, {"seed": 3}, "seed"),  # Nano Banana takes none
    ],
)
def test_fal_fields_it_would_refuse_are_refused_first(
    upstream_client: OpenAI, fake: FakeFal, model: str, extra: dict[str, Any], param: str
) -> None:
    error = refused(upstream_client, 400, model, extra_body=extra)
    assert error["param"] == param
    assert fake.calls == []


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"quality": "high"}, "quality"),
        ({"input_fidelity": "high"}, "input_fidelity"),
        ({"extra_body": {"moderation": "low"}}, "moderation"),
        ({"background": "transparent"}, "background"),
    ],
)
def test_openai_fields_fal_lacks_are_refused(
    upstream_client: OpenAI, fake: FakeFal, params: dict[str, Any], param: str
) -> None:
    error = refused(upstream_client, 400, KONTEXT, **params)
    assert error["param"] == param
    assert fake.calls == []


@pytest.mark.parametrize(
    ("model", "params", "asked", "got"),
    [
        (NANO, {"output_format": "webp"}, "webp", "WEBP"),
        (KONTEXT, {"output_format": "jpeg"}, "jpeg", "JPEG"),
        (KONTEXT, {"output_format": "webp"}, "png", "WEBP"),  # converted by the gateway
        (QWEN, {"output_format": "jpeg", "output_compression": 40}, "png", "JPEG"),
        (SEEDREAM, {"output_format": "jpeg"}, None, "JPEG"),
    ],
)
def test_output_format_is_asked_of_fal_or_converted(
    upstream_client: OpenAI,
    fake: FakeFal,
    model: str,
    params: dict[str, Any],
    asked: str | None,
    got: str,
) -> None:
    result = edit(upstream_client, model=model, **params)
    assert submit(fake).summary.get("output_format") == asked
    assert imaging.decode_b64(result.data[0].b64_json).format == got


def test_a_json_edit_sends_every_reference(upstream_client: OpenAI, fake: FakeFal) -> None:
    urls = [imaging.data_url(PNG), imaging.data_url(imaging.jpeg(80, 60), "image/jpeg")]
    raw = upstream_client.post(
        "/images/edits",
        body={"model": SEEDREAM, "prompt": "merge", "images": [{"image_url": u} for u in urls]},
        cast_to=httpx.Response,
    )
    assert raw.status_code == 200
    assert [i["format"] for i in submit(fake).summary["images"]] == ["PNG", "JPEG"]


# -- failures ------------------------------------------------------------------------------------


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
        ("no_image", {}, 502, "upstream_malformed", None),
        ("moderation", {}, 400, "content_policy_violation", None),
        ("bad_key", {}, 502, "provider_auth_failed", None),
    ],
)
def test_each_fault_in_fals_shape(
    upstream_client: OpenAI,
    fake: FakeFal,
    fault: str,
    options: dict[str, Any],
    status: int,
    code: str,
    retry_after: str | None,
) -> None:
    queue(fake, fault, **options)
    with pytest.raises(openai.APIStatusError) as caught:
        upstream_client.images.edit(model=NANO, image=PNG, prompt="x")
    error = error_of(caught.value.response, status, origin="provider")
    assert error["code"] == code
    assert caught.value.response.headers.get("retry-after") == retry_after
    assert len(fake.of_kind("submit")) == 1  # the SDK's retries are off; the gateway's too
    assert KEY not in error["message"] and KEY.split(":")[1] not in error["message"]


def test_unavailable_carries_fals_error_type(upstream_client: OpenAI, fake: FakeFal) -> None:
    queue(fake, "unavailable")
    error = refused(upstream_client, 502, NANO, origin="provider")
    assert "Runner scheduling failure" in error["message"]


def test_a_job_that_fails_is_a_502_with_fals_words(upstream_client: OpenAI, fake: FakeFal) -> None:
    queue(fake, "server_error", variant="job_fails")
    error = refused(upstream_client, 502, KONTEXT, origin="provider")
    assert error["code"] == "upstream_error"
    assert "CUDA out of memory" in error["message"]
    assert len(fake.of_kind("status")) == 3 and len(fake.of_kind("result")) == 1
    assert fake.of_kind("cancel") == [] and fake.of_kind("file") == []


@pytest.mark.parametrize(
    ("variant", "words"),
    [
        (None, "flagged by a content checker"),  # the job ends with content_policy_violation
        ("nsfw", "has_nsfw_concepts"),  # the output flags its image
        ("submit", "flagged by a content checker"),  # refused on submit
    ],
)
def test_moderation_is_a_content_policy_violation(
    upstream_client: OpenAI, fake: FakeFal, variant: str | None, words: str
) -> None:
    queue(fake, "moderation", variant=variant)
    error = refused(upstream_client, 400, SEEDREAM, origin="provider")
    assert error["code"] == "content_policy_violation"
    assert words in error["message"] and error["message"].startswith("fal refused")
    assert fake.of_kind("file") == []  # a flagged image is never fetched nor answered


def test_a_poll_that_fails_once_is_asked_again(upstream_client: OpenAI, fake: FakeFal) -> None:
    queue(fake, "server_error", variant="poll")
    result = edit(upstream_client, model=QWEN)
    assert len(result.data) == 1
    assert len(fake.of_kind("status")) == 4  # one 500, then the three the job takes
    assert fake.of_kind("cancel") == []


def test_a_job_that_never_settles_is_cancelled_at_the_deadline(
    upstream_client: OpenAI, fake: FakeFal
) -> None:
    queue(fake, "timeout", variant="never_settles")
    started = time.monotonic()
    error = refused(upstream_client, 504, KONTEXT, origin="provider")
    took = time.monotonic() - started
    assert error["code"] == "upstream_timeout" and "cancelled" in error["message"]
    assert FAL_POLL_TIMEOUT_SECONDS <= took < FAL_POLL_TIMEOUT_SECONDS + 3
    (cancel,) = fake.of_kind("cancel")
    job = submit(fake).summary["request_id"]
    assert (cancel.method, cancel.path) == ("PUT", f"/fal-ai/flux-pro/requests/{job}/cancel")
    polls = len(fake.of_kind("status"))
    time.sleep(0.3)
    assert len(fake.of_kind("status")) == polls
    assert fake.of_kind("result") == []


def test_a_client_that_goes_away_mid_poll_cancels_the_job(
    upstream_gateway: Gateway, fake: FakeFal
) -> None:
    queue(fake, "timeout", variant="never_settles")
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            upstream_gateway.base_url + "/v1/images/edits",
            data={"model": NANO, "prompt": "x"},
            files={"image": ("a.png", PNG, "image/png")},
            headers={"x-request-id": "req_fal_gone"},
            timeout=httpx.Timeout(30, read=0.6),  # then the client closes the connection
        )
    wait_for(lambda: fake.of_kind("cancel"), timeout=FAL_POLL_TIMEOUT_SECONDS - 0.7)
    # Cancelled because the client went, well before the poll deadline would have.
    job = submit(fake).summary["request_id"]
    (cancel,) = fake.of_kind("cancel")
    assert cancel.path == f"/fal-ai/nano-banana/requests/{job}/cancel"
    polls = len(fake.of_kind("status"))
    assert polls >= 1
    time.sleep(0.5)
    assert len(fake.of_kind("status")) == polls  # nothing more is polled
    assert fake.of_kind("result") == []
    (line,) = upstream_gateway.log_lines(
        lambda line: line.get("request_id") == "req_fal_gone" and line.get("msg") == "request"
    )
    assert line["status"] == 499


def test_a_client_that_goes_away_mid_submit_cancels_the_job_it_made(
    upstream_gateway: Gateway, fake: FakeFal
) -> None:
    queue(fake, "timeout", delay=1.2)  # fal takes its time to queue the job
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            upstream_gateway.base_url + "/v1/images/edits",
            data={"model": NANO, "prompt": "x"},
            files={"image": ("a.png", PNG, "image/png")},
            timeout=httpx.Timeout(30, read=0.4),
        )
    wait_for(lambda: fake.of_kind("cancel"), timeout=4)
    job = submit(fake).summary["request_id"]
    (cancel,) = fake.of_kind("cancel")
    assert cancel.path == f"/fal-ai/nano-banana/requests/{job}/cancel"
    assert fake.of_kind("status") == []  # never polled: nobody is waiting for it


def test_the_key_is_sent_to_fal_and_never_shown(
    upstream_client: OpenAI, upstream_gateway: Gateway, fake: FakeFal
) -> None:
    queue(fake, "bad_key")
    error = refused(upstream_client, 502, NANO, origin="provider")
    assert error["code"] == "provider_auth_failed" and "not about your API key" in error["message"]
    edit(upstream_client, model=NANO)  # and a good call after it, logged too
    assert all(call.summary.get("auth") != "refused" for call in fake.calls[1:])
    logs = upstream_gateway.logs()
    assert '"provider": "fal"' in logs or '"provider":"fal"' in logs
    for secret in (KEY, *KEY.split(":")):
        assert secret not in logs and secret not in error["message"]


# -- stream --------------------------------------------------------------------------------------


def test_a_stream_sends_one_completed_event_per_image(
    upstream_client: OpenAI, fake: FakeFal
) -> None:
    events = sdk.stream(upstream_client, model=NANO, image=PNG, prompt="x", n=2)
    assert [event.type for event in events] == ["image_edit.completed"] * 2
    assert events[0].usage.model_extra["cost"]["total_cost"] == pytest.approx(2 * 0.039)
    assert imaging.decode_b64(events[1].b64_json).size == (64, 48)


def test_a_stream_whose_job_fails_ends_with_an_error_event(
    upstream_client: OpenAI, fake: FakeFal
) -> None:
    queue(fake, "server_error", variant="job_fails")
    raw = upstream_client.images.with_raw_response.edit(
        model=QWEN, image=PNG, prompt="x", stream=True
    )
    events = sse.events(raw.http_response.read())
    assert events[-1].name == "error"
    assert events[-1].data["error"]["code"] == "upstream_error"


# -- the fake itself -----------------------------------------------------------------------------


def test_the_fake_answers_only_on_the_urls_it_issued(
    fakes: dict[str, RunningFake], fake: FakeFal
) -> None:
    base = fakes["fal"].base_url
    auth = {"Authorization": f"Key {KEY}"}
    body = {"prompt": "x", "image_urls": [imaging.data_url(PNG)]}
    handle = httpx.post(base + "/fal-ai/nano-banana/edit", json=body, headers=auth).json()
    job = handle["request_id"]
    assert handle["status_url"] == f"{base}/fal-ai/nano-banana/requests/{job}/status"
    rebuilt = f"{base}/fal-ai/nano-banana/edit/requests/{job}/status"
    assert httpx.get(rebuilt, headers=auth).status_code == 404
    unknown = f"{base}/fal-ai/nano-banana/requests/not-a-job/status"
    assert httpx.get(unknown, headers=auth).status_code == 404
    assert httpx.get(handle["status_url"]).status_code == 401
    assert httpx.get(handle["response_url"], headers=auth).status_code == 400  # not yet done
    first = httpx.get(handle["status_url"], headers=auth)
    assert (first.status_code, first.json()["status"]) == (202, "IN_QUEUE")
    cancel = httpx.put(handle["cancel_url"], headers=auth)
    assert (cancel.status_code, cancel.json()) == (202, {"status": "CANCELLATION_REQUESTED"})


DATA = imaging.data_url(PNG)
NOT_JPEG = imaging.data_url(PNG, "image/jpeg")  # PNG bytes said to be a JPEG
HTTPS = "https://example.com/a.png"
SMALL = {"width": 512, "height": 512}


@pytest.mark.parametrize(
    ("path", "body", "loc", "type_"),
    [
        (
            "fal-ai/nano-banana/edit",
            {"image_urls": [HTTPS]},
            ["image_urls", 0],
            "file_download_error",
        ),
        ("fal-ai/flux-pro/kontext", {"image_url": "@"}, ["image_url"], "file_download_error"),
        (
            "fal-ai/flux-pro/kontext",
            {"image_url": DATA, "safety_tolerance": 2},
            ["safety_tolerance"],
            "string_type",
        ),
        ("fal-ai/qwen-image-edit", {"image_url": NOT_JPEG}, ["image_url"], "image_load_error"),
        ("fal-ai/qwen-image-edit", {"image_urls": [DATA]}, ["image_urls"], "extra_forbidden"),
        (
            "fal-ai/bytedance/seedream/v4/edit",
            {"image_urls": [DATA], "image_size": SMALL},
            ["image_size"],
            "value_error",
        ),
    ],
)
def test_the_fake_refuses_what_fal_refuses_in_fals_shape(
    fakes: dict[str, RunningFake],
    fake: FakeFal,
    path: str,
    body: dict[str, Any],
    loc: list[Any],
    type_: str,
) -> None:
    response = httpx.post(
        f"{fakes['fal'].base_url}/{path}",
        json={"prompt": "x", **body},
        headers={"Authorization": f"Key {KEY}"},
    )
    assert response.status_code == 422
    (detail,) = response.json()["detail"]
    assert (detail["loc"], detail["type"]) == (["body", *loc], type_)
