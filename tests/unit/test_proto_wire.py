"""Pin the protobuf schema and wire encoding of the legacy plugin ABI.

Plugins built against the Go glue (vtprotobuf) decode exactly these bytes, so every expected
payload below is written out by hand from the encoding rules rather than captured from the
encoder under test. Tag byte = (field_number << 3) | wire_type, with wire types
0 = VARINT, 1 = I64, 2 = LEN. Strings/bytes/sub-messages/map entries are LEN; map entries are
sub-messages with key = field 1 and value = field 2.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from pytest_wasmhost.abi.proto import (
    api_pb2,
    artwork_pb2,
    cache_pb2,
    config_pb2,
    http_pb2,
    scheduler_pb2,
    subsonicapi_pb2,
    websocket_pb2,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
PROTO_DIR = REPO_ROOT / "pytest_wasmhost" / "abi" / "proto"

MODULES: dict[str, ModuleType] = {
    "api": api_pb2,
    "artwork": artwork_pb2,
    "cache": cache_pb2,
    "config": config_pb2,
    "http": http_pb2,
    "scheduler": scheduler_pb2,
    "subsonicapi": subsonicapi_pb2,
    "websocket": websocket_pb2,
}


# --------------------------------------------------------------------------------------------
# Hand-computed wire bytes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WireCase:
    id: str
    build: Callable[[], Message]
    hex: str  # expected wire bytes; spaces only group the tag/length/value chunks


WIRE_CASES: list[WireCase] = [
    # ---- api.proto ----
    WireCase(
        "api.ArtistSimilarResponse/repeated-message",
        lambda: api_pb2.ArtistSimilarResponse(
            artists=[api_pb2.Artist(name="A", mbid="m1"), api_pb2.Artist(name="B")]
        ),
        # 0a 07 artists[0] LEN 7: { 0a 01 "A"  12 02 "m1" }
        # 0a 03 artists[1] LEN 3: { 0a 01 "B" }   (empty mbid omitted)
        "0a07 0a0141 12026d31 0a03 0a0142",
    ),
    WireCase(
        "api.InitRequest/map-one-entry",
        lambda: api_pb2.InitRequest(config={"k": "v"}),
        # 0a 06 config entry LEN 6: { 0a 01 "k" (key)  12 01 "v" (value) }
        "0a06 0a016b 120176",
    ),
    WireCase(
        "api.InitRequest/map-entry-empty-value",
        lambda: api_pb2.InitRequest(config={"k": ""}),
        # Map entries always carry key AND value, even when the value is the default (as Go does):
        # 0a 05 entry LEN 5: { 0a 01 "k"  12 00 "" }
        "0a05 0a016b 1200",
    ),
    WireCase(
        "api.OnCloseRequest/negative-int32",
        lambda: api_pb2.OnCloseRequest(connection_id="c", code=-1),
        # 0a 01 "c"
        # 10 code VARINT: int32 -1 is sign-extended to 64 bits -> 10-byte varint ff*9 01
        "0a0163 10ffffffffffffffffff01",
    ),
    WireCase(
        "api.ScrobblerScrobbleRequest/int64-timestamp-nested",
        lambda: api_pb2.ScrobblerScrobbleRequest(
            user_id="u",
            track=api_pb2.TrackInfo(id="t", artists=[api_pb2.Artist(name="A")], length=180, position=30),
            timestamp=1_700_000_000,
        ),
        # 0a 01 "u"                                   user_id
        # 1a 0d track LEN 13: {
        #   0a 01 "t"                                 id
        #   32 03 { 0a 01 "A" }                       artists (field 6, LEN)
        #   40 b4 01                                  length (field 8) 180 = 0b1_0110100 -> b4 01
        #   48 1e }                                   position (field 9) 30
        # 20 80 e2 cf aa 06   timestamp (field 4) 1700000000: 7-bit groups 0,98,79,42,6 LSB first
        "0a0175 1a0d 0a0174 32030a0141 40b401 481e 2080e2cfaa06",
    ),
    WireCase(
        "api.SchedulerCallbackRequest/bytes-bool",
        lambda: api_pb2.SchedulerCallbackRequest(schedule_id="s", payload=b"\x00\xff", is_recurring=True),
        # 0a 01 "s"   12 02 00 ff (payload)   18 01 (is_recurring true)
        "0a0173 120200ff 1801",
    ),
    WireCase(
        "api.ArtistTopSongsRequest/camelCase-field",
        lambda: api_pb2.ArtistTopSongsRequest(artistName="X", count=5),
        # 12 01 "X" (artistName = field 2)   20 05 (count = field 4)
        "120158 2005",
    ),
    WireCase(
        "api.AlbumInfoResponse/present-empty-submessage",
        lambda: api_pb2.AlbumInfoResponse(info=api_pb2.AlbumInfo()),
        # A set-but-empty singular message still has presence: 0a 00
        "0a00",
    ),
    WireCase(
        "api.Artist/utf8-string",
        lambda: api_pb2.Artist(name="é"),
        # 0a 02 c3 a9  (U+00E9 in UTF-8)
        "0a02c3a9",
    ),
    # ---- artwork.proto ----
    WireCase(
        "artwork.GetArtworkUrlRequest",
        lambda: artwork_pb2.GetArtworkUrlRequest(id="al-1", size=300),
        # 0a 04 "al-1"   10 ac 02 (size 300 = 44 + 2*128 -> ac 02)
        "0a04616c2d31 10ac02",
    ),
    # ---- cache.proto ----
    WireCase(
        "cache.SetFloatRequest/double",
        lambda: cache_pb2.SetFloatRequest(key="k", value=1.5, ttl_seconds=60),
        # 0a 01 "k"
        # 11 value I64 (field 2, wire 1): 1.5 = 0x3FF8000000000000 little-endian
        # 18 3c ttl_seconds 60
        "0a016b 11000000000000f83f 183c",
    ),
    WireCase(
        "cache.GetIntResponse/negative-int64",
        lambda: cache_pb2.GetIntResponse(exists=True, value=-2),
        # 08 01 exists   10 value: -2 as two's complement 64-bit -> fe ff*8 01
        "0801 10feffffffffffffffff01",
    ),
    WireCase(
        "cache.GetBytesResponse/bytes",
        lambda: cache_pb2.GetBytesResponse(exists=True, value=b"\x01\x02"),
        # 08 01   12 02 01 02
        "0801 12020102",
    ),
    # ---- config.proto ----
    WireCase(
        "config.GetPluginConfigResponse/map-one-entry",
        lambda: config_pb2.GetPluginConfigResponse(config={"k": "v"}),
        # 0a 06 entry { 0a 01 "k"  12 01 "v" }
        "0a06 0a016b 120176",
    ),
    # ---- http.proto ----
    WireCase(
        "http.HttpRequest/map-int32-bytes",
        lambda: http_pb2.HttpRequest(url="u", headers={"a": "b"}, timeout_ms=1000, body=b"x"),
        # 0a 01 "u"
        # 12 06 headers entry { 0a 01 "a"  12 01 "b" }
        # 18 e8 07 timeout_ms 1000 = 104 + 7*128
        # 22 01 "x" body
        "0a0175 12060a0161120162 18e807 220178",
    ),
    WireCase(
        "http.HttpResponse",
        lambda: http_pb2.HttpResponse(status=200, body=b"ok"),
        # 08 c8 01 status 200 = 72 + 1*128   12 02 "ok"
        "08c801 12026f6b",
    ),
    # ---- scheduler.proto ----
    WireCase(
        "scheduler.ScheduleOneTimeRequest",
        lambda: scheduler_pb2.ScheduleOneTimeRequest(delay_seconds=5, payload=b"p", schedule_id="id"),
        # 08 05   12 01 "p"   1a 02 "id"
        "0805 120170 1a026964",
    ),
    WireCase(
        "scheduler.TimeNowResponse/int64",
        lambda: scheduler_pb2.TimeNowResponse(unix_milli=1_700_000_000_123, local_time_zone="UTC"),
        # 10 unix_milli: 1700000000123 -> 7-bit groups 123,80,21,127,60,49 -> fb d0 95 ff bc 31
        # 1a 03 "UTC"
        "10fbd095ffbc31 1a03555443",
    ),
    # ---- subsonicapi.proto ----
    WireCase(
        "subsonicapi.CallRequest",
        lambda: subsonicapi_pb2.CallRequest(url="/rest/ping"),
        # 0a 0a "/rest/ping"
        "0a0a 2f726573742f70696e67",
    ),
    WireCase(
        "subsonicapi.CallResponse",
        lambda: subsonicapi_pb2.CallResponse(json="{}", error="e"),
        # 0a 02 "{}"   12 01 "e"
        "0a027b7d 120165",
    ),
    # ---- websocket.proto ----
    WireCase(
        "websocket.ConnectRequest/map",
        lambda: websocket_pb2.ConnectRequest(url="ws://h", headers={"k": "v"}, connection_id="c"),
        # 0a 06 "ws://h"   12 06 { 0a 01 "k" 12 01 "v" }   1a 01 "c"
        "0a0677733a2f2f68 12060a016b120176 1a0163",
    ),
    WireCase(
        "websocket.CloseRequest",
        lambda: websocket_pb2.CloseRequest(connection_id="c", code=1000, reason="bye"),
        # 0a 01 "c"   10 e8 07 (1000)   1a 03 "bye"
        "0a0163 10e807 1a03627965",
    ),
    WireCase(
        "websocket.SendBinaryRequest/bytes",
        lambda: websocket_pb2.SendBinaryRequest(connection_id="c", data=b"\x00"),
        # 0a 01 "c"   12 01 00
        "0a0163 120100",
    ),
]


@pytest.mark.parametrize("case", WIRE_CASES, ids=[c.id for c in WIRE_CASES])
def test_encode_matches_hand_computed_bytes(case: WireCase) -> None:
    # Compare as hex so a mismatch shows a readable diff.
    assert case.build().SerializeToString().hex() == bytes.fromhex(case.hex).hex()


@pytest.mark.parametrize("case", WIRE_CASES, ids=[c.id for c in WIRE_CASES])
def test_decode_hand_computed_bytes(case: WireCase) -> None:
    expected = case.build()
    decoded = type(expected).FromString(bytes.fromhex(case.hex))
    assert decoded == expected


def test_every_proto_file_has_a_wire_case() -> None:
    covered = {c.id.split(".", 1)[0] for c in WIRE_CASES}
    assert covered == set(MODULES)


def test_absent_submessage_is_not_encoded() -> None:
    # AlbumInfoResponse without info means "no info": nothing on the wire, HasField false.
    msg = api_pb2.AlbumInfoResponse()
    assert msg.SerializeToString() == b""
    assert not msg.HasField("info")
    # ...whereas a present-but-empty AlbumInfo is distinguishable from it after a round trip.
    present = api_pb2.AlbumInfoResponse.FromString(bytes.fromhex("0a00"))
    assert present.HasField("info")
    assert present != msg


def test_explicit_default_scalars_are_not_encoded() -> None:
    # proto3 implicit presence: setting a field to its default is indistinguishable from unset.
    msg = api_pb2.ScrobblerScrobbleRequest(user_id="", timestamp=0)
    assert msg.SerializeToString() == b""
    assert cache_pb2.SetFloatRequest(key="", value=0.0, ttl_seconds=0).SerializeToString() == b""
    assert api_pb2.SchedulerCallbackRequest(payload=b"", is_recurring=False).SerializeToString() == b""


# --------------------------------------------------------------------------------------------
# All-defaults <-> empty payload, for every message
# --------------------------------------------------------------------------------------------


def _all_message_classes() -> list[type[Message]]:
    classes: list[type[Message]] = []
    for module in MODULES.values():
        for name in module.DESCRIPTOR.message_types_by_name:
            classes.append(getattr(module, name))
    return classes


def _assert_all_defaults(msg: Message) -> None:
    for field in msg.DESCRIPTOR.fields:
        value = getattr(msg, field.name)
        if field.is_repeated:
            assert len(value) == 0, field.full_name
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            assert not msg.HasField(field.name), field.full_name
        else:
            assert value == field.default_value, field.full_name
            assert not value, field.full_name


@pytest.mark.parametrize("cls", _all_message_classes(), ids=lambda c: c.DESCRIPTOR.full_name)
def test_all_defaults_roundtrip_empty(cls: type[Message]) -> None:
    assert cls().SerializeToString() == b""
    decoded = cls.FromString(b"")
    assert decoded == cls()
    _assert_all_defaults(decoded)


# --------------------------------------------------------------------------------------------
# Schema pinned against proto.md (transcribed here by hand; the markdown is not read at runtime)
# --------------------------------------------------------------------------------------------

# One row per field: "<package>.<Message> <number> <type> <name> [repeated]".
# An empty message is "<package>.<Message> -". A message-typed field names its message (same package).
SCHEMA_TABLE = """
api.ArtistMBIDRequest 1 string id
api.ArtistMBIDRequest 2 string name
api.ArtistMBIDResponse 1 string mbid
api.ArtistURLRequest 1 string id
api.ArtistURLRequest 2 string name
api.ArtistURLRequest 3 string mbid
api.ArtistURLResponse 1 string url
api.ArtistBiographyRequest 1 string id
api.ArtistBiographyRequest 2 string name
api.ArtistBiographyRequest 3 string mbid
api.ArtistBiographyResponse 1 string biography
api.ArtistSimilarRequest 1 string id
api.ArtistSimilarRequest 2 string name
api.ArtistSimilarRequest 3 string mbid
api.ArtistSimilarRequest 4 int32 limit
api.Artist 1 string name
api.Artist 2 string mbid
api.ArtistSimilarResponse 1 Artist artists repeated
api.ArtistImageRequest 1 string id
api.ArtistImageRequest 2 string name
api.ArtistImageRequest 3 string mbid
api.ExternalImage 1 string url
api.ExternalImage 2 int32 size
api.ArtistImageResponse 1 ExternalImage images repeated
api.ArtistTopSongsRequest 1 string id
api.ArtistTopSongsRequest 2 string artistName
api.ArtistTopSongsRequest 3 string mbid
api.ArtistTopSongsRequest 4 int32 count
api.Song 1 string name
api.Song 2 string mbid
api.ArtistTopSongsResponse 1 Song songs repeated
api.AlbumInfoRequest 1 string name
api.AlbumInfoRequest 2 string artist
api.AlbumInfoRequest 3 string mbid
api.AlbumInfo 1 string name
api.AlbumInfo 2 string mbid
api.AlbumInfo 3 string description
api.AlbumInfo 4 string url
api.AlbumInfoResponse 1 AlbumInfo info
api.AlbumImagesRequest 1 string name
api.AlbumImagesRequest 2 string artist
api.AlbumImagesRequest 3 string mbid
api.AlbumImagesResponse 1 ExternalImage images repeated
api.ScrobblerIsAuthorizedRequest 1 string user_id
api.ScrobblerIsAuthorizedRequest 2 string username
api.ScrobblerIsAuthorizedResponse 1 bool authorized
api.ScrobblerIsAuthorizedResponse 2 string error
api.TrackInfo 1 string id
api.TrackInfo 2 string mbid
api.TrackInfo 3 string name
api.TrackInfo 4 string album
api.TrackInfo 5 string album_mbid
api.TrackInfo 6 Artist artists repeated
api.TrackInfo 7 Artist album_artists repeated
api.TrackInfo 8 int32 length
api.TrackInfo 9 int32 position
api.ScrobblerNowPlayingRequest 1 string user_id
api.ScrobblerNowPlayingRequest 2 string username
api.ScrobblerNowPlayingRequest 3 TrackInfo track
api.ScrobblerNowPlayingRequest 4 int64 timestamp
api.ScrobblerNowPlayingResponse 1 string error
api.ScrobblerScrobbleRequest 1 string user_id
api.ScrobblerScrobbleRequest 2 string username
api.ScrobblerScrobbleRequest 3 TrackInfo track
api.ScrobblerScrobbleRequest 4 int64 timestamp
api.ScrobblerScrobbleResponse 1 string error
api.SchedulerCallbackRequest 1 string schedule_id
api.SchedulerCallbackRequest 2 bytes payload
api.SchedulerCallbackRequest 3 bool is_recurring
api.SchedulerCallbackResponse 1 string error
api.InitRequest 1 map<string,string> config
api.InitResponse 1 string error
api.OnTextMessageRequest 1 string connection_id
api.OnTextMessageRequest 2 string message
api.OnTextMessageResponse -
api.OnBinaryMessageRequest 1 string connection_id
api.OnBinaryMessageRequest 2 bytes data
api.OnBinaryMessageResponse -
api.OnErrorRequest 1 string connection_id
api.OnErrorRequest 2 string error
api.OnErrorResponse -
api.OnCloseRequest 1 string connection_id
api.OnCloseRequest 2 int32 code
api.OnCloseRequest 3 string reason
api.OnCloseResponse -

artwork.GetArtworkUrlRequest 1 string id
artwork.GetArtworkUrlRequest 2 int32 size
artwork.GetArtworkUrlResponse 1 string url

cache.SetStringRequest 1 string key
cache.SetStringRequest 2 string value
cache.SetStringRequest 3 int64 ttl_seconds
cache.SetIntRequest 1 string key
cache.SetIntRequest 2 int64 value
cache.SetIntRequest 3 int64 ttl_seconds
cache.SetFloatRequest 1 string key
cache.SetFloatRequest 2 double value
cache.SetFloatRequest 3 int64 ttl_seconds
cache.SetBytesRequest 1 string key
cache.SetBytesRequest 2 bytes value
cache.SetBytesRequest 3 int64 ttl_seconds
cache.SetResponse 1 bool success
cache.GetRequest 1 string key
cache.GetStringResponse 1 bool exists
cache.GetStringResponse 2 string value
cache.GetIntResponse 1 bool exists
cache.GetIntResponse 2 int64 value
cache.GetFloatResponse 1 bool exists
cache.GetFloatResponse 2 double value
cache.GetBytesResponse 1 bool exists
cache.GetBytesResponse 2 bytes value
cache.RemoveRequest 1 string key
cache.RemoveResponse 1 bool success
cache.HasRequest 1 string key
cache.HasResponse 1 bool exists

config.GetPluginConfigRequest -
config.GetPluginConfigResponse 1 map<string,string> config

http.HttpRequest 1 string url
http.HttpRequest 2 map<string,string> headers
http.HttpRequest 3 int32 timeout_ms
http.HttpRequest 4 bytes body
http.HttpResponse 1 int32 status
http.HttpResponse 2 bytes body
http.HttpResponse 3 map<string,string> headers
http.HttpResponse 4 string error

scheduler.ScheduleOneTimeRequest 1 int32 delay_seconds
scheduler.ScheduleOneTimeRequest 2 bytes payload
scheduler.ScheduleOneTimeRequest 3 string schedule_id
scheduler.ScheduleRecurringRequest 1 string cron_expression
scheduler.ScheduleRecurringRequest 2 bytes payload
scheduler.ScheduleRecurringRequest 3 string schedule_id
scheduler.ScheduleResponse 1 string schedule_id
scheduler.CancelRequest 1 string schedule_id
scheduler.CancelResponse 1 bool success
scheduler.CancelResponse 2 string error
scheduler.TimeNowRequest -
scheduler.TimeNowResponse 1 string rfc3339_nano
scheduler.TimeNowResponse 2 int64 unix_milli
scheduler.TimeNowResponse 3 string local_time_zone

subsonicapi.CallRequest 1 string url
subsonicapi.CallResponse 1 string json
subsonicapi.CallResponse 2 string error

websocket.ConnectRequest 1 string url
websocket.ConnectRequest 2 map<string,string> headers
websocket.ConnectRequest 3 string connection_id
websocket.ConnectResponse 1 string connection_id
websocket.ConnectResponse 2 string error
websocket.SendTextRequest 1 string connection_id
websocket.SendTextRequest 2 string message
websocket.SendTextResponse 1 string error
websocket.SendBinaryRequest 1 string connection_id
websocket.SendBinaryRequest 2 bytes data
websocket.SendBinaryResponse 1 string error
websocket.CloseRequest 1 string connection_id
websocket.CloseRequest 2 int32 code
websocket.CloseRequest 3 string reason
websocket.CloseResponse 1 string error
"""

# "<package>.<Service>.<Rpc> <Request> <Response>" (messages in the same package).
SERVICE_TABLE = """
api.MetadataAgent.GetArtistMBID ArtistMBIDRequest ArtistMBIDResponse
api.MetadataAgent.GetArtistURL ArtistURLRequest ArtistURLResponse
api.MetadataAgent.GetArtistBiography ArtistBiographyRequest ArtistBiographyResponse
api.MetadataAgent.GetSimilarArtists ArtistSimilarRequest ArtistSimilarResponse
api.MetadataAgent.GetArtistImages ArtistImageRequest ArtistImageResponse
api.MetadataAgent.GetArtistTopSongs ArtistTopSongsRequest ArtistTopSongsResponse
api.MetadataAgent.GetAlbumInfo AlbumInfoRequest AlbumInfoResponse
api.MetadataAgent.GetAlbumImages AlbumImagesRequest AlbumImagesResponse
api.Scrobbler.IsAuthorized ScrobblerIsAuthorizedRequest ScrobblerIsAuthorizedResponse
api.Scrobbler.NowPlaying ScrobblerNowPlayingRequest ScrobblerNowPlayingResponse
api.Scrobbler.Scrobble ScrobblerScrobbleRequest ScrobblerScrobbleResponse
api.SchedulerCallback.OnSchedulerCallback SchedulerCallbackRequest SchedulerCallbackResponse
api.LifecycleManagement.OnInit InitRequest InitResponse
api.WebSocketCallback.OnTextMessage OnTextMessageRequest OnTextMessageResponse
api.WebSocketCallback.OnBinaryMessage OnBinaryMessageRequest OnBinaryMessageResponse
api.WebSocketCallback.OnError OnErrorRequest OnErrorResponse
api.WebSocketCallback.OnClose OnCloseRequest OnCloseResponse
artwork.ArtworkService.GetArtistUrl GetArtworkUrlRequest GetArtworkUrlResponse
artwork.ArtworkService.GetAlbumUrl GetArtworkUrlRequest GetArtworkUrlResponse
artwork.ArtworkService.GetTrackUrl GetArtworkUrlRequest GetArtworkUrlResponse
cache.CacheService.SetString SetStringRequest SetResponse
cache.CacheService.GetString GetRequest GetStringResponse
cache.CacheService.SetInt SetIntRequest SetResponse
cache.CacheService.GetInt GetRequest GetIntResponse
cache.CacheService.SetFloat SetFloatRequest SetResponse
cache.CacheService.GetFloat GetRequest GetFloatResponse
cache.CacheService.SetBytes SetBytesRequest SetResponse
cache.CacheService.GetBytes GetRequest GetBytesResponse
cache.CacheService.Remove RemoveRequest RemoveResponse
cache.CacheService.Has HasRequest HasResponse
config.ConfigService.GetPluginConfig GetPluginConfigRequest GetPluginConfigResponse
http.HttpService.Get HttpRequest HttpResponse
http.HttpService.Post HttpRequest HttpResponse
http.HttpService.Put HttpRequest HttpResponse
http.HttpService.Delete HttpRequest HttpResponse
http.HttpService.Patch HttpRequest HttpResponse
http.HttpService.Head HttpRequest HttpResponse
http.HttpService.Options HttpRequest HttpResponse
scheduler.SchedulerService.ScheduleOneTime ScheduleOneTimeRequest ScheduleResponse
scheduler.SchedulerService.ScheduleRecurring ScheduleRecurringRequest ScheduleResponse
scheduler.SchedulerService.CancelSchedule CancelRequest CancelResponse
scheduler.SchedulerService.TimeNow TimeNowRequest TimeNowResponse
subsonicapi.SubsonicAPIService.Call CallRequest CallResponse
websocket.WebSocketService.Connect ConnectRequest ConnectResponse
websocket.WebSocketService.SendText SendTextRequest SendTextResponse
websocket.WebSocketService.SendBinary SendBinaryRequest SendBinaryResponse
websocket.WebSocketService.Close CloseRequest CloseResponse
"""

GO_PACKAGES = {
    "api": "github.com/navidrome/navidrome/plugins/api;api",
    "artwork": "github.com/navidrome/navidrome/plugins/host/artwork;artwork",
    "cache": "github.com/navidrome/navidrome/plugins/host/cache;cache",
    "config": "github.com/navidrome/navidrome/plugins/host/config;config",
    "http": "github.com/navidrome/navidrome/plugins/host/http;http",
    "scheduler": "github.com/navidrome/navidrome/plugins/host/scheduler;scheduler",
    "subsonicapi": "github.com/navidrome/navidrome/plugins/host/subsonicapi;subsonicapi",
    "websocket": "github.com/navidrome/navidrome/plugins/host/websocket",  # no ";name" suffix
}

_SCALAR_TYPES = {
    FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_BYTES: "bytes",
    FieldDescriptor.TYPE_BOOL: "bool",
    FieldDescriptor.TYPE_INT32: "int32",
    FieldDescriptor.TYPE_INT64: "int64",
    FieldDescriptor.TYPE_DOUBLE: "double",
}

# message full name -> {number: (type, name, repeated)}
FieldSpec = tuple[str, str, bool]


def _parse_schema_table() -> dict[str, dict[int, FieldSpec]]:
    schema: dict[str, dict[int, FieldSpec]] = {}
    for line in SCHEMA_TABLE.strip().splitlines():
        if not line.strip():
            continue
        parts = line.split()
        fields = schema.setdefault(parts[0], {})
        if parts[1:] == ["-"]:
            continue
        number, type_, name, *label = parts[1:]
        assert label in ([], ["repeated"]), line
        assert int(number) not in fields, f"duplicate row: {line}"
        fields[int(number)] = (type_, name, bool(label))
    return schema


def _describe_field(field: FieldDescriptor) -> FieldSpec:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        sub = field.message_type
        assert sub is not None
        if sub.GetOptions().map_entry:
            # A map is a repeated entry message on the wire; report it in proto.md's spelling.
            assert field.is_repeated
            key, value = sub.fields_by_name["key"], sub.fields_by_name["value"]
            return (f"map<{_SCALAR_TYPES[key.type]},{_SCALAR_TYPES[value.type]}>", field.name, False)
        # Top-level message of its own file (no cross-file imports, checked elsewhere): the table
        # names it without the "<package>." prefix.
        assert sub.full_name == f"{sub.file.package}.{sub.name}"
        return (sub.name, field.name, field.is_repeated)
    return (_SCALAR_TYPES[field.type], field.name, field.is_repeated)


def _described_messages() -> dict[str, Descriptor]:
    return {
        desc.full_name: desc
        for module in MODULES.values()
        for desc in module.DESCRIPTOR.message_types_by_name.values()
    }


def test_message_set_matches_proto_md() -> None:
    assert set(_described_messages()) == set(_parse_schema_table())


@pytest.mark.parametrize("full_name", sorted(_parse_schema_table()))
def test_fields_match_proto_md(full_name: str) -> None:
    expected = _parse_schema_table()[full_name]
    desc = _described_messages()[full_name]
    actual = {field.number: _describe_field(field) for field in desc.fields}
    assert actual == expected
    # No optional/oneof (proto3 `optional` would show up as a synthetic oneof) and no enums.
    assert not desc.oneofs
    assert not desc.enum_types
    # Only map entries may be nested.
    assert all(nested.GetOptions().map_entry for nested in desc.nested_types)
    # proto3 implicit presence: only singular message fields track presence.
    for field in desc.fields:
        assert field.has_presence == (field.type == FieldDescriptor.TYPE_MESSAGE and not field.is_repeated)


@pytest.mark.parametrize("package", sorted(MODULES))
def test_file_options_match_proto_md(package: str) -> None:
    file_desc = MODULES[package].DESCRIPTOR
    assert file_desc.package == package
    assert descriptor_pb2.FileDescriptorProto.FromString(file_desc.serialized_pb).syntax == "proto3"
    assert file_desc.GetOptions().go_package == GO_PACKAGES[package]
    assert not file_desc.enum_types_by_name
    assert not file_desc.dependencies  # no cross-file imports


def test_services_match_proto_md() -> None:
    expected: dict[str, tuple[str, str]] = {}
    for line in SERVICE_TABLE.strip().splitlines():
        rpc, request, response = line.split()
        package = rpc.split(".", 1)[0]
        expected[rpc] = (f"{package}.{request}", f"{package}.{response}")
    actual = {
        method.full_name: (method.input_type.full_name, method.output_type.full_name)
        for module in MODULES.values()
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    }
    assert actual == expected
    # RPC order is part of the Go glue's export layout; keep it as in proto.md.
    assert list(actual) == list(expected)


@pytest.mark.parametrize("package", sorted(MODULES))
def test_services_carry_go_plugin_annotation(package: str) -> None:
    # Comments are not in the runtime descriptors, so read the .proto source itself.
    kind = "plugin" if package == "api" else "host"
    lines = (PROTO_DIR / f"{package}.proto").read_text(encoding="utf-8").splitlines()
    service_lines = [i for i, line in enumerate(lines) if re.match(r"service \w+ \{", line)]
    assert service_lines
    for i in service_lines:
        assert lines[i - 1] == f"// go:plugin type={kind} version=1", lines[i]


# --------------------------------------------------------------------------------------------
# Committed gencode is up to date
# --------------------------------------------------------------------------------------------


def test_gen_proto_check_passes() -> None:
    pytest.importorskip("grpc_tools", reason="the dev group (grpcio-tools) regenerates the gencode")
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "gen_proto.py"), "--check"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
