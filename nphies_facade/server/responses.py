"""FHIR JSON responses: orjson bodies, version headers, and the Prefer: return=... choices."""

from datetime import datetime
from email.utils import format_datetime

from starlette.responses import Response

from .. import exact_json
from ..resources.errors import Issue, operation_outcome
from ..resources.store import StoredVersion

FHIR_JSON = "application/fhir+json; charset=utf-8"


class FhirResponse(Response):
    media_type = FHIR_JSON

    def render(self, content: object) -> bytes:
        if content is None:
            return b""
        if isinstance(content, bytes):
            return content
        return exact_json.dumps(content)


def etag(version: int) -> str:
    return f'W/"{version}"'


def http_date(instant: str) -> str:
    return format_datetime(datetime.fromisoformat(instant), usegmt=True)


def version_headers(stored: StoredVersion) -> dict[str, str]:
    return {"ETag": etag(stored.version), "Last-Modified": http_date(stored.last_updated)}


def prefer_return(prefer: str | None) -> str:
    for part in (prefer or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "return":
            return value.strip().strip('"').lower()
    return "representation"


def written_response(
    stored: StoredVersion, status: int, prefer: str | None, location: str | None
) -> Response:
    headers = version_headers(stored)
    if location:
        headers["Location"] = location
        headers["Content-Location"] = location
    choice = prefer_return(prefer)
    if choice == "minimal":
        return FhirResponse(None, status, headers)
    if choice == "operationoutcome":
        issue = Issue(
            "informational",
            f"{stored.resource_type}/{stored.id} is at version {stored.version}",
            severity="information",
        )
        return FhirResponse(operation_outcome([issue]), status, headers)
    return FhirResponse(stored.body, status, headers)
