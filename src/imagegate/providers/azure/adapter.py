"""Azure OpenAI behind the provider protocol: OpenAI's adapter with Azure's URL, credential
header, ``model`` field and error spellings.

``POST {endpoint}/openai/deployments/{deployment}/images/edits?api-version=...`` with the key
in an ``api-key`` header; the body and the answer are OpenAI's. The ``model`` field carries the
deployment name, as Azure's own SDK client sends it.
"""

from __future__ import annotations

from urllib.parse import quote

import httpx

from imagegate.providers.base import Deployment, EditJob
from imagegate.providers.formdata import FormBody
from imagegate.providers.openai import errors
from imagegate.providers.openai.adapter import OpenAIProvider
from imagegate.providers.openai.convert import EditForm


class AzureProvider(OpenAIProvider):
    name = "azure"

    def __init__(self) -> None:
        super().__init__(errors.read_azure_error)

    def model_field(self, job: EditJob, deployment: Deployment) -> str:
        return deployment.options["deployment"]

    def build_request(
        self, deployment: Deployment, form: EditForm, body: FormBody, request_id: str
    ) -> httpx.Request:
        name = quote(deployment.options["deployment"], safe="")
        return deployment.http().build_request(
            "POST",
            f"openai/deployments/{name}/images/edits",
            params={"api-version": deployment.options["api_version"]},
            content=body,
            headers={**_headers(deployment, request_id), **body.headers},
        )


def _headers(deployment: Deployment, request_id: str) -> dict[str, str]:
    headers = {"api-key": deployment.secret()}
    if request_id:  # Azure's own tracing header: it echoes it and logs it with the call
        headers["x-ms-client-request-id"] = request_id
    return headers
