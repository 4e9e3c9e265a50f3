"""JSON <-> protobuf for humans (CLI, reports). The wire format itself is protobuf's own encoder.

``google.protobuf.json_format`` does the conversion; field names are accepted in both the .proto
spelling (``user_id``) and the JSON spelling (``userId``), and printed in the .proto spelling so
they match the spec's tables.
"""

from __future__ import annotations

from typing import TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message

from pytest_wasmhost.errors import WasmHostError

M = TypeVar("M", bound=Message)


def message_from_json(message_type: type[M], text: str, *, export: str | None = None) -> M:
    """Parse JSON text into ``message_type``; bad JSON or unknown fields name the message and the fix."""
    message = message_type()
    try:
        json_format.Parse(text or "{}", message)
    except json_format.ParseError as exc:
        fields = ", ".join(f.name for f in message_type.DESCRIPTOR.fields) or "(no fields)"
        raise WasmHostError(
            f"the request is not a valid {message_type.DESCRIPTOR.full_name} in JSON: {exc}",
            export=export,
            fix=f"pass a JSON object with the fields {fields}.",
        ) from exc
    return message


def message_to_dict(message: Message) -> dict[str, object]:
    """A message as a plain dict, defaults included (a reader wants to see ``"mbid": ""`` too)."""
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
