"""The benchmark's rest-hook receiver, run as its own process by bench/subscriptions_latency.py.

Each notification PUT carries the written resource; the receiver notes (subscription, event number,
milliseconds from the version's meta.lastUpdated to arrival). `POST /job` is called by the benchmark's
workflow handler with the trigger's commit instant. `GET /_stats?since=N` returns what arrived since N.
"""

import sys
import time
from datetime import datetime

import orjson
import uvicorn

notes: list[tuple[str, str, int, float]] = []


def _since_ms(instant: str) -> float:
    return (time.time() - datetime.fromisoformat(instant).timestamp()) * 1000


async def _body(receive) -> bytes:
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    return body


async def app(scope: dict, receive, send) -> None:
    if scope["type"] != "http":
        return
    body = await _body(receive)
    headers = dict(scope["headers"])
    answer = b""
    if scope["path"] == "/_stats":
        since = int(scope["query_string"].decode().partition("=")[2] or 0)
        answer = orjson.dumps(notes[since:])
    elif scope["path"] == "/job":
        notes.append(("job", headers[b"x-bench-job"].decode(), 0, _since_ms(headers[b"x-bench-at"].decode())))
    elif headers.get(b"x-nphies-event-type") == b"event-notification" and body:
        at = orjson.loads(body)["meta"]["lastUpdated"]
        sub = headers[b"x-nphies-subscription"].decode()
        notes.append(("hook", sub, int(headers[b"x-nphies-event-number"]), _since_ms(at)))
    length = str(len(answer)).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", length)]})
    await send({"type": "http.response.body", "body": answer})


if __name__ == "__main__":
    uvicorn.run(
        app, host="127.0.0.1", port=int(sys.argv[1]), log_level="error", access_log=False, interface="asgi3"
    )
