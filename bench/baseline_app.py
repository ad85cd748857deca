"""The baseline of bench/crud_mix.py: one bare route on the server's stack that answers a fixed Patient.

Two apps, both answering any method on any path with the same fixed FHIR JSON, after reading the request
body in full, so that the CRUD mix can be sent to them unchanged (201 to POST, 200 otherwise):

  app          raw ASGI (no framework), body orjson-encoded once at import: the ceiling of
               uvicorn + httptools + uvloop on this machine (the default baseline of bench/crud_mix.py)
  fastapi_app  one FastAPI catch-all route, orjson.dumps per request: adds the framework's routing cost
  fastapi_middleware_app  the same plus one @app.middleware("http") (Starlette's BaseHTTPMiddleware) that
               sets a request id header, as nphies_facade.server.app does: adds that middleware's cost

Served like `nphies-facade serve` serves the real app: uvicorn.run with an import string, N workers,
access_log=False, loop/http left at "auto" (uvloop and httptools when installed):

  .venv/bin/python bench/baseline_app.py --port 8099 --workers 2 [--kind raw|fastapi]
"""

import argparse
import sys
from pathlib import Path

import orjson

PATIENT = {
    "resourceType": "Patient",
    "id": "baseline",
    "meta": {"versionId": "1", "lastUpdated": "2025-01-01T00:00:00.000+00:00"},
    "identifier": [{
        "use": "official",
        "type": {"coding": [{"system": "http://nphies.sa/terminology/CodeSystem/patient-identifier-type",
                             "code": "NI", "display": "National ID"}]},
        "system": "http://nphies.sa/identifier/nationalid",
        "value": "1000000001",
    }],
    "active": True,
    "name": [{"use": "official", "text": "Mohammed Alharbi", "family": "Alharbi", "given": ["Mohammed"]}],
    "telecom": [{"system": "phone", "value": "+966500000001", "use": "mobile"}],
    "gender": "male",
    "birthDate": "1980-01-01",
    "address": [{"use": "home", "type": "physical", "line": ["1 King Fahd Road"], "city": "Riyadh",
                 "postalCode": "11000", "country": "SA"}],
    "maritalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus",
                                  "code": "M"}]},
}
BODY = orjson.dumps(PATIENT)
CONTENT_TYPE = b"application/fhir+json; charset=utf-8"
HEADERS = [
    (b"content-type", CONTENT_TYPE),
    (b"content-length", str(len(BODY)).encode()),
    (b"etag", b'W/"1"'),
]


async def app(scope, receive, send):
    """Raw ASGI: lifespan acknowledged, every HTTP request answered with the fixed Patient."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    status = 201 if scope["method"] == "POST" else 200
    await send({"type": "http.response.start", "status": status, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


def _fastapi_app(with_middleware: bool = False):
    import uuid

    from fastapi import FastAPI
    from starlette.requests import Request
    from starlette.responses import Response

    api = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @api.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def fixed(request: Request, path: str) -> Response:
        await request.body()
        return Response(orjson.dumps(PATIENT), 201 if request.method == "POST" else 200,
                        {"ETag": 'W/"1"'}, media_type=CONTENT_TYPE.decode())

    if with_middleware:
        @api.middleware("http")
        async def request_id(request: Request, call_next) -> Response:
            trace_id = request.headers.get("x-request-id") or uuid.uuid4().hex
            response = await call_next(request)
            response.headers["X-Request-Id"] = trace_id
            return response

    return api


def __getattr__(name: str):
    if name == "fastapi_app":
        return _fastapi_app()
    if name == "fastapi_middleware_app":
        return _fastapi_app(with_middleware=True)
    raise AttributeError(name)


APPS = {"raw": "baseline_app:app", "fastapi": "baseline_app:fastapi_app",
        "fastapi-middleware": "baseline_app:fastapi_middleware_app"}


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kind", choices=tuple(APPS), default="raw")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    uvicorn.run(
        APPS[args.kind],
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="info",
        access_log=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
