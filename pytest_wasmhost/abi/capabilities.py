"""The five plugin capabilities: their exports, the original's load checks and error mapping.

Names are facts from the spec (abi.md §2, runtime.md §9-10): export prefixes are the snake_case of
the protobuf service (``web_socket_callback``, not ``websocket_callback``), every version export
must return 1, and the sentinels ``plugin:not_implemented`` / ``plugin:not_found`` are matched by
exact string equality.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from google.protobuf.message import Message

from pytest_wasmhost.abi.proto import api_pb2
from pytest_wasmhost.errors import NotFoundByPlugin, NotImplementedByPlugin, PluginError, hide_harness_frames

# Errors of ours show the user's frames, not these (see errors.hide_harness_frames).
__tracebackhide__ = hide_harness_frames

NOT_IMPLEMENTED = "plugin:not_implemented"
NOT_FOUND = "plugin:not_found"
HOST_API_VERSION = 1


@dataclass(frozen=True, slots=True)
class Method:
    capability: str
    name: str  # the RPC name, also the original's metric name (GetArtistMBID)
    export: str
    request: type[Message]
    response: type[Message]


@dataclass(frozen=True, slots=True)
class Capability:
    name: str  # the manifest string
    prefix: str  # snake_case of the protobuf service
    methods: tuple[Method, ...]

    @property
    def version_export(self) -> str:
        return f"{self.prefix}_api_version"


def _capability(
    name: str, prefix: str, methods: Iterable[tuple[str, str, type[Message], type[Message]]]
) -> Capability:
    return Capability(
        name=name,
        prefix=prefix,
        methods=tuple(Method(name, rpc, f"{prefix}_{suffix}", req, res) for rpc, suffix, req, res in methods),
    )


# In proto declaration order: the original looked the method exports up in this order (abi.md §3).
CAPABILITIES: Mapping[str, Capability] = {
    c.name: c
    for c in (
        _capability(
            "MetadataAgent",
            "metadata_agent",
            (
                ("GetArtistMBID", "get_artist_mbid", api_pb2.ArtistMBIDRequest, api_pb2.ArtistMBIDResponse),
                ("GetArtistURL", "get_artist_url", api_pb2.ArtistURLRequest, api_pb2.ArtistURLResponse),
                (
                    "GetArtistBiography",
                    "get_artist_biography",
                    api_pb2.ArtistBiographyRequest,
                    api_pb2.ArtistBiographyResponse,
                ),
                (
                    "GetSimilarArtists",
                    "get_similar_artists",
                    api_pb2.ArtistSimilarRequest,
                    api_pb2.ArtistSimilarResponse,
                ),
                (
                    "GetArtistImages",
                    "get_artist_images",
                    api_pb2.ArtistImageRequest,
                    api_pb2.ArtistImageResponse,
                ),
                (
                    "GetArtistTopSongs",
                    "get_artist_top_songs",
                    api_pb2.ArtistTopSongsRequest,
                    api_pb2.ArtistTopSongsResponse,
                ),
                ("GetAlbumInfo", "get_album_info", api_pb2.AlbumInfoRequest, api_pb2.AlbumInfoResponse),
                (
                    "GetAlbumImages",
                    "get_album_images",
                    api_pb2.AlbumImagesRequest,
                    api_pb2.AlbumImagesResponse,
                ),
            ),
        ),
        _capability(
            "Scrobbler",
            "scrobbler",
            (
                (
                    "IsAuthorized",
                    "is_authorized",
                    api_pb2.ScrobblerIsAuthorizedRequest,
                    api_pb2.ScrobblerIsAuthorizedResponse,
                ),
                (
                    "NowPlaying",
                    "now_playing",
                    api_pb2.ScrobblerNowPlayingRequest,
                    api_pb2.ScrobblerNowPlayingResponse,
                ),
                ("Scrobble", "scrobble", api_pb2.ScrobblerScrobbleRequest, api_pb2.ScrobblerScrobbleResponse),
            ),
        ),
        _capability(
            "SchedulerCallback",
            "scheduler_callback",
            (
                (
                    "OnSchedulerCallback",
                    "on_scheduler_callback",
                    api_pb2.SchedulerCallbackRequest,
                    api_pb2.SchedulerCallbackResponse,
                ),
            ),
        ),
        _capability(
            "LifecycleManagement",
            "lifecycle_management",
            (("OnInit", "on_init", api_pb2.InitRequest, api_pb2.InitResponse),),
        ),
        _capability(
            "WebSocketCallback",
            "web_socket_callback",
            (
                (
                    "OnTextMessage",
                    "on_text_message",
                    api_pb2.OnTextMessageRequest,
                    api_pb2.OnTextMessageResponse,
                ),
                (
                    "OnBinaryMessage",
                    "on_binary_message",
                    api_pb2.OnBinaryMessageRequest,
                    api_pb2.OnBinaryMessageResponse,
                ),
                ("OnError", "on_error", api_pb2.OnErrorRequest, api_pb2.OnErrorResponse),
                ("OnClose", "on_close", api_pb2.OnCloseRequest, api_pb2.OnCloseResponse),
            ),
        ),
    )
}

METHODS_BY_EXPORT: Mapping[str, Method] = {m.export: m for c in CAPABILITIES.values() for m in c.methods}


def load_check_failure(
    capability: Capability,
    exports: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]],
    version: Callable[[], int | None],
) -> str | None:
    """The original's load sequence for one capability (abi.md §3); returns its error text or None.

    ``exports`` maps function export names to (params, results); ``version`` calls the version export.
    """
    version_export = capability.version_export
    if version_export not in exports:
        return f"{version_export} is not exported"
    if len(exports[version_export][1]) != 1:
        return f"invalid {version_export} signature"
    got = version()
    if got != HOST_API_VERSION:
        return f"API version mismatch, host: {HOST_API_VERSION}, plugin: {got}"
    for method in capability.methods:
        if method.export not in exports:
            return f"{method.export} is not exported"
    for name in ("malloc", "free"):
        if name not in exports:
            return f"{name} is not exported"
    return None


class Reply(NamedTuple):
    """What one method call produced: a decoded response, or the plugin's error-bit string.

    A NamedTuple: one is built per plugin call, and a frozen dataclass costs half again as much."""

    response: Message | None
    error_text: str | None


def check_err(reply: Reply, *, plugin_id: str, export: str, honour_error_field: bool = True) -> None:
    """The original's ``checkErr`` (runtime.md §10): raise the sentinel or PluginError, or return."""
    msg = ""
    if (
        honour_error_field
        and reply.response is not None
        and "error" in reply.response.DESCRIPTOR.fields_by_name
    ):
        msg = getattr(reply.response, "error")  # noqa: B009 - the field is looked up by name on purpose
    err = reply.error_text
    if msg:
        if msg == NOT_IMPLEMENTED:
            raise NotImplementedByPlugin(plugin_id=plugin_id, export=export)
        if msg == NOT_FOUND:
            raise NotFoundByPlugin(plugin_id=plugin_id, export=export)
        raise PluginError(f"{msg}\n{err}" if err is not None else msg, plugin_id=plugin_id, export=export)
    if err is not None:
        if err == NOT_IMPLEMENTED:
            raise NotImplementedByPlugin(plugin_id=plugin_id, export=export)
        if err == NOT_FOUND:
            raise NotFoundByPlugin(plugin_id=plugin_id, export=export)
        raise PluginError(err, plugin_id=plugin_id, export=export)
