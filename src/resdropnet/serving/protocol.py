"""uvicorn's httptools protocol with a deadline for request headers, against stalled ("slow-loris") clients.

uvicorn closes a connection that stays idle after a response (its keep-alive timeout), but not one that was
opened and never sent, or sends its headers a byte at a time. Here every request's headers must be complete
within RESDROPNET_HEADER_TIMEOUT_S seconds of the connection opening or of the previous response; otherwise
the client gets 408 and the connection is closed. The body's deadline is the app's (serving.limits).
"""

import os

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

DEFAULT_HEADER_TIMEOUT_S = 10.0
_TIMEOUT_BODY = b"request headers not received in time"
REQUEST_TIMEOUT_RESPONSE = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\n"
                            b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_TIMEOUT_BODY), _TIMEOUT_BODY))

class HeaderDeadlineProtocol(HttpToolsProtocol):
    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        # Read per connection, as `resdropnet serve` sets it for its worker processes (serving.app.Settings).
        self.header_timeout_s = float(os.environ.get("RESDROPNET_HEADER_TIMEOUT_S", DEFAULT_HEADER_TIMEOUT_S))
        self.header_deadline = None
        self._arm_header_deadline()

    def on_headers_complete(self) -> None:
        self._disarm_header_deadline()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_deadline()

    def connection_lost(self, exc) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self.header_deadline = self.loop.call_later(self.header_timeout_s, self._headers_too_late)

    def _disarm_header_deadline(self) -> None:
        if getattr(self, "header_deadline", None) is not None:
            self.header_deadline.cancel()
            self.header_deadline = None

    def _headers_too_late(self) -> None:
        self.header_deadline = None
        busy = self.cycle is not None and not self.cycle.response_complete  # a pipelined request is being answered
        if not busy and not self.transport.is_closing():
            self.transport.write(REQUEST_TIMEOUT_RESPONSE)
            self.transport.close()
