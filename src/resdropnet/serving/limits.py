"""Guards that keep one client from exhausting the server: body size and time, bytes and pixels in flight."""

import json
from collections.abc import Callable

import anyio


class RequestRefused(Exception):
    """Raised inside the app's receive() once the guard has decided the answer; the guard sends it."""


class RequestGuard:
    """ASGI middleware: a request body over its route's size limit gets 413, one that is not fully received
    within body_timeout_s gets 408, and one that would take the bytes held by all bodies being received over
    max_inflight_bytes gets 503. Bodies are counted as they stream in (chunked ones too), and reading stops at
    the limit. The app never answers such a request itself: FastAPI would turn the interrupted read into a 400.
    """

    def __init__(self, app, limit_for: Callable[[str], int], body_timeout_s: float, max_inflight_bytes: int):
        self.app = app
        self.limit_for = limit_for
        self.body_timeout_s = body_timeout_s
        self.max_inflight_bytes = max_inflight_bytes
        self.inflight_bytes = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.limit_for(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return await respond(send, 413, f"request body of {int(declared):,} bytes is over the limit of {limit:,}")
        deadline = anyio.current_time() + self.body_timeout_s
        received, refusal, started = 0, None, False

        async def guarded_receive():
            nonlocal received, refusal
            if refusal is not None:
                raise RequestRefused
            try:
                with anyio.fail_after(max(0.0, deadline - anyio.current_time())):
                    message = await receive()
            except TimeoutError:
                refusal = (408, f"request body not received within {self.body_timeout_s:g} s")
                raise RequestRefused from None
            if message["type"] == "http.request":
                size = len(message.get("body", b""))
                received += size
                self.inflight_bytes += size
                if received > limit:
                    refusal = (413, f"request body of {received:,}+ bytes is over the limit of {limit:,}")
                elif self.inflight_bytes > self.max_inflight_bytes:
                    refusal = (503, f"server busy: request bodies in flight are over {self.max_inflight_bytes:,} "
                                    "bytes; retry later")
                if refusal is not None:
                    raise RequestRefused
            return message

        async def guarded_send(message):
            nonlocal started
            if refusal is not None:
                return  # the app's answer to a body it could not read is replaced by the guard's
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, guarded_receive, guarded_send)
        except Exception:  # RequestRefused, or whatever the app made of it (Starlette may wrap it in a group)
            if refusal is None:
                raise
        finally:
            self.inflight_bytes -= received
        if refusal is not None and not started:
            await respond(send, *refusal, close=True)


async def respond(send, status: int, detail: str, close: bool = False) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:  # the rest of the body is never read: the connection cannot carry another request
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class PixelBudget:
    """Decoded pixels that the requests in flight may hold at once: a request waits until its pixels fit."""

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0
        self.changed = anyio.Condition()

    async def acquire(self, pixels: int) -> None:
        async with self.changed:
            while self.used + pixels > self.limit:
                await self.changed.wait()
            self.used += pixels

    async def release(self, pixels: int) -> None:
        async with self.changed:
            self.used -= pixels
            self.changed.notify_all()
