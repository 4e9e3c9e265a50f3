"""The test double behind ``http``: a respx router, strict like pytest-httpx.

The http service sends every permitted request to the scope's ``HttpOptions.transport`` (an
``httpx.BaseTransport``); in tests that transport is a :class:`HttpMock`'s ``transport``: a respx router plus
two strictness rules (both on by default, both switchable with
``@pytest.mark.wasm_http(assert_all_mocked=False, assert_all_called=False)``):

* a request no route matches fails the test at teardown (the plugin meanwhile sees a transport error,
  as if the server were unreachable);
* a route that was never requested fails the test at teardown.

Failure messages list what the plugin requested and which routes were registered.
"""

from __future__ import annotations

import threading
from typing import Any

import httpx
import respx
import respx.models

__all__ = ["HttpMock", "canned_http"]


class HttpMock:
    """A respx router the plugin's permitted HTTP requests reach. Use it like ``respx``:
    ``wasm_http.get("https://api.example.com/x").respond(200, json={...})``."""

    def __init__(self, *, assert_all_mocked: bool = True, assert_all_called: bool = True) -> None:
        # assert_all_mocked=True inside the router is how it tells us "no route": we turn that into the
        # plugin-visible connect error and the teardown failure below.
        self.router = respx.Router(assert_all_mocked=True, assert_all_called=False)
        self.assert_all_mocked = assert_all_mocked
        self.assert_all_called = assert_all_called
        self.requests: list[httpx.Request] = []
        self.unmatched: list[httpx.Request] = []
        self._lock = threading.Lock()
        self.transport = httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        with self._lock:
            self.requests.append(request)
        try:
            return self.router.handler(request)
        except respx.models.AllMockedAssertionError:
            with self._lock:
                self.unmatched.append(request)
            # What an unreachable server looks like to the plugin; the test fails at teardown.
            raise httpx.ConnectError(
                f"no wasm_http route matches {request.method} {request.url}", request=request
            ) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.router, name)

    def problems(self) -> list[str]:
        """What strictness finds wrong, as messages (empty when all is well)."""
        found = []
        routes = "\n".join(f"  {route!r}" for route in self.router.routes) or "  (none)"
        if self.assert_all_mocked and self.unmatched:
            listed = "\n".join(f"  {r.method} {r.url}" for r in self.unmatched)
            found.append(
                f"the plugin made HTTP requests that no wasm_http route matches:\n{listed}\n"
                f"registered routes:\n{routes}\n"
                "(mock them with wasm_http.<method>(url).respond(...), or allow this with "
                "@pytest.mark.wasm_http(assert_all_mocked=False))"
            )
        if self.assert_all_called:
            uncalled = [route for route in self.router.routes if not route.called]
            if uncalled:
                listed = "\n".join(f"  {route!r}" for route in uncalled)
                made = "\n".join(f"  {r.method} {r.url}" for r in self.requests) or "  (none)"
                found.append(
                    f"wasm_http routes were never requested by the plugin:\n{listed}\n"
                    f"requests made:\n{made}\n"
                    "(remove them, or allow this with @pytest.mark.wasm_http(assert_all_called=False))"
                )
        return found


def canned_http(status: int = 503) -> httpx.MockTransport:
    """A transport answering every request with ``status`` (the conformance suite's outbound default)."""
    return httpx.MockTransport(
        lambda request: httpx.Response(status, text="canned reply from pytest-wasmhost")
    )
