"""The Segment HTTP tracking API messages the gateway accepts.

Field names follow the Segment spec (``userId``, ``anonymousId`` ...) on the
wire and are snake_case in Python. Unknown fields are ignored, as Segment does:
SDKs send extras (``_metadata``, ``version``, ``receivedAt``) that the gateway
has no use for.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from gateway.domain.errors import FieldProblem, InvalidRequest, join_path
from gateway.domain.sanitize import sanitize

MAX_MESSAGE_ID_LENGTH = 256


class CallType(StrEnum):
    TRACK = "track"
    IDENTIFY = "identify"
    PAGE = "page"
    SCREEN = "screen"
    ALIAS = "alias"
    GROUP = "group"


def _iso_datetime(value: object) -> object:
    if value is None or isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("must be an ISO-8601 date-time string")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError("must be an ISO-8601 date-time string") from None
    # A time without an offset is read as UTC, as Segment does.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _id_text(value: object) -> object:
    # Some SDKs send numeric user ids; the identity graph only sees text.
    if isinstance(value, bool):
        raise ValueError("must be a string")
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON Schema's integer: 12.0 is 12
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise ValueError("must be a string or a 64-bit integer")
        return str(value)
    return value


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_datetime)]
IdText = Annotated[str, BeforeValidator(_id_text), StringConstraints(max_length=256)]
JsonObject = dict[str, Any]


class SegmentModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


# -- what the OpenAPI document says (it must tell the truth: schemathesis
# checks that every request it allows is accepted and every other refused).
# At least one character that is neither whitespace nor NUL; no NUL at all.
_ID_PATTERN = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"
_ID_STRING: dict[str, Any] = {
    "type": "string",
    "pattern": _ID_PATTERN,
    "maxLength": MAX_MESSAGE_ID_LENGTH,
}
# Numeric ids are taken as text (some SDKs send them).
_ID_INTEGER: dict[str, Any] = {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1}
ID_SCHEMA: dict[str, Any] = {"anyOf": [_ID_STRING, _ID_INTEGER]}
# Where an id is optional, blank is the same as absent.
_NULLABLE_ID: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "pattern": "^[^\\u0000]*$", "maxLength": MAX_MESSAGE_ID_LENGTH},
        _ID_INTEGER,
        {"type": "null"},
    ]
}
_WHO = {
    "anyOf": [
        {"required": ["userId"], "properties": {"userId": ID_SCHEMA}},
        {"required": ["anonymousId"], "properties": {"anonymousId": ID_SCHEMA}},
    ]
}


def _schema(
    *, who: bool = True, required_ids: tuple[str, ...] = ()
) -> Callable[[dict[str, Any]], None]:
    """Post-process a message model's JSON schema: ids are strings or integers
    with a visible character, and the rules on who the call is about."""

    def edit(schema: dict[str, Any]) -> None:
        props = schema.get("properties", {})
        for name in ("userId", "anonymousId", "previousId", "groupId"):
            if name in props:
                props[name] = {**_NULLABLE_ID, "title": props[name].get("title", name)}
        for name in required_ids:
            props[name] = dict(ID_SCHEMA)
        if "messageId" in props:
            props["messageId"] = {
                "anyOf": [
                    {"type": "string", "pattern": "^[^\\u0000]*$", "maxLength": 256},
                    {"type": "null"},
                ]
            }
        if required_ids:
            schema["required"] = sorted({*schema.get("required", []), *required_ids})
        if who:
            schema.update(_WHO)

    return edit


class Library(SegmentModel):
    name: str | None = None
    version: str | None = None


class ExternalId(SegmentModel):
    """An id another system gave the person (Segment ``context.externalIds``)."""

    model_config = ConfigDict(
        json_schema_extra=lambda s: s["properties"].update(id=dict(ID_SCHEMA))
    )

    id: IdText
    # The namespace of the id: 1-32 of a-z, 0-9, _ or - (case-insensitive);
    # email, phone, user_id and anonymous_id are Segment's own types.
    type: str = Field(min_length=1, pattern=r"^\s*[A-Za-z0-9_-]{1,32}\s*$")
    # "users" (a person) or "accounts" (a group).
    collection: str = "users"


class Context(SegmentModel):
    traits: JsonObject | None = None
    library: Library | None = None
    channel: str | None = None
    external_ids: list[ExternalId] | None = Field(default=None, alias="externalIds")


class SegmentMessage(SegmentModel):
    """Fields every call has."""

    call_type: ClassVar[CallType]

    user_id: IdText | None = Field(default=None, alias="userId")
    anonymous_id: IdText | None = Field(default=None, alias="anonymousId")
    message_id: str | None = Field(
        default=None, alias="messageId", max_length=MAX_MESSAGE_ID_LENGTH
    )
    timestamp: IsoDateTime | None = None
    sent_at: IsoDateTime | None = Field(default=None, alias="sentAt")
    original_timestamp: IsoDateTime | None = Field(default=None, alias="originalTimestamp")
    context: Context | None = None
    integrations: JsonObject | None = None
    # Segment's top-level channel ("server", "browser", "mobile").
    channel: str | None = None

    def identity_problems(self) -> list[FieldProblem]:
        """Rules pydantic cannot express per field: who the call is about."""
        if not (_present(self.user_id) or _present(self.anonymous_id)):
            return [FieldProblem("userId", "userId or anonymousId is required")]
        return []


class TrackMessage(SegmentMessage):
    call_type: ClassVar[CallType] = CallType.TRACK
    model_config = ConfigDict(json_schema_extra=_schema())

    # At least one character that is not NUL (NUL is stripped).
    event: str = Field(min_length=1, pattern="[^\\u0000]")
    properties: JsonObject | None = None


class IdentifyMessage(SegmentMessage):
    call_type: ClassVar[CallType] = CallType.IDENTIFY
    model_config = ConfigDict(json_schema_extra=_schema())

    traits: JsonObject | None = None


class PageMessage(SegmentMessage):
    call_type: ClassVar[CallType] = CallType.PAGE
    model_config = ConfigDict(json_schema_extra=_schema())

    name: str | None = None
    category: str | None = None
    properties: JsonObject | None = None


class ScreenMessage(SegmentMessage):
    call_type: ClassVar[CallType] = CallType.SCREEN
    model_config = ConfigDict(json_schema_extra=_schema())

    name: str | None = None
    category: str | None = None
    properties: JsonObject | None = None


class AliasMessage(SegmentMessage):
    call_type: ClassVar[CallType] = CallType.ALIAS
    model_config = ConfigDict(
        json_schema_extra=_schema(who=False, required_ids=("previousId", "userId"))
    )

    previous_id: IdText | None = Field(default=None, alias="previousId")

    def identity_problems(self) -> list[FieldProblem]:
        problems = []
        if not _present(self.previous_id):
            problems.append(FieldProblem("previousId", "previousId is required for alias"))
        if not _present(self.user_id):
            problems.append(FieldProblem("userId", "userId is required for alias"))
        return problems


class GroupMessage(SegmentMessage):
    call_type: ClassVar[CallType] = CallType.GROUP
    model_config = ConfigDict(json_schema_extra=_schema(required_ids=("groupId",)))

    group_id: IdText | None = Field(default=None, alias="groupId")
    # Traits of the group (company), not of the person: never identifiers.
    traits: JsonObject | None = None

    def identity_problems(self) -> list[FieldProblem]:
        problems = super().identity_problems()
        if not _present(self.group_id):
            problems.append(FieldProblem("groupId", "groupId is required for group"))
        return problems


MESSAGE_MODELS: dict[CallType, type[SegmentMessage]] = {
    m.call_type: m
    for m in (
        TrackMessage,
        IdentifyMessage,
        PageMessage,
        ScreenMessage,
        AliasMessage,
        GroupMessage,
    )
}


class BatchItemType(SegmentModel):
    type: Literal["track", "identify", "page", "screen", "alias", "group"]


def batch_items_schema(ref_prefix: str) -> dict[str, Any]:
    """Each batch item is the call of its ``type`` (the routes' own schemas,
    found under ``ref_prefix``); for the OpenAPI document."""
    return {
        "anyOf": [
            {
                "allOf": [
                    {"$ref": f"{ref_prefix}{model.__name__}"},
                    {"required": ["type"], "properties": {"type": {"const": t.value}}},
                ]
            }
            for t, model in MESSAGE_MODELS.items()
        ]
        + [
            {
                "description": "Anything else is accepted with the request and rejected "
                "alone (listed in `rejections`, not stored)."
            }
        ]
    }


class BatchRequest(SegmentModel):
    """``/v1/batch``: ``context`` and ``integrations`` here apply to every item
    (an item's own keys win), ``sentAt`` to items without their own."""

    # Items are checked one by one (a bad item is rejected alone).
    batch: list[Any] = Field(
        description="The calls, each with its `type`. An item that is not a valid call is "
        "rejected alone: the answer is still 200 and lists it in `rejections`."
    )
    context: JsonObject | None = None
    integrations: JsonObject | None = None
    sent_at: IsoDateTime | None = Field(default=None, alias="sentAt")


def _present(value: str | None) -> bool:
    return value is not None and value.strip() != ""


def problems_from(exc: ValidationError, prefix: str = "") -> list[FieldProblem]:
    """Pydantic errors as Segment-style field paths (``batch[3].context.traits``)."""
    problems = []
    for err in exc.errors():
        path = ""
        for part in err["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        reason = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "missing":
            reason = "is required"
        problems.append(FieldProblem(join_path(prefix, path), reason))
    return problems


def parse_message(call_type: CallType, data: object, prefix: str = "") -> SegmentMessage:
    """Validate one call; raises InvalidRequest listing every problem found."""
    if not isinstance(data, dict):
        raise InvalidRequest.one(prefix or "body", "must be a JSON object")
    data, unusable = sanitize(data)
    if unusable:
        raise InvalidRequest([FieldProblem(join_path(prefix, p.field), p.reason) for p in unusable])
    model = MESSAGE_MODELS[call_type]
    try:
        message = model.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(problems_from(exc, prefix)) from None
    problems = message.identity_problems()
    if problems:
        raise InvalidRequest([FieldProblem(join_path(prefix, p.field), p.reason) for p in problems])
    return message


def parse_batch(data: object) -> BatchRequest:
    """Validate the envelope of ``/v1/batch`` (items are checked one by one later)."""
    if not isinstance(data, dict):
        raise InvalidRequest.one("body", "must be a JSON object")
    try:
        return BatchRequest.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(problems_from(exc)) from None


def batch_item_type(item: JsonObject, prefix: str) -> CallType:
    """The item's ``type`` (``track``, ``identify`` ...)."""
    try:
        return CallType(BatchItemType.model_validate(item).type)
    except ValidationError as exc:
        raise InvalidRequest(problems_from(exc, prefix)) from None


def with_batch_defaults(item: JsonObject, batch: BatchRequest) -> JsonObject:
    """Apply the batch-level context, integrations and sentAt to one item."""
    merged = dict(item)
    for key, shared in (("context", batch.context), ("integrations", batch.integrations)):
        own = item.get(key)
        if shared and own is None:
            merged[key] = dict(shared)
        elif shared and isinstance(own, dict):
            merged[key] = {**shared, **own}
        # Anything else is the item's own (possibly invalid) value, left for validation.
    if batch.sent_at is not None and "sentAt" not in item:
        merged["sentAt"] = batch.sent_at.isoformat()
    return merged
