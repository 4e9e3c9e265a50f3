"""Typed capability clients: ``plugin.metadata_agent.get_artist_mbid(name=...)`` and the rest.

Each method builds the request message, runs it on the plugin's :class:`~.runner.MethodRunner` (the
pool, the load checks, the ABI round trip) and maps the reply as the original's adapters did
(``check_err``, runtime.md §10, plus each adapter's own rules): a call goes down from here and comes
back as a response message or one of the sentinels.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from google.protobuf.message import Message

from pytest_wasmhost.abi.capabilities import CAPABILITIES, check_err
from pytest_wasmhost.abi.proto import api_pb2
from pytest_wasmhost.errors import NotFoundByPlugin, NotImplementedByPlugin, PluginError, hide_harness_frames
from pytest_wasmhost.runtime.runner import MethodRunner

# Errors of ours show the user's frames, not these (see errors.hide_harness_frames).
__tracebackhide__ = hide_harness_frames

log = logging.getLogger("pytest_wasmhost.runtime.clients")

M = TypeVar("M", bound=Message)


class _Client:
    capability: str = ""

    def __init__(self, runner: MethodRunner, now: Callable[[], float]) -> None:
        self._plugin_id = runner.plugin_id
        self._invoke = runner.invoke
        self._now = now
        self._methods = {m.name: m for m in CAPABILITIES[self.capability].methods}

    def _call(
        self, rpc: str, request: Message, response_type: type[M], *, honour_error_field: bool = True
    ) -> M:
        method = self._methods[rpc]
        reply = self._invoke(method, request)
        check_err(
            reply, plugin_id=self._plugin_id, export=method.export, honour_error_field=honour_error_field
        )
        assert isinstance(reply.response, response_type)  # guaranteed by Method.response
        return reply.response


class MetadataAgentClient(_Client):
    """MetadataAgent: returns the response message; not-found / not-implemented raise their sentinels."""

    capability = "MetadataAgent"

    def get_artist_mbid(self, *, id: str = "", name: str = "") -> api_pb2.ArtistMBIDResponse:
        return self._call(
            "GetArtistMBID", api_pb2.ArtistMBIDRequest(id=id, name=name), api_pb2.ArtistMBIDResponse
        )

    def get_artist_url(self, *, id: str = "", name: str = "", mbid: str = "") -> api_pb2.ArtistURLResponse:
        req = api_pb2.ArtistURLRequest(id=id, name=name, mbid=mbid)
        return self._call("GetArtistURL", req, api_pb2.ArtistURLResponse)

    def get_artist_biography(
        self,
        *,
        id: str = "",
        name: str = "",
        mbid: str = "",
    ) -> api_pb2.ArtistBiographyResponse:
        req = api_pb2.ArtistBiographyRequest(id=id, name=name, mbid=mbid)
        return self._call("GetArtistBiography", req, api_pb2.ArtistBiographyResponse)

    def get_similar_artists(
        self,
        *,
        id: str = "",
        name: str = "",
        mbid: str = "",
        limit: int = 0,
    ) -> api_pb2.ArtistSimilarResponse:
        req = api_pb2.ArtistSimilarRequest(id=id, name=name, mbid=mbid, limit=limit)
        return self._call("GetSimilarArtists", req, api_pb2.ArtistSimilarResponse)

    def get_artist_images(
        self,
        *,
        id: str = "",
        name: str = "",
        mbid: str = "",
    ) -> api_pb2.ArtistImageResponse:
        req = api_pb2.ArtistImageRequest(id=id, name=name, mbid=mbid)
        return self._call("GetArtistImages", req, api_pb2.ArtistImageResponse)

    def get_artist_top_songs(
        self,
        *,
        id: str = "",
        artist_name: str = "",
        mbid: str = "",
        count: int = 0,
    ) -> api_pb2.ArtistTopSongsResponse:
        req = api_pb2.ArtistTopSongsRequest(id=id, artistName=artist_name, mbid=mbid, count=count)
        return self._call("GetArtistTopSongs", req, api_pb2.ArtistTopSongsResponse)

    def get_album_info(
        self, *, name: str = "", artist: str = "", mbid: str = ""
    ) -> api_pb2.AlbumInfoResponse:
        req = api_pb2.AlbumInfoRequest(name=name, artist=artist, mbid=mbid)
        response = self._call("GetAlbumInfo", req, api_pb2.AlbumInfoResponse)
        if not response.HasField("info"):  # the original adapter: absent info means "not found"
            raise NotFoundByPlugin(plugin_id=self._plugin_id, export=self._methods["GetAlbumInfo"].export)
        return response

    def get_album_images(
        self, *, name: str = "", artist: str = "", mbid: str = ""
    ) -> api_pb2.AlbumImagesResponse:
        req = api_pb2.AlbumImagesRequest(name=name, artist=artist, mbid=mbid)
        return self._call("GetAlbumImages", req, api_pb2.AlbumImagesResponse)


TrackLike = api_pb2.TrackInfo | Mapping[str, Any]


def _track(track: TrackLike) -> api_pb2.TrackInfo:
    return track if isinstance(track, api_pb2.TrackInfo) else api_pb2.TrackInfo(**track)


class ScrobblerClient(_Client):
    """Scrobbler, with the original adapter's rules: any IsAuthorized error means False, and the
    ``error`` field of NowPlaying/Scrobble responses is ignored (only error-bit errors raise)."""

    capability = "Scrobbler"

    def is_authorized(self, *, user_id: str = "", username: str = "") -> bool:
        req = api_pb2.ScrobblerIsAuthorizedRequest(user_id=user_id, username=username)
        try:
            return self._call("IsAuthorized", req, api_pb2.ScrobblerIsAuthorizedResponse).authorized
        except (PluginError, NotImplementedByPlugin, NotFoundByPlugin) as exc:
            log.warning("%s (the original host answers 'not authorized')", exc)
            return False

    def now_playing(
        self, *, user_id: str = "", username: str = "", track: TrackLike, timestamp: int | None = None
    ) -> api_pb2.ScrobblerNowPlayingResponse:
        req = api_pb2.ScrobblerNowPlayingRequest(
            user_id=user_id,
            username=username,
            track=_track(track),
            timestamp=int(self._now()) if timestamp is None else timestamp,
        )
        return self._call("NowPlaying", req, api_pb2.ScrobblerNowPlayingResponse, honour_error_field=False)

    def scrobble(
        self, *, user_id: str = "", username: str = "", track: TrackLike, timestamp: int
    ) -> api_pb2.ScrobblerScrobbleResponse:
        info = _track(track)
        info.position = 0  # the original adapter always sends position 0 for a scrobble
        req = api_pb2.ScrobblerScrobbleRequest(
            user_id=user_id, username=username, track=info, timestamp=timestamp
        )
        return self._call("Scrobble", req, api_pb2.ScrobblerScrobbleResponse, honour_error_field=False)


class SchedulerCallbackClient(_Client):
    capability = "SchedulerCallback"

    def on_scheduler_callback(
        self, *, schedule_id: str, payload: bytes = b"", is_recurring: bool = False
    ) -> api_pb2.SchedulerCallbackResponse:
        req = api_pb2.SchedulerCallbackRequest(
            schedule_id=schedule_id, payload=payload, is_recurring=is_recurring
        )
        return self._call("OnSchedulerCallback", req, api_pb2.SchedulerCallbackResponse)


class LifecycleManagementClient(_Client):
    capability = "LifecycleManagement"

    def on_init(self, *, config: Mapping[str, str] | None = None) -> api_pb2.InitResponse:
        req = api_pb2.InitRequest(config=dict(config or {}))
        return self._call("OnInit", req, api_pb2.InitResponse)


class WebSocketCallbackClient(_Client):
    capability = "WebSocketCallback"

    def on_text_message(self, *, connection_id: str, message: str) -> api_pb2.OnTextMessageResponse:
        req = api_pb2.OnTextMessageRequest(connection_id=connection_id, message=message)
        return self._call("OnTextMessage", req, api_pb2.OnTextMessageResponse)

    def on_binary_message(self, *, connection_id: str, data: bytes) -> api_pb2.OnBinaryMessageResponse:
        req = api_pb2.OnBinaryMessageRequest(connection_id=connection_id, data=data)
        return self._call("OnBinaryMessage", req, api_pb2.OnBinaryMessageResponse)

    def on_error(self, *, connection_id: str, error: str) -> api_pb2.OnErrorResponse:
        req = api_pb2.OnErrorRequest(connection_id=connection_id, error=error)
        return self._call("OnError", req, api_pb2.OnErrorResponse)

    def on_close(self, *, connection_id: str, code: int = 1000, reason: str = "") -> api_pb2.OnCloseResponse:
        req = api_pb2.OnCloseRequest(connection_id=connection_id, code=code, reason=reason)
        return self._call("OnClose", req, api_pb2.OnCloseResponse)
