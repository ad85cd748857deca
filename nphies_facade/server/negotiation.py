"""Content negotiation and request bodies: JSON only, within the configured size."""

from starlette.requests import Request

from ..resources.errors import error

JSON_TYPES = frozenset({"application/fhir+json", "application/json", "application/json+fhir"})
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
# Plain JSON on PATCH is a merge patch when it is an object (what fhirpy sends), JSON Patch when an array.
PATCH_TYPES = JSON_TYPES | {JSON_PATCH, MERGE_PATCH}
ACCEPTABLE = JSON_TYPES | {"*/*", "application/*", "json", "fhir+json"}
FORMAT_VALUES = JSON_TYPES | {"json", "fhir+json"}


def media_type(header: str) -> str:
    return header.split(";", 1)[0].strip().lower()


def check_accept(request: Request) -> None:
    query = request.scope.get("query_string", b"")
    fmt = request.query_params.get("_format") if b"format" in query or b"%" in query else None
    if fmt is not None and media_type(fmt) not in FORMAT_VALUES:
        raise error(406, "not-supported", f"_format={fmt} is not supported; this server speaks FHIR JSON")
    accept = request.headers.get("accept")
    if not accept or fmt is not None:
        return
    if not any(media_type(part) in ACCEPTABLE for part in accept.split(",")):
        raise error(
            406, "not-supported", f"Cannot answer in {accept}; this server speaks application/fhir+json"
        )


def check_content_type(request: Request, allowed: frozenset[str] = JSON_TYPES) -> None:
    content_type = request.headers.get("content-type")
    if content_type is None or media_type(content_type) not in allowed:
        raise error(
            415,
            "not-supported",
            f"Content-Type {content_type or '(none)'} is not supported here; send {' or '.join(sorted(allowed))}",
        )


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise error(413, "too-costly", f"The body is larger than the limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise error(413, "too-costly", f"The body is larger than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
