"""A rest-hook receiver in its own process (for volume tests, so it does not share the test's GIL).

`python -m tests.subscriptions.receiver_app PORT` serves: any POST/PUT is recorded and answered 200;
`GET /_received?since=N` returns the records from index N as JSON [[subscription, number, path], ...].
"""

import sys

import orjson
import uvicorn

records: list[tuple[str, int, str]] = []


async def app(scope: dict, receive, send) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    body = b""
    if scope["path"] == "/_received":
        since = int(
            dict(p.split("=") for p in scope["query_string"].decode().split("&") if p).get("since", 0)
        )
        body = orjson.dumps(records[since:])
    else:
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        if headers.get("x-nphies-event-type") == "event-notification":
            records.append(
                (headers["x-nphies-subscription"], int(headers["x-nphies-event-number"]), scope["path"])
            )
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


if __name__ == "__main__":
    uvicorn.run(
        app, host="127.0.0.1", port=int(sys.argv[1]), log_level="error", access_log=False, interface="asgi3"
    )
