"""A strict fake of Azure OpenAI's image edits: ``POST /openai/deployments/{deployment}/
images/edits?api-version=...`` with an ``api-key`` header, OpenAI's form and answers, and
Azure's own error spellings (``{"error": {"code", "message"}}``, the content filter's
``content_filter`` with ``innererror``, ``DeploymentNotFound``)."""

from __future__ import annotations

import re
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from imagegate.testing.fake import Fault, json_response
from imagegate.testing.openai import OpenAIFake
from imagegate.testing.openai_form import invalid


class AzureFake(OpenAIFake):
    """``POST /openai/deployments/{deployment}/images/edits?api-version=...`` as an Azure
    OpenAI resource answers it, with ``api-key`` auth and Azure's error spellings."""

    name = "azure"
    API_VERSION = re.compile(r"^(\d{4}-\d{2}-\d{2}(-preview)?|preview|latest)$")

    def __init__(self, api_key: str, deployments: dict[str, str] | None = None) -> None:
        # deployment name -> the OpenAI model it runs
        self.deployments = deployments or {
            "gpt-image-1-prod": "gpt-image-1",
            "gpt-image-15": "gpt-image-1.5",
            "image-mini": "gpt-image-1-mini",
        }
        super().__init__(api_key)

    def routes(self) -> list[Route]:
        return [
            Route("/__fake__/files/{name}", self._file, methods=["GET"]),
            Route(
                "/openai/deployments/{deployment}/images/edits", self._deployment, methods=["POST"]
            ),
        ]

    async def _deployment(self, request: Request) -> Response:
        name = request.path_params["deployment"]
        version = request.query_params.get("api-version", "")
        route = {"deployment": name, "api_version": version}
        if not version or not self.API_VERSION.match(version):
            self.record(request, **route, status=404)
            return _azure_error(404, "404", "Resource not found")
        if name not in self.deployments:
            self.record(request, **route, status=404)
            return _azure_error(
                404,
                "DeploymentNotFound",
                "The API deployment for this resource does not exist. If you created the "
                "deployment within the last 5 minutes, please wait a moment and try again.",
            )
        return await self.handle(request, route)

    def authorized(self, request: Request) -> bool:
        return request.headers.get("api-key") == self.api_key

    def auth_name(self, request: Request) -> str | None:
        if "api-key" in request.headers:
            return "api-key"
        return super().auth_name(request)

    def refused_key(self, request: Request) -> Response:
        return _azure_error(
            401,
            "401",
            "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
            "provide a valid key for an active subscription and use a correct regional API "
            "endpoint for your resource.",
        )

    def model_of(self, form: FormData, route: dict[str, str]) -> str:
        deployment = route["deployment"]
        model = self.deployments[deployment]
        sent = form.get("model")
        if sent is not None and sent not in (deployment, model):
            raise invalid(
                f"The model '{sent}' does not match deployment '{deployment}' ({model}).",
                param="model",
            )
        return model

    def fault_response(self, fault: Fault) -> Response:
        headers = {"retry-after": str(fault.retry_after)} if fault.retry_after else None
        if fault.fault == "rate_limit":
            return _azure_error(
                429,
                "429",
                "Requests to the Images_Edit Operation under Azure OpenAI API version "
                "2025-04-01-preview have exceeded call rate limit of your current OpenAI S0 "
                "pricing tier. Please retry after 7 seconds.",
                headers=headers,
            )
        if fault.fault == "unavailable":
            return _azure_error(
                503,
                "ServiceUnavailable",
                "The service is temporarily unable to process your request.",
            )
        if fault.fault == "moderation":
            return self.moderation_response()
        if fault.fault == "bad_key":
            return _azure_error(401, "401", "Access denied due to invalid subscription key.")
        return _azure_error(
            500, "InternalServerError", "The server had an error processing your request."
        )

    def moderation_error(self) -> dict[str, Any]:
        return {
            "code": "content_filter",
            "message": "The response was filtered due to the prompt triggering Azure OpenAI's "
            "content management policy.",
            "status": 400,
            "innererror": {
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_result": {
                    "hate": {"filtered": False, "severity": "safe"},
                    "self_harm": {"filtered": False, "severity": "safe"},
                    "sexual": {"filtered": True, "severity": "medium"},
                    "violence": {"filtered": False, "severity": "safe"},
                },
            },
        }


# -- helpers ----------------------------------------------------------------------------------


def _azure_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    return json_response({"error": {"code": code, "message": message}}, status, headers)
