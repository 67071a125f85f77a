"""``Connection: close`` on every response while the replica drains.

Between SIGTERM and closing its listener the replica still serves, but a keep-alive connection
it closes later, when it stops, could race a request the balancer is just sending on it; a
request lost that way is not retried (an edit is not idempotent). Closing each connection after
its response, from the moment draining starts, leaves the balancer no idle connection here.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imagegate.drain import Drain


class CloseWhileDraining:
    def __init__(self, app: ASGIApp, drain: Drain) -> None:
        self.app = app
        self.drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start" and self.drain.draining:
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"connection"]
                message = {**message, "headers": [*kept, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, send_closing)
