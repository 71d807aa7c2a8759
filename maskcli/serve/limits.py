"""What keeps the server up under hostile or heavy use: a bearer token, a cap on request bodies, and one JSON line
for every refusal.

Both guards are plain ASGI middleware, so they act before a byte of a refused request is parsed: a body whose
declared length is over the cap is answered 413 at once; a body sent in chunks is counted as it arrives and
stopped at the cap.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class HTTPProblem(Exception):
    """A refusal with its status, its one-line message and any extra headers (``Retry-After``)."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None,
                 option: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.option = option


class BodyTooLarge(HTTPProblem):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over the limit of {limit:,} bytes")


def problem_body(problem: HTTPProblem) -> bytes:
    """The JSON line of a refusal: ``{"error": ..., "status": ...}`` (and the option at fault, if any)."""
    body: dict[str, Any] = {"error": problem.message, "status": problem.status}
    if problem.option is not None:
        body["option"] = problem.option
    return json.dumps(body, ensure_ascii=False).encode() + b"\n"


async def send_problem(send: Send, problem: HTTPProblem) -> None:
    body = problem_body(problem)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(key.lower().encode(), value.encode()) for key, value in problem.headers.items()]
    await send({"type": "http.response.start", "status": problem.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes (413): by their declared length, or as they stream in."""

    def __init__(self, app: App, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await send_problem(send, BodyTooLarge(self.limit))
            return
        seen = 0

        async def counted() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)  # the endpoint answers it (see app.problem_of)
            return message

        await self.app(scope, counted, send)


class BearerToken:
    """Require ``Authorization: Bearer TOKEN`` on every path but ``open_paths`` (the page and the health check,
    which a browser or a load balancer fetch without one); compared in constant time."""

    def __init__(self, app: App, token: str, open_paths: Iterable[str] = ("/", "/health")) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()
        self.open_paths = frozenset(open_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths or scope.get("method") == "OPTIONS":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"authorization", b"")
        if not hmac.compare_digest(given, self.expected):
            await send_problem(send, HTTPProblem(401, "a bearer token is required (Authorization: Bearer TOKEN)",
                                                 headers={"WWW-Authenticate": "Bearer"}))
            return
        await self.app(scope, receive, send)


__all__ = ["BearerToken", "BodyLimit", "BodyTooLarge", "HTTPProblem", "problem_body", "send_problem"]
