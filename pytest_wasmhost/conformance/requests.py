"""Requests for the conformance suite: a typical one per method, and hypothesis strategies for fuzzing.

Everything stays within what the original host could send: a scrobble always carries its track, ids
and names are plausible strings, and only declared capabilities are ever called.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

from pytest_wasmhost.abi.capabilities import METHODS_BY_EXPORT
from pytest_wasmhost.abi.proto import api_pb2

_ARTIST = {"id": "ar-1", "name": "Test Artist", "mbid": "f27ec8db-af05-4f36-916e-3d57f91ecf5e"}
_TRACK = api_pb2.TrackInfo(
    id="mf-1",
    mbid="c9b94c9b-5a3b-4b88-9d5e-5e5c8f3c2f1a",
    name="Test Song",
    album="Test Album",
    album_mbid="1d3e5b0c-0b1a-4c2d-8e9f-0a1b2c3d4e5f",
    artists=[api_pb2.Artist(name="Test Artist", mbid=_ARTIST["mbid"])],
    album_artists=[api_pb2.Artist(name="Test Artist", mbid=_ARTIST["mbid"])],
    length=215,
    position=0,
)

TYPICAL: Mapping[str, Message] = {
    "metadata_agent_get_artist_mbid": api_pb2.ArtistMBIDRequest(id=_ARTIST["id"], name=_ARTIST["name"]),
    "metadata_agent_get_artist_url": api_pb2.ArtistURLRequest(**_ARTIST),
    "metadata_agent_get_artist_biography": api_pb2.ArtistBiographyRequest(**_ARTIST),
    "metadata_agent_get_similar_artists": api_pb2.ArtistSimilarRequest(**_ARTIST, limit=5),
    "metadata_agent_get_artist_images": api_pb2.ArtistImageRequest(**_ARTIST),
    "metadata_agent_get_artist_top_songs": api_pb2.ArtistTopSongsRequest(
        id=_ARTIST["id"], artistName=_ARTIST["name"], mbid=_ARTIST["mbid"], count=5
    ),
    "metadata_agent_get_album_info": api_pb2.AlbumInfoRequest(
        name="Test Album", artist="Test Artist", mbid="1d3e5b0c-0b1a-4c2d-8e9f-0a1b2c3d4e5f"
    ),
    "metadata_agent_get_album_images": api_pb2.AlbumImagesRequest(
        name="Test Album", artist="Test Artist", mbid="1d3e5b0c-0b1a-4c2d-8e9f-0a1b2c3d4e5f"
    ),
    "scrobbler_is_authorized": api_pb2.ScrobblerIsAuthorizedRequest(user_id="user-1", username="user"),
    "scrobbler_now_playing": api_pb2.ScrobblerNowPlayingRequest(
        user_id="user-1", username="user", track=_TRACK, timestamp=1_700_000_000
    ),
    "scrobbler_scrobble": api_pb2.ScrobblerScrobbleRequest(
        user_id="user-1", username="user", track=_TRACK, timestamp=1_700_000_000
    ),
    "scheduler_callback_on_scheduler_callback": api_pb2.SchedulerCallbackRequest(
        schedule_id="conformance", payload=b"payload", is_recurring=False
    ),
    "lifecycle_management_on_init": api_pb2.InitRequest(config={}),
    "web_socket_callback_on_text_message": api_pb2.OnTextMessageRequest(
        connection_id="conformance", message='{"type":"ping"}'
    ),
    "web_socket_callback_on_binary_message": api_pb2.OnBinaryMessageRequest(
        connection_id="conformance", data=b"\x00\x01"
    ),
    "web_socket_callback_on_error": api_pb2.OnErrorRequest(connection_id="conformance", error="i/o timeout"),
    "web_socket_callback_on_close": api_pb2.OnCloseRequest(
        connection_id="conformance", code=1000, reason="bye"
    ),
}

assert set(TYPICAL) == set(METHODS_BY_EXPORT), "every method export has a typical request"

# Every code point but a surrogate (Cs) encodes as UTF-8, as protobuf strings must. Saying codec="utf-8"
# as well would make hypothesis map the codec over all of Unicode (~3 s) wherever its cache folder is new.
_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=64)
_SCALARS: Mapping[int, st.SearchStrategy[Any]] = {
    FieldDescriptor.TYPE_STRING: _text,
    FieldDescriptor.TYPE_BYTES: st.binary(max_size=64),
    FieldDescriptor.TYPE_BOOL: st.booleans(),
    FieldDescriptor.TYPE_INT32: st.integers(-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: st.integers(-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_DOUBLE: st.floats(allow_nan=False),
}


def message_strategy(message_type: type[Message], *, depth: int = 0) -> st.SearchStrategy[Message]:
    """Random, well-formed instances of ``message_type`` (every field, nested messages, maps)."""
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for field in message_type.DESCRIPTOR.fields:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key, value = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
            fields[field.name] = st.dictionaries(_SCALARS[key.type], _SCALARS[value.type], max_size=4)
        elif field.message_type is not None:
            sub_type = api_pb2.__dict__[field.message_type.name]
            sub = message_strategy(sub_type, depth=depth + 1) if depth < 2 else st.just(sub_type())
            is_repeated = field.is_repeated
            fields[field.name] = st.lists(sub, max_size=3) if is_repeated else sub
        else:
            scalar = _SCALARS[field.type]
            is_repeated = field.is_repeated
            fields[field.name] = st.lists(scalar, max_size=3) if is_repeated else scalar
    return st.fixed_dictionaries({}, optional=fields).map(lambda values: message_type(**values))


def fuzz_strategy(export: str) -> st.SearchStrategy[Message]:
    """Requests for ``export`` that the original host could have sent (a scrobble keeps its track)."""
    method = METHODS_BY_EXPORT[export]
    base = message_strategy(method.request)
    if export in ("scrobbler_now_playing", "scrobbler_scrobble"):
        return base.map(lambda m: _with_track(m))
    return base


def _with_track(message: Message) -> Message:
    if not message.HasField("track"):
        message.track.CopyFrom(_TRACK)  # type: ignore[attr-defined]
    return message
