"""Property: no request, however built, gets a 5xx; every refusal is the envelope.

Bodies come from ``strategies``: JSON documents and multipart forms over every request field
(good values, wrong types, out of range, huge, unicode edge cases), broken framing, odd headers.
They run in-process against the ASGI app (``inprocess.py``); the hostile corpus replays the
interesting ones against a real server. Examples are bounded so the suite stays quick.
"""

from __future__ import annotations

from urllib.parse import quote

from httpx import Response
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.fuzz import strategies as s
from tests.fuzz.checks import check_answer
from tests.fuzz.inprocess import InProcessGateway

FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,  # CI starts clean; a failure prints the example to reproduce it
)


def _answered(gateway: InProcessGateway, response: Response, context: str) -> None:
    error = check_answer(response, context)
    event(f"{response.status_code} {error['code'] if error else 'ok'}")


def _context(gateway: InProcessGateway, body: bytes, content_type: str) -> str:
    return f"content-type={content_type!r} body={body[:600]!r}\n{gateway.last_trace()}"


@FUZZ
@given(doc=s.json_documents())
def test_json_bodies_never_500(app_gateway: InProcessGateway, doc: str) -> None:
    body = doc.encode("utf-8", "surrogatepass")
    response = app_gateway.post_edit(body, "application/json")
    _answered(app_gateway, response, _context(app_gateway, body, "application/json"))


@FUZZ
@given(request=s.multipart_requests())
def test_multipart_bodies_never_500(
    app_gateway: InProcessGateway, request: tuple[bytes, str]
) -> None:
    body, content_type = request
    response = app_gateway.post_edit(body, content_type)
    _answered(app_gateway, response, _context(app_gateway, body, content_type))


CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/json; charset=latin-1",
        "application/merge-patch+json",
        "multipart/form-data; boundary=x",
        "multipart/mixed; boundary=x",
        "application/x-www-form-urlencoded",
        "text/plain",
        "image/png",
        "",
        "application/json\x00",
        "*/*",
    ]
) | st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=60)


@settings(FUZZ, max_examples=150)
@given(
    body=st.binary(max_size=300)
    | st.sampled_from([b"[]", b"null", b"1", b'"x"', b"{}", b"{" * 5000]),
    content_type=CONTENT_TYPES,
    length=st.none() | st.sampled_from(["0", "-1", "abc", "²", "9" * 30, "9" * 5000, " 12 "]),
    auth=st.none()
    | st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=40),
    request_id=st.none()
    | st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=200),
)
def test_any_bytes_and_headers_never_500(
    app_gateway: InProcessGateway,
    body: bytes,
    content_type: str,
    length: str | None,
    auth: str | None,
    request_id: str | None,
) -> None:
    headers = {"content-type": content_type}
    if length is not None:
        headers["content-length"] = length
    if auth is not None:
        headers["authorization"] = auth
    if request_id is not None:
        headers["x-request-id"] = request_id
    response = app_gateway.request("POST", "/v1/images/edits", content=body, headers=headers)
    _answered(app_gateway, response, _context(app_gateway, body, content_type))


@settings(FUZZ, max_examples=100)
@given(
    method=st.sampled_from(["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "POST"]),
    path=st.sampled_from(["/v1/images/edits", "/v1/models", "/v1/models/", "/v1/nothing", "/"])
    | st.text(max_size=40).map(lambda t: "/v1/models/" + quote(t.encode("utf-8", "surrogatepass"))),
)
def test_any_method_and_path_never_500(
    app_gateway: InProcessGateway, method: str, path: str
) -> None:
    response = app_gateway.request(method, path)
    if method == "HEAD":
        assert response.status_code < 500 and response.headers.get("x-request-id")
        return
    if path.startswith("/openapi") or path in ("/docs", "/redoc"):
        return
    check_answer(response, f"{method} {path!r}\n{app_gateway.last_trace()}")


COMBOS = settings(FUZZ, max_examples=150)


@COMBOS
@given(doc=s.json_documents(rate=0), request=s.multipart_requests(rate=0), as_json=st.booleans())
def test_combinations_of_good_values_never_500(
    app_gateway: InProcessGateway, doc: str, request: tuple[bytes, str], as_json: bool
) -> None:
    """Every field well-formed, in any combination: what is left to refuse is the catalog's and
    the engine's (sizes a model cannot honour, conflicting fields, a mask on several images),
    and each of those must be a 400 too."""
    body, content_type = (doc.encode(), "application/json") if as_json else request
    response = app_gateway.post_edit(body, content_type)
    _answered(app_gateway, response, _context(app_gateway, body, content_type))
