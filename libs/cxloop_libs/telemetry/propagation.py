"""W3C trace context across NATS: headers on publish, a parent context on
consume, and a plain ``traceparent`` string the outbox stores with each row so
the relay can publish under the span that wrote the event."""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

# The outbox column holds exactly a W3C traceparent, whatever OTEL_PROPAGATORS
# says, so the stored form never depends on the environment of the writer.
_W3C = TraceContextTextMapPropagator()


class _HeaderGetter(Getter[Mapping[str, str]]):
    """Header lookup that also accepts other casings: some NATS clients (older
    nats.go) canonicalise header names to ``Traceparent``."""

    def get(self, carrier: Mapping[str, str], key: str) -> list[str] | None:
        value = carrier.get(key)
        if value is None:
            wanted = key.lower()
            value = next((v for k, v in carrier.items() if k.lower() == wanted), None)
        return None if value is None else [value]

    def keys(self, carrier: Mapping[str, str]) -> list[str]:
        return list(carrier)


_GETTER = _HeaderGetter()


def inject_headers(headers: dict[str, str], context: Context | None = None) -> dict[str, str]:
    """Add ``traceparent`` (and ``tracestate``) of ``context``, default the current one."""
    propagate.inject(headers, context=context)
    return headers


def extract_context(headers: Mapping[str, str] | None) -> Context:
    """Parent context from NATS message headers; an empty context when there is none."""
    return propagate.extract(headers or {}, getter=_GETTER)


def current_traceparent() -> str:
    """The current span as a W3C ``traceparent``, or ``""`` when no valid span is active."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    return carrier.get("traceparent", "")


def traceparent_of(span: trace.Span) -> str:
    """``span`` as a W3C ``traceparent`` (``""`` for an invalid span), without
    going through a propagator and a context: for per-event hot paths."""
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return ""
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def context_from_traceparent(traceparent: str) -> Context:
    """Rebuild a parent context from a stored ``traceparent``; empty if it is blank or invalid.

    Always built from an empty context, so a bad stored value makes the relay's
    span a new root instead of silently parenting it to whatever is current.
    """
    return _W3C.extract({"traceparent": traceparent}, context=Context())
