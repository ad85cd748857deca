"""CORS for browser apps; a refused preflight answers an OperationOutcome like every other error."""

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from ..resources.errors import Issue, operation_outcome
from .responses import FhirResponse

PLAIN_HEADERS = frozenset({"content-type", "content-length"})


class FhirCORSMiddleware(CORSMiddleware):
    def preflight_response(self, request_headers: Headers) -> Response:
        answer = super().preflight_response(request_headers)
        if answer.status_code < 400:
            return answer
        # Starlette words the refusal "Disallowed CORS origin, method" (what it refused, nothing sent).
        reason = bytes(answer.body).decode()
        headers = {k: v for k, v in answer.headers.items() if k.lower() not in PLAIN_HEADERS}
        issue = Issue("security", f"{reason}: this server does not allow that cross-origin request")
        return FhirResponse(operation_outcome([issue]), answer.status_code, headers)
