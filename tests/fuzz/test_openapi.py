"""schemathesis against the gateway's own /openapi.json, in-process over ASGI.

It generates requests from the documented schemas (valid ones, and with negative data, ones that
break them) and checks that none gets a 5xx, that every status and content type is one the
document declares, and that every body matches its documented schema (the error envelope
included). The app runs with image_url fetching off, so no generated URL is ever looked up.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, event, settings
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from imagegate.app import create_app
from imagegate.config import Settings
from tests import imaging
from tests.imaging import data_url

app = create_app(Settings(_env_file=None, fetch_enabled=False))  # type: ignore[call-arg]
schema = schemathesis.openapi.from_asgi("/openapi.json", app)
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@schema.parametrize()
@settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_matches_its_openapi_document(case: Case) -> None:
    response = case.call_and_validate(checks=CHECKS)
    event(f"{case.method} {response.status_code}")
    assert response.status_code != 422
    assert response.headers.get("x-request-id")


def test_a_real_edit_matches_the_documented_success() -> None:
    """Generated cases rarely carry a readable prompt and a real image; these two do, so the
    documented 200 (JSON and event stream) is checked against real answers too."""
    operation = schema["/v1/images/edits"]["POST"]
    image = data_url(imaging.png(32, 24))
    for stream in (False, True):
        body = {"model": "local/pillow", "prompt": "invert", "images": [{"image_url": image}]}
        case = operation.Case(body={**body, "stream": stream}, media_type="application/json")
        response = case.call_and_validate(checks=CHECKS)
        assert response.status_code == 200
        kind = response.headers["content-type"][0]
        assert kind.startswith("text/event-stream" if stream else "application/json")
