"""Streams: one per owning service, plus the dead-letter stream."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

log = logging.getLogger(__name__)

DAY_S = 86_400.0


@dataclass(frozen=True, slots=True)
class StreamSpec:
    name: str
    subjects: list[str] = field(default_factory=list)
    # Interactions are personal data: the stream keeps them no longer than the
    # retention policy allows: 30 days until the policy sets it (docs/adr/0019).
    max_age_s: float = 30 * DAY_S
    duplicate_window_s: float = 120.0
    # Set when the retention policy manages the age (cxloop_libs.privacy.
    # retention): an existing stream keeps the age the policy gave it instead
    # of being reset to ``max_age_s`` on every start (docs/adr/0019).
    keep_existing_max_age: bool = False

    def config(self) -> StreamConfig:
        return StreamConfig(
            name=self.name,
            subjects=list(self.subjects),
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            max_age=self.max_age_s,
            duplicate_window=self.duplicate_window_s,
        )


@dataclass(frozen=True, slots=True)
class KeyValueBucketSpec(StreamSpec):
    """The stream behind a JetStream key-value bucket (``KV_<bucket>``), in
    the shape ``js.key_value()`` accepts: one value per key, kept until it is
    replaced (no age limit), written only by puts."""

    bucket: str = ""

    def config(self) -> StreamConfig:
        return StreamConfig(
            name=self.name,
            subjects=[f"$KV.{self.bucket}.>"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.NEW,
            max_msgs_per_subject=1,
            max_age=0,
            allow_rollup_hdrs=True,
            deny_delete=True,
            allow_direct=True,
            duplicate_window=self.duplicate_window_s,
        )


def stream_for(domain: str) -> StreamSpec:
    return StreamSpec(name=domain.upper(), subjects=[f"cx.{domain}.>"])


DEAD_LETTER = StreamSpec(name="DEADLETTER", subjects=["dlq.>"], max_age_s=90 * DAY_S)


def dead_letter_subject(consumer: str, original_subject: str) -> str:
    return f"dlq.{consumer}.{original_subject}"


async def ensure_stream(
    js: JetStreamContext, spec: StreamSpec, replicas: int | None = None
) -> None:
    """Create the stream, or bring an existing one to the spec (idempotent).

    ``replicas`` (CXLOOP_NATS_STREAM_REPLICAS): a new stream gets that many
    (1 when None). An existing one keeps its replicas when None — a service
    restart never undoes an operator's ``nats stream edit --replicas`` — and
    is changed, with a log line, when a different number is configured.
    """
    cfg = spec.config()
    cfg.num_replicas = replicas or 1
    try:
        info = await js.stream_info(spec.name)
    except NotFoundError:
        await js.add_stream(cfg)
        log.info("stream created", extra={"stream": spec.name, "replicas": cfg.num_replicas})
        return
    current = info.config.num_replicas or 1
    if replicas is None:
        cfg.num_replicas = current
    elif replicas != current:
        log.warning(
            "stream replicas changed",
            extra={"stream": spec.name, "from_replicas": current, "to_replicas": replicas},
        )
    if spec.keep_existing_max_age and info.config.max_age is not None:
        cfg.max_age = info.config.max_age
    await js.update_stream(cfg)


async def set_stream_max_age(js: JetStreamContext, name: str, max_age_s: float) -> bool:
    """Give an existing stream a new ``max_age`` (messages older than it are
    removed by the server at once); False if it already had that age."""
    info = await js.stream_info(name)
    cfg = info.config
    if cfg.max_age is not None and abs(cfg.max_age - max_age_s) < 1e-3:
        return False
    cfg.max_age = max_age_s
    await js.update_stream(cfg)
    log.info("stream max age set", extra={"stream": name, "max_age_s": max_age_s})
    return True
