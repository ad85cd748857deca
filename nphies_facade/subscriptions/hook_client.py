"""A keep-alive HTTP/1.1 client for one rest-hook endpoint: h11 over asyncio streams.

A delivery task sends one request at a time to one endpoint, so it needs neither a pool nor redirects
nor cookies; h11 (the HTTP/1.1 state machine httpx itself uses) costs a fifth of httpx's CPU per request
here, which is what lets one worker keep up with hundreds of notifications a second. A request on a
reused connection that the endpoint closed in the meantime is sent once more on a new connection.
"""

import asyncio
import contextlib
import ssl
from urllib.parse import urlsplit

import h11

MAX_RESPONSE_BYTES = 1 << 20
READ_CHUNK = 65536


class HookError(Exception):
    """The request got no HTTP response: `kind` says why without quoting the endpoint."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class _StaleConnection(Exception):
    """A reused connection was closed by the endpoint before it answered."""


class HookClient:
    def __init__(self, timeout: float, tls: ssl.SSLContext, user_agent: str = "nphies-facade") -> None:
        self._timeout = timeout
        self._tls = tls
        self._user_agent = user_agent
        self._origin: tuple[str, str, int] | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._h11: h11.Connection | None = None
        self._used = False

    async def request(self, method: str, url: str, headers: list[tuple[str, str]], body: bytes) -> int:
        """Sends the request and reads the whole response; returns its status code."""
        parts = urlsplit(url)
        origin = (parts.scheme, parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        all_headers = [("host", parts.netloc), ("user-agent", self._user_agent), *headers]
        all_headers.append(("content-length", str(len(body))))
        try:
            async with asyncio.timeout(self._timeout):
                try:
                    return await self._exchange(origin, method, target, all_headers, body)
                except _StaleConnection:
                    await self.aclose()
                    return await self._exchange(origin, method, target, all_headers, body)
        except TimeoutError:
            await self.aclose()
            raise HookError("timeout") from None
        except (OSError, h11.ProtocolError, _StaleConnection) as exc:
            await self.aclose()
            raise HookError(_kind(exc)) from None

    async def _exchange(
        self,
        origin: tuple[str, str, int],
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> int:
        reused = await self._connect(origin)
        conn, reader, writer = self._h11, self._reader, self._writer
        data = conn.send(h11.Request(method=method, target=target, headers=headers))
        data += conn.send(h11.Data(data=body)) if body else b""
        data += conn.send(h11.EndOfMessage())
        try:
            writer.write(data)
            await writer.drain()
            status = await self._response(conn, reader)
        except (ConnectionError, h11.RemoteProtocolError) as exc:
            if reused and conn.their_state is h11.SEND_RESPONSE:
                raise _StaleConnection() from exc
            raise
        self._used = True
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
        else:
            await self.aclose()
        return status

    async def _connect(self, origin: tuple[str, str, int]) -> bool:
        """Opens a connection unless a reusable one to the same origin is open; True when reusing."""
        if self._writer is not None and self._origin == origin and not self._reader.at_eof():
            return self._used
        await self.aclose()
        scheme, host, port = origin
        tls = self._tls if scheme == "https" else None
        self._reader, self._writer = await asyncio.open_connection(
            host, port, ssl=tls, server_hostname=host if tls else None
        )
        self._origin, self._h11, self._used = origin, h11.Connection(h11.CLIENT), False
        return False

    @staticmethod
    async def _response(conn: h11.Connection, reader: asyncio.StreamReader) -> int:
        status, received = 0, 0
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                chunk = await reader.read(READ_CHUNK)
                conn.receive_data(chunk)
                if not chunk and conn.their_state is h11.SEND_RESPONSE and not status:
                    raise ConnectionResetError("closed before the response")
                continue
            if isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                received += len(event.data)
                if received > MAX_RESPONSE_BYTES:
                    raise h11.RemoteProtocolError("response body too large")
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                return status

    async def aclose(self) -> None:
        writer, self._writer, self._reader, self._h11, self._origin = self._writer, None, None, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


def _kind(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ssl.SSLError):
        return "TLS error"
    if isinstance(exc, ConnectionError | _StaleConnection):
        return "connection closed"
    if isinstance(exc, h11.ProtocolError):
        return "HTTP protocol error"
    if isinstance(exc, OSError):
        return "unreachable"
    return type(exc).__name__
