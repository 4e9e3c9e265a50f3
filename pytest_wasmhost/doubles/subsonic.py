"""The test double behind ``subsonicapi``: an in-memory Navidrome Subsonic router and user store.

:class:`FakeSubsonic` implements the service's :class:`~pytest_wasmhost.host.subsonicapi.SubsonicBackend`;
``HostOptions(subsonicapi=SubsonicOptions(backend=FakeSubsonic))`` gives every scope a fresh one (what the
fixtures, the conformance suite and the CLI do), and ``wasm_subsonic`` is the test's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from pytest_wasmhost.host.subsonicapi import (
    FAKE_SERVER_VERSION,
    NOT_FOUND_BODY,
    RecordingBackend,
    RoutedRequest,
    SubsonicUser,
    UserStoreError,
    nocase_fold,
    subsonic_failed,
    subsonic_json,
    subsonic_ok,
)

__all__ = ["CannedReply", "FakeSubsonic", "ReplyBody", "SubsonicReply"]


@dataclass(frozen=True, slots=True)
class SubsonicReply:
    """A canned answer with an explicit status (e.g. Navidrome's 501 text for unimplemented endpoints)."""

    status: int
    body: str


ReplyBody: TypeAlias = "str | Mapping[str, Any] | SubsonicReply"
CannedReply: TypeAlias = "ReplyBody | Callable[[RoutedRequest], ReplyBody]"


class FakeSubsonic(RecordingBackend):
    """An in-memory Navidrome Subsonic router and user store.

    Like Navidrome it routes ``<name>`` and ``<name>.view`` alike, answers an unknown endpoint with
    chi's ``404 page not found`` text, and answers a user it cannot find with Subsonic error 40. Users
    are found ASCII-case-insensitively (Navidrome's ``COLLATE NOCASE``). Canned answers per endpoint
    are a body text, a JSON-able document (see :func:`subsonic_ok`), a :class:`SubsonicReply`, or a
    callable taking the :class:`RoutedRequest` and returning one of those. ``ping`` and ``getLicense``
    answer as Navidrome does unless overridden. Set ``store_error`` to make the user store fail.
    """

    def __init__(
        self,
        *,
        users: Mapping[str, bool] | None = None,
        responses: Mapping[str, CannedReply] | None = None,
        server_version: str = FAKE_SERVER_VERSION,
    ) -> None:
        """``users`` maps username -> is_admin; default ``admin`` (admin) and ``user``, as in the original."""
        super().__init__()
        self.server_version = server_version
        self.store_error: str | None = None
        self._users: dict[str, SubsonicUser] = {}
        for username, is_admin in (users if users is not None else {"admin": True, "user": False}).items():
            self.add_user(username, admin=is_admin)
        self._responses: dict[str, CannedReply] = {
            "ping": subsonic_ok(server_version=server_version),
            "getLicense": subsonic_ok(server_version=server_version, license={"valid": True}),
        }
        self._responses.update(responses or {})
        self.lookups: list[str] = []  # every find_user() name, in order

    def add_user(self, username: str, *, admin: bool = False) -> None:
        self._users[nocase_fold(username)] = SubsonicUser(username, admin)

    def respond(self, endpoint: str, reply: CannedReply) -> None:
        self._responses[endpoint] = reply

    def find_user(self, username: str) -> SubsonicUser | None:
        with self._lock:
            self.lookups.append(username)
        if self.store_error is not None:
            raise UserStoreError(self.store_error)
        return self._users.get(nocase_fold(username))

    def handle(self, endpoint: str, query: list[tuple[str, str]], username: str) -> tuple[int, str]:
        request = self._record(endpoint, query, username)
        reply = self._responses.get(endpoint)
        if reply is None and endpoint.endswith(".view"):
            reply = self._responses.get(endpoint[: -len(".view")])
        if reply is None:
            return 404, NOT_FOUND_BODY  # routing comes before authentication in Navidrome
        if self.store_error is not None or nocase_fold(username) not in self._users:
            return 200, subsonic_json(subsonic_failed(40, server_version=self.server_version))
        body = reply(request) if callable(reply) else reply
        if isinstance(body, SubsonicReply):
            return body.status, body.body
        if isinstance(body, str):
            return 200, body
        return 200, subsonic_json(body)
