"""What wraps every request: bearer-token auth, the JSON content type, the body size limit (413), and
Prometheus metrics (request counts by route and status, latency histograms)."""

from __future__ import annotations

import hmac
import json
import time

from fastapi import FastAPI, Request

from .errors import error_response


class Metrics:
    """The app's own Prometheus registry (one per process: each ``--workers`` process counts its own)."""

    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter(
            "freqindex_http_requests",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "freqindex_http_request_seconds",
            "Request latency by route",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )

    def text(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)

    def observe(self, request: Request, resp, t0: float):
        route = request.scope.get("route")
        label = getattr(route, "path", None) or "unmatched"
        self.requests.labels(request.method, label, str(resp.status_code)).inc()
        self.latency.labels(label).observe(time.perf_counter() - t0)
        return resp


def install_guard(app: FastAPI, metrics: Metrics, token: str | None) -> None:
    """Auth (every path but /healthz when a token is set; constant-time comparison), JSON bodies only for
    POST, no stack trace on the wire, and every response counted."""

    @app.middleware("http")
    async def guard(request: Request, call_next):
        t = time.perf_counter()
        if token is not None and request.url.path != "/healthz":
            scheme, _, value = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
                resp = error_response(401, "unauthorized", "missing or wrong bearer token")
                resp.headers["WWW-Authenticate"] = "Bearer"
                return metrics.observe(request, resp, t)
        if request.method == "POST":
            ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype != "application/json":
                message = "send the body as JSON with Content-Type: application/json"
                return metrics.observe(request, error_response(415, "unsupported_media_type", message), t)
        try:
            resp = await call_next(request)
        except Exception:  # never a stack trace on the wire
            resp = error_response(500, "internal", "internal error")
        return metrics.observe(request, resp, t)


class BodyLimit:
    """Pure ASGI middleware: refuse bodies over ``limit`` bytes with 413, by Content-Length or, for chunked
    bodies, by reading at most ``limit + 1`` bytes (then handed on unchanged)."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def _reply(self, send, status: int, code: str, message: str) -> None:
        body = json.dumps({"error": code, "message": message}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        cl = headers.get(b"content-length")
        too_large = f"request body over {self.limit} bytes"
        if cl is not None:
            if not cl.isdigit():
                return await self._reply(send, 400, "bad_request", "invalid Content-Length")
            if int(cl) > self.limit:
                return await self._reply(send, 413, "body_too_large", too_large)
            return await self.app(scope, receive, send)
        if scope.get("method") not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        chunks, size = [], 0
        while True:
            msg = await receive()
            if msg["type"] != "http.request":
                return
            chunks.append(msg.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                return await self._reply(send, 413, "body_too_large", too_large)
            if not msg.get("more_body"):
                break
        body, sent = b"".join(chunks), False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)
