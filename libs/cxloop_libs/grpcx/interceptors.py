"""Server interceptors every cxloop gRPC server runs, outermost first after tracing:
logging, then auth, then error mapping.

The order matters: error mapping sits innermost so the logging interceptor sees
the final status code of every call, including refused (UNAUTHENTICATED) ones,
and all of them run inside the tracing span, so log lines carry its trace id.

Only asyncio servicers are supported. Response-streaming behaviours are always
re-wrapped as async generators because the OpenTelemetry interceptor outside
us iterates them with ``async for``.
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
from opentelemetry import trace

from cxloop_libs import errors

# grpc ships no type stubs, so its classes are Any to mypy; these aliases keep
# the signatures readable without pretending to more precision than we have.
Context = Any
UnaryBehavior = Callable[[Any, Context], Awaitable[Any]]
StreamBehavior = Callable[[Any, Context], AsyncIterator[Any]]
Continuation = Callable[[Any], Awaitable[Any]]

_AUTH_FAILED = "missing or invalid bearer token"

_log = logging.getLogger("cxloop.grpc")


async def _call_unary(behavior: Callable[..., Any], request: Any, context: Context) -> Any:
    result = behavior(request, context)
    if inspect.isawaitable(result):
        return await result
    return result


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
    for status in grpc.StatusCode:
        if status.value[0] == code:
            return status
    return default


class LoggingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """One log record per call: DEBUG when it succeeded, WARNING otherwise.

    Fields go in ``extra`` (method, code, duration_ms) so the JSON formatter
    emits them as keys; no request content is logged, it may hold PII.
    """

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._logger = logger or _log

    async def intercept_service(self, continuation: Continuation, handler_call_details: Any) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method: str = handler_call_details.method
        return _rewrap(
            handler,
            lambda behavior: self._unary(method, behavior),
            lambda behavior: self._stream(method, behavior),
        )

    def _record(self, method: str, code: Any, started: float) -> None:
        duration_ms = round((time.perf_counter() - started) * 1000, 2)
        level = logging.DEBUG if code == grpc.StatusCode.OK else logging.WARNING
        if self._logger.isEnabledFor(level):
            self._logger.log(
                level,
                "grpc %s %s %.2fms",
                method,
                code.name,
                duration_ms,
                extra={"method": method, "code": code.name, "duration_ms": duration_ms},
            )

    def _unary(self, method: str, behavior: Callable[..., Any]) -> UnaryBehavior:
        async def logged(request: Any, context: Context) -> Any:
            started = time.perf_counter()
            code = grpc.StatusCode.UNKNOWN
            try:
                response = await _call_unary(behavior, request, context)
                code = _final_code(context, grpc.StatusCode.OK)
                return response
            except grpc.aio.AbortError:
                code = _final_code(context, grpc.StatusCode.UNKNOWN)
                raise
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED
                raise
            finally:
                self._record(method, code, started)

        return logged

    def _stream(self, method: str, behavior: Callable[..., Any]) -> StreamBehavior:
        async def logged(request: Any, context: Context) -> AsyncIterator[Any]:
            started = time.perf_counter()
            code = grpc.StatusCode.UNKNOWN
            try:
                async for response in _iterate(behavior, request, context):
                    yield response
                code = _final_code(context, grpc.StatusCode.OK)
            except grpc.aio.AbortError:
                code = _final_code(context, grpc.StatusCode.UNKNOWN)
                raise
            except (asyncio.CancelledError, GeneratorExit):
                code = grpc.StatusCode.CANCELLED
                raise
            finally:
                self._record(method, code, started)

        return logged


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


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Refuses calls without an accepted bearer token, except to open methods
    (health and reflection) that probes and tooling reach without secrets."""

    def __init__(
        self,
        *,
        accepted_tokens: frozenset[str],
        require_auth: bool,
        unauthenticated_methods: frozenset[str],
    ) -> None:
        self._tokens = tuple(t.encode() for t in accepted_tokens)
        self._require_auth = require_auth
        self._open_methods = unauthenticated_methods

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
        # Resolve the handler first: the refusal must have the same streaming
        # shape and serializers as the real method for the server to send it.
        handler = await continuation(handler_call_details)
        if handler is None or not self._require_auth:
            return handler
        if handler_call_details.method in self._open_methods:
            return handler
        if self.is_authorized(handler_call_details.invocation_metadata):
            return handler
        return _rewrap(handler, lambda _b: _refuse_unary, lambda _b: _refuse_stream)


async def _refuse_unary(request: Any, context: Context) -> NoReturn:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, _AUTH_FAILED)
    raise AssertionError("context.abort returned")


async def _refuse_stream(request: Any, context: Context) -> AsyncIterator[Any]:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, _AUTH_FAILED)
    # Unreachable; the yield makes this an async generator like the behaviour it replaces.
    yield None


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


def _metadata_safe(value: str) -> bool:
    # gRPC metadata values (non -bin keys) must be printable ASCII.
    return value.isascii() and value.isprintable()


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Turns domain errors into status codes so servicers stay thin, and hides
    everything else behind INTERNAL with a trace id the operator can look up."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._logger = logger or _log

    async def intercept_service(self, continuation: Continuation, handler_call_details: Any) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method: str = handler_call_details.method
        return _rewrap(
            handler,
            lambda behavior: self._unary(method, behavior),
            lambda behavior: self._stream(method, behavior),
        )

    def _unary(self, method: str, behavior: Callable[..., Any]) -> UnaryBehavior:
        async def mapped(request: Any, context: Context) -> Any:
            try:
                return await _call_unary(behavior, request, context)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await self._abort(method, exc, context)

        return mapped

    def _stream(self, method: str, behavior: Callable[..., Any]) -> StreamBehavior:
        async def mapped(request: Any, context: Context) -> AsyncIterator[Any]:
            try:
                async for response in _iterate(behavior, request, context):
                    yield response
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await self._abort(method, exc, context)

        return mapped

    async def _abort(self, method: str, exc: Exception, context: Context) -> NoReturn:
        for error_type, code in _STATUS_BY_ERROR:
            if isinstance(exc, error_type):
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
