"""The one server interceptor every cxloop gRPC server runs
(:class:`CxServerInterceptor`): tracing, logging, bearer-token auth and
domain-error mapping, in that order from the outside in.

Error mapping sits innermost so the log record and the span see the final
status code of every call, including refused (UNAUTHENTICATED) ones, and all
of it runs inside the span, so log lines carry its trace id.

Only asyncio servicers are supported. Response-streaming behaviours are always
re-wrapped as async generators.
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, NoReturn

import grpc
import grpc.aio
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from cxloop_libs import errors

# grpc ships no type stubs, so its classes are Any to mypy; these aliases keep
# the signatures readable without pretending to more precision than we have.
Context = Any
UnaryBehavior = Callable[[Any, Context], Awaitable[Any]]
StreamBehavior = Callable[[Any, Context], AsyncIterator[Any]]
Continuation = Callable[[Any], Awaitable[Any]]

_AUTH_FAILED = "missing or invalid bearer token"
NOT_READY = "service starting: not ready to serve yet, retry"
UNGATED_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

_log = logging.getLogger("cxloop.grpc")


async def _iterate(
    behavior: Callable[..., Any], request: Any, context: Context
) -> AsyncIterator[Any]:
    result = behavior(request, context)
    if inspect.isawaitable(result):
        # A write-style handler sends through context.write and returns None.
        await result
        return
    if hasattr(result, "__aiter__"):
        async for response in result:
            yield response
    else:
        for response in result:
            yield response


def _rewrap(
    handler: Any,
    wrap_unary: Callable[[Callable[..., Any]], UnaryBehavior],
    wrap_stream: Callable[[Callable[..., Any]], StreamBehavior],
) -> Any:
    """The same RPC method handler with its behaviour wrapped, whatever its kind."""
    kwargs = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(wrap_stream(handler.stream_stream), **kwargs)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(wrap_unary(handler.stream_unary), **kwargs)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(wrap_stream(handler.unary_stream), **kwargs)
    return grpc.unary_unary_rpc_method_handler(wrap_unary(handler.unary_unary), **kwargs)


def current_trace_id() -> str:
    """Trace id of the active span, or a fresh id so an error reference still
    matches exactly one log line when tracing is off."""
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        return format(ctx.trace_id, "032x")
    return uuid.uuid4().hex


def _final_code(context: Context, default: Any) -> Any:
    try:
        code = context.code()
    except Exception:  # older or proxied contexts may not offer code()
        return default
    if code is None:
        return default
    if isinstance(code, grpc.StatusCode):
        return code
    # The Cython context reports the raw integer once set.
    return _STATUS_BY_NUMBER.get(code, default)


_STATUS_BY_NUMBER: dict[int, Any] = {status.value[0]: status for status in grpc.StatusCode}


def bearer_token(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    """The token of the first ``authorization: Bearer <token>`` entry, if any."""
    for key, value in metadata or ():
        if key.lower() != "authorization":
            continue
        text = value.decode("latin-1") if isinstance(value, bytes) else value
        scheme, _, token = text.strip().partition(" ")
        # RFC 6750: the scheme name is case-insensitive.
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return None
    return None


# Order matters only if one error class ever subclasses another; first match wins.
_STATUS_BY_ERROR: tuple[tuple[type[errors.CxError], Any], ...] = (
    (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
    (errors.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
)


def status_of(exc: BaseException) -> Any:
    """The status a cxloop error answers with (a ``grpc.StatusCode``), or
    None for any other exception: for an RPC that reports the status of each
    of its parts (a combined read) as their own RPCs would have."""
    for error_type, code in _STATUS_BY_ERROR:
        if isinstance(exc, error_type):
            return code
    return None


def _metadata_safe(value: str) -> bool:
    # gRPC metadata values (non -bin keys) must be printable ASCII.
    return value.isascii() and value.isprintable()


class CxServerInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Tracing, logging, bearer-token auth and error mapping in one wrapper.

    Per call, in this order: a SERVER span (parent from the caller's
    ``traceparent``; named ``/package.Service/Method`` with the ``rpc.*``
    attributes, as OpenTelemetry's gRPC instrumentation names them), the
    auth check, the behaviour, domain errors mapped to status codes (anything
    else becomes INTERNAL with the trace id), then one log record with the
    final code and the span's status.

    The wrapped method handler is built once per method and reused: grpc
    asks every interceptor for the handler on every call, and four stacked
    interceptors rebuilding closures per call cost more CPU than the
    servicer's own work on a fast path (docs/adr/0022-one-grpc-interceptor.md).
    """

    def __init__(
        self,
        *,
        accepted_tokens: frozenset[str],
        require_auth: bool,
        unauthenticated_methods: frozenset[str],
        untraced_prefixes: tuple[str, ...] = ("/grpc.health.v1.Health/",),
        logger: logging.Logger | None = None,
        ready: Callable[[], bool] | None = None,
        ungated_prefixes: tuple[str, ...] = UNGATED_PREFIXES,
    ) -> None:
        self._tokens = tuple(t.encode() for t in accepted_tokens)
        # Until ``ready()`` is true (the service's database migrated), every
        # call but health and reflection is answered UNAVAILABLE: the server
        # listens from the first moment (orchestrators see a live process),
        # but a call that reached a table not created yet failed as INTERNAL.
        self._ready = ready
        self._ungated = ungated_prefixes
        self._require_auth = require_auth
        self._open_methods = unauthenticated_methods
        self._untraced = untraced_prefixes
        self._logger = logger or _log
        self._tracer = trace.get_tracer("cxloop.grpc")
        self._wrapped: dict[str, tuple[Any, Any]] = {}

    # -- auth ---------------------------------------------------------------
    def is_authorized(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> bool:
        token = bearer_token(metadata)
        if token is None:
            return False
        presented = token.encode()
        # Compare against every token, without short-circuit, so the time
        # taken says nothing about which (or whether any) token is close.
        matched = False
        for accepted in self._tokens:
            matched |= hmac.compare_digest(presented, accepted)
        return matched

    async def intercept_service(self, continuation: Continuation, handler_call_details: Any) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method: str = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        call = _Call(self, method)
        wrapped = _rewrap(handler, call.unary, call.stream)
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    # -- error mapping ------------------------------------------------------
    async def abort_for(self, method: str, exc: Exception, context: Context) -> NoReturn:
        code = status_of(exc)
        if code is not None:
            trailing: tuple[tuple[str, str], ...] = ()
            if isinstance(exc, errors.InvalidArgument) and _metadata_safe(exc.field):
                trailing = (("cx-field", exc.field),)
            await context.abort(code, str(exc), trailing)
            raise AssertionError("context.abort returned")
        if isinstance(exc, NotImplementedError):
            # Generated base servicers raise it for RPCs a service does not offer yet.
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "method not implemented")
            raise AssertionError("context.abort returned")
        trace_id = current_trace_id()
        # The message and traceback stay in our logs: they can name tables,
        # hosts or customer data the caller must not see.
        self._logger.error(
            "unhandled error in %s (trace %s)",
            method,
            trace_id,
            exc_info=exc,
            extra={"method": method, "error_trace_id": trace_id},
        )
        await context.abort(grpc.StatusCode.INTERNAL, f"internal error (trace {trace_id})")
        raise AssertionError("context.abort returned")

    # -- logging ------------------------------------------------------------
    def record(self, method: str, code: Any, started: float) -> None:
        elapsed = time.perf_counter() - started
        _rpc_duration().record(elapsed, {"rpc_method": method, "grpc_code": code.name})
        level = logging.DEBUG if code == grpc.StatusCode.OK else logging.WARNING
        if self._logger.isEnabledFor(level):
            duration_ms = round(elapsed * 1000, 2)
            self._logger.log(
                level,
                "grpc %s %s %.2fms",
                method,
                code.name,
                duration_ms,
                extra={"method": method, "code": code.name, "duration_ms": duration_ms},
            )


_RPC_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_rpc_histogram: Any = None


def _rpc_duration() -> Any:
    """``cxloop_rpc_server_duration_seconds`` by method and status code: the
    p99 per RPC of the dashboard and the error-rate alert (deploy/observability)."""
    global _rpc_histogram
    if _rpc_histogram is None:
        from opentelemetry import metrics

        _rpc_histogram = metrics.get_meter("cxloop.grpc").create_histogram(
            "cxloop_rpc_server_duration_seconds",
            unit="s",
            description="gRPC calls served, by method and status code.",
            explicit_bucket_boundaries_advisory=_RPC_BUCKETS_S,
        )
    return _rpc_histogram


_TRACE_HEADERS = ("traceparent", "tracestate", "baggage")


def _trace_carrier(metadata: Iterable[tuple[str, str | bytes]] | None) -> dict[str, str]:
    carrier: dict[str, str] = {}
    for key, value in metadata or ():
        if key in _TRACE_HEADERS and isinstance(value, str):
            carrier[key] = value
    return carrier


class _Call:
    """The per-method part of :class:`CxServerInterceptor`: everything that
    does not depend on the call is computed here once."""

    def __init__(self, owner: CxServerInterceptor, method: str) -> None:
        self.owner = owner
        self.method = method
        service, _, name = method.lstrip("/").partition("/")
        self.traced = not method.startswith(owner._untraced)
        self.check_auth = owner._require_auth and method not in owner._open_methods
        self.ready = None if method.startswith(owner._ungated) else owner._ready
        self.attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}

    def _start(self, context: Context) -> tuple[Any, Any]:
        if not self.traced:
            return None, None
        metadata = context.invocation_metadata()
        parent = propagate.extract(_trace_carrier(metadata)) if metadata else None
        span = self.owner._tracer.start_span(
            self.method, context=parent, kind=SpanKind.SERVER, attributes=self.attributes
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        return span, token

    def _finish(self, span: Any, token: Any, code: Any, started: float) -> None:
        self.owner.record(self.method, code, started)
        if span is None:
            return
        span.set_attribute("rpc.grpc.status_code", code.value[0])
        if code != grpc.StatusCode.OK:
            span.set_status(Status(StatusCode.ERROR, code.name))
        otel_context.detach(token)
        span.end()

    async def _not_ready(self, context: Context) -> NoReturn:
        await context.abort(grpc.StatusCode.UNAVAILABLE, NOT_READY)
        raise AssertionError("context.abort returned")

    async def _refuse(self, context: Context) -> NoReturn:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, _AUTH_FAILED)
        raise AssertionError("context.abort returned")

    def unary(self, behavior: Callable[..., Any]) -> UnaryBehavior:
        async def call(request: Any, context: Context) -> Any:
            started = time.perf_counter()
            span, token = self._start(context)
            code = grpc.StatusCode.UNKNOWN
            try:
                if self.check_auth and not self.owner.is_authorized(context.invocation_metadata()):
                    await self._refuse(context)
                if self.ready is not None and not self.ready():
                    await self._not_ready(context)
                try:
                    response = behavior(request, context)
                    if inspect.isawaitable(response):
                        response = await response
                except (grpc.aio.AbortError, asyncio.CancelledError):
                    raise
                except Exception as exc:
                    if span is not None:
                        span.record_exception(exc)
                    await self.owner.abort_for(self.method, exc, context)
                code = _final_code(context, grpc.StatusCode.OK)
                return response
            except grpc.aio.AbortError:
                code = _final_code(context, grpc.StatusCode.UNKNOWN)
                raise
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED
                raise
            finally:
                self._finish(span, token, code, started)

        return call

    def stream(self, behavior: Callable[..., Any]) -> StreamBehavior:
        async def call(request: Any, context: Context) -> AsyncIterator[Any]:
            started = time.perf_counter()
            span, token = self._start(context)
            code = grpc.StatusCode.UNKNOWN
            try:
                if self.check_auth and not self.owner.is_authorized(context.invocation_metadata()):
                    await self._refuse(context)
                if self.ready is not None and not self.ready():
                    await self._not_ready(context)
                try:
                    async for response in _iterate(behavior, request, context):
                        yield response
                except (grpc.aio.AbortError, asyncio.CancelledError, GeneratorExit):
                    raise
                except Exception as exc:
                    if span is not None:
                        span.record_exception(exc)
                    await self.owner.abort_for(self.method, exc, context)
                code = _final_code(context, grpc.StatusCode.OK)
            except grpc.aio.AbortError:
                code = _final_code(context, grpc.StatusCode.UNKNOWN)
                raise
            except (asyncio.CancelledError, GeneratorExit):
                code = grpc.StatusCode.CANCELLED
                raise
            finally:
                self._finish(span, token, code, started)

        return call
