"""The host-service framework: declare a service's functions once, get the guest->host plumbing for free.

A service module holds only behaviour: a list of :class:`HostFunction` (import name, request and
response message types, handler). :func:`dispatch` does what every ``env.<fn>`` import does in the
original (abi.md §5): read the request from guest memory, decode it, run the handler, encode the
response, allocate it through the guest's ``malloc`` re-entrantly and return ``ptr<<32 | len``.

Failures the original turned into a panic (a *hard error*: bad request pointer, undecodable request,
``malloc`` failure, a service that reports a hard error) raise :class:`HostHardError`; wasmtime turns
the exception into a trap that aborts the plugin's export call, which the runtime reports as
``PluginTrap`` naming the host function.
"""

from __future__ import annotations

import json
import logging
import threading
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Literal, NamedTuple, Protocol, TypeVar

from google.protobuf.message import DecodeError, Message

from pytest_wasmhost.abi.memory import (
    GuestAccess,
    malloc_no_value_error,
    malloc_zero_error,
    outside_error,
)
from pytest_wasmhost.clock import Clock, host_monotonic
from pytest_wasmhost.errors import AbiError, CallbackFailed, HostLimitWarning, WasmHostError
from pytest_wasmhost.manifest import Manifest

log = logging.getLogger("pytest_wasmhost.host.base")

# Import names per service, in the original's link order (runtime.md §6; abi.md §5 "Host import names").
SERVICE_FUNCTIONS: Mapping[str, tuple[str, ...]] = {
    "config": ("get_plugin_config",),
    "scheduler": ("schedule_one_time", "schedule_recurring", "cancel_schedule", "time_now"),
    "cache": (
        "set_string",
        "get_string",
        "set_int",
        "get_int",
        "set_float",
        "get_float",
        "set_bytes",
        "get_bytes",
        "remove",
        "has",
    ),
    "artwork": ("get_artist_url", "get_album_url", "get_track_url"),
    "http": ("get", "post", "put", "delete", "patch", "head", "options"),
    "websocket": ("connect", "send_text", "send_binary", "close"),
    "subsonicapi": ("call",),
}

HOST_MODULE = "env"

_FUNCTION_SERVICE: dict[str, str] = {fn: svc for svc, fns in SERVICE_FUNCTIONS.items() for fn in fns}


def service_of(function: str) -> str | None:
    """The service (= manifest permission key) that provides ``env.<function>``, if any."""
    return _FUNCTION_SERVICE.get(function)


# Example URL patterns for a grant hint: http and websocket need allowedUrls to be a valid manifest.
_EXAMPLE_HTTP_PATTERN = "https://api.example.com/*"
_EXAMPLE_WEBSOCKET_PATTERN = "wss://api.example.com/*"


def grant_snippet(service: str, imported: Iterable[str] = ()) -> str:
    """The ``permissions`` entry granting ``service``, valid as written: ``"config": {"reason": "..."}``.

    http and websocket get an example ``allowedUrls`` (the validator requires one); http lists the
    methods of the ``env`` functions in ``imported`` (``post`` -> POST), GET when there are none.
    """
    entry: dict[str, object] = {"reason": "..."}
    if service == "http":
        names = set(imported)
        methods = [fn.upper() for fn in SERVICE_FUNCTIONS["http"] if fn in names] or ["GET"]
        entry["allowedUrls"] = {_EXAMPLE_HTTP_PATTERN: methods}
    elif service == "websocket":
        entry["allowedUrls"] = [_EXAMPLE_WEBSOCKET_PATTERN]
    return f"{json.dumps(service)}: {json.dumps(entry)}"


def grant_fix(service: str, imported: Iterable[str] = ()) -> str:
    """The fix for an import of an ungranted service: the entry to add, and where."""
    fix = f'add {grant_snippet(service, imported)} under "permissions" in manifest.json'
    if service in ("http", "websocket"):
        fix += ", with the URL patterns the plugin connects to in place of the example"
    return fix + "."


class HostHardError(Exception):
    """A host function failed the way the original panicked: the plugin's whole export call aborts."""

    def __init__(self, service: str, function: str, message: str) -> None:
        self.service = service
        self.function = function
        self.message = message
        super().__init__(f"host function {HOST_MODULE}.{function} ({service}) failed: {message}")


Handler = Callable[[Any], Message]
Verdict = Literal["ok", "error", "denied", "hard-error"]


@dataclass(frozen=True, slots=True)
class HostFunction:
    """One ``env.<name>`` import: its service, message types and behaviour."""

    service: str
    name: str
    request_type: type[Message]
    response_type: type[Message]
    handler: Handler
    types: tuple[type[Message], type[Message]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Kept once: every transcript entry of this function points at it to decode its bytes later.
        object.__setattr__(self, "types", (self.request_type, self.response_type))


class HostService:
    """Base of every host service: a name (the permission key) and the functions it links.

    ``function_names`` lists what this version implements; the linker links exactly those (for a
    granted service). ``create`` builds the service for one plugin in one scope.
    """

    name: ClassVar[str] = ""
    function_names: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def create(cls, ctx: ServiceContext) -> HostService:
        raise NotImplementedError

    def functions(self) -> Sequence[HostFunction]:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the service holds (connections, timers). Called when its scope closes."""


class PluginCaller(Protocol):
    """Calls a capability export of a plugin in the same scope (scheduler and websocket callbacks)."""

    def __call__(self, plugin_id: str, export: str, request: Message) -> Any: ...


T = TypeVar("T")


class CallbackFailures:
    """The host-triggered callbacks of a scope that failed and nobody has reported yet. Thread-safe.

    Identical failures (same plugin, export, subject and error text) are kept once with a count, and at
    most ``LIMIT`` distinct ones (then only counted), so a production scope whose recurring job keeps
    failing stays small. The pytest layer takes them after each test (a warning, or a failure with
    strict callbacks); a test that provokes one on purpose may assert on them and ``clear()`` them.
    """

    LIMIT = 100

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: dict[tuple[str, str, str, str], list[Any]] = {}  # key -> [failure, count]
        self._more = 0

    def add(self, failure: CallbackFailed, count: int = 1) -> None:
        key = (failure.plugin_id or "", failure.export or "", failure.subject, str(failure))
        with self._lock:
            entry = self._kept.get(key)
            if entry is not None:
                entry[1] += count
            elif len(self._kept) < self.LIMIT:
                self._kept[key] = [failure, count]
            else:
                self._more += count

    def take(self) -> tuple[list[tuple[CallbackFailed, int]], int]:
        """Every pending failure with how often it happened, and how many more were only counted;
        they are no longer pending."""
        with self._lock:
            kept, more = [(f, n) for f, n in self._kept.values()], self._more
            self._kept, self._more = {}, 0
        return kept, more

    def absorb(self, other: CallbackFailures) -> None:
        """Take over what ``other`` holds (a scope nested in a test hands its failures to the test's)."""
        kept, more = other.take()
        for failure, count in kept:
            self.add(failure, count)
        with self._lock:
            self._more += more

    def clear(self) -> None:
        self.take()

    def __iter__(self) -> Iterator[CallbackFailed]:
        with self._lock:
            return iter([failure for failure, _ in self._kept.values()])

    def __len__(self) -> int:
        with self._lock:
            return len(self._kept) + (1 if self._more else 0)


class HostEnvironment:
    """Scope-wide host state shared by every plugin of one scope: transcript, backends, callbacks."""

    def __init__(
        self,
        *,
        clock: Clock,
        call_plugin: PluginCaller | None = None,
        options: ScopeOptions | None = None,
    ) -> None:
        if options is None:
            options = DefaultOptions()
        self.clock = clock
        self.call_plugin = call_plugin
        self.callback_failures = CallbackFailures()
        # This scope's settings, one frozen object per service (options.cache, ...); each service
        # documents what it reads. Backends a test steers live in shared().
        self.options = options
        self.transcript = Transcript.of(options.transcript)
        self._lock = threading.Lock()
        self._shared: dict[str, Any] = {}

    def shared(self, key: str, factory: Callable[[], T]) -> T:
        """The scope's single backend under ``key`` (e.g. the cache store), created on first use."""
        with self._lock:
            if key not in self._shared:
                self._shared[key] = factory()
            value: T = self._shared[key]
            return value

    def peek(self, key: str) -> Any:
        """The backend under ``key`` if one was created, else None (never creates one)."""
        with self._lock:
            return self._shared.get(key)

    def _backends(self) -> list[Any]:
        with self._lock:
            return list(self._shared.values())

    def callback_failed(
        self, *, plugin_id: str, service: str, export: str, subject: str, error: BaseException
    ) -> CallbackFailed:
        """Note that a callback the host triggered raised ``error`` (the caller logs and drops the event)."""
        if isinstance(error, WasmHostError):
            cause, fix = error.problem, error.fix
        else:
            cause, fix = str(error) or type(error).__name__, None
        failure = CallbackFailed(
            f"the host's callback for {subject} failed ({type(error).__name__}): {cause.rstrip('.')}. "
            "Like the original, the host only logged it and dropped the event.",
            plugin_id=plugin_id,
            export=export,
            service=service,
            subject=subject,
            cause=error,
            fix=fix,
        )
        self.callback_failures.add(failure)
        return failure

    def sweep(self) -> int:
        """Expire what the scope's backends hold (cache entries, ...); returns how many went."""
        return sum(int(b.sweep() or 0) for b in self._backends() if callable(getattr(b, "sweep", None)))

    def run_due(self) -> list[Any]:
        """Fire every scheduled job that is due by the clock; returns the firings in order."""
        fired: list[Any] = []
        for backend in self._backends():
            if callable(getattr(backend, "run_due", None)):
                fired.extend(backend.run_due())
        return fired

    def close(self) -> None:
        with self._lock:
            backends, self._shared = list(self._shared.values()), {}
        for backend in backends:
            close = getattr(backend, "close", None)
            if callable(close):
                close()


@dataclass(frozen=True, slots=True)
class ServiceContext:
    """What a service needs to know about the plugin it serves and the scope it lives in."""

    plugin_id: str
    manifest: Manifest
    config: Callable[[], Mapping[str, str]]
    env: HostEnvironment

    @property
    def clock(self) -> Clock:
        return self.env.clock


class Denied(Exception):
    """Raised by a handler when a per-call permission check refuses the call.

    The guest still gets ``response`` (the original answered with an ``error`` field, a soft error);
    the transcript records the verdict ``denied`` with ``reason`` and the ``rule`` that decided.
    """

    def __init__(self, response: Message, *, reason: str, rule: str | None = None) -> None:
        self.response = response
        self.reason = reason
        self.rule = rule
        super().__init__(reason)


class SoftError(Exception):
    """Raised by a handler to refuse a call through a response that has no ``error`` field.

    The guest gets ``response`` (``SetResponse(success=false)``, a ``ScheduleResponse`` without an id),
    which is all the original's wire can say; the transcript records verdict ``error`` with ``detail``.
    """

    def __init__(self, response: Message, detail: str) -> None:
        self.response = response
        self.detail = detail
        super().__init__(detail)


# -- memory caps: what the host keeps for plugins is bounded, per plugin and per scope ---------------------


@dataclass(frozen=True, slots=True)
class Cap:
    """One bound on what a host service keeps for plugins; set by ``HostOptions.<service>.<setting>``."""

    service: str
    setting: str
    limit: int
    unit: str  # what is counted: "entries", "bytes", "jobs", "connections"
    per_plugin: bool  # else: for all plugins of the scope together

    @property
    def option(self) -> str:
        return f"HostOptions.{self.service}.{self.setting}"

    def __str__(self) -> str:
        whose = "per plugin" if self.per_plugin else "for all plugins of the scope together"
        return f"{self.setting}={self.limit} ({self.unit} {whose}, {self.option})"

    def reached(self) -> str:
        """The end of a refusal text, as the plugin and the transcript read it."""
        return f"the host's cap {self} is reached"


def check_positive(owner: str, setting: str, value: object) -> None:
    """Refuse ``owner.setting = value`` unless it is a positive whole number (a cap or a limit)."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{owner}.{setting} must be a positive whole number, got {value!r}")


def check_choice(owner: str, setting: str, value: object, choices: Sequence[str]) -> None:
    """Refuse ``owner.setting = value`` unless it is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{owner}.{setting} must be one of {list(choices)}, got {value!r}")


class CapWarnings:
    """Warns the test (:class:`HostLimitWarning`) once per plugin and cap; each scope's backend owns one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._warned: set[tuple[str, str, str]] = set()

    def warn(self, plugin_id: str, cap: Cap, effect: str) -> None:
        key = (plugin_id, cap.service, cap.setting)
        with self._lock:
            if key in self._warned:
                return
            self._warned.add(key)
        message = (
            f"plugin {plugin_id!r} reached the host's {cap.service} cap {cap}: {effect}. Fix: raise "
            f"{cap.option} (Runtime(host_options=...) or scope(host_options=...)) if the plugin really needs "
            "more; otherwise find out why it keeps so much."
        )
        try:
            warnings.warn(message, HostLimitWarning, stacklevel=2)
        except Warning:
            # An "error" warnings filter: what the plugin is answered must not depend on the test's filters
            # (raising here would trap the guest), so the warning is logged instead.
            log.warning("%s", message)


class HostCall(NamedTuple):
    """One guest->host call as the transcript keeps it (immutable; a NamedTuple: one per host call).

    Host functions keep the request and response as the bytes that crossed the ABI, decoded only when
    ``request`` / ``response`` is read: decoded messages kept for every call cost more than serving
    it. Callbacks (scheduler, websocket, OnInit) keep the messages they built.
    """

    seq: int
    plugin_id: str
    service: str
    function: str
    request_kept: Message | bytes | None  # None when the request bytes could not be read
    response_kept: Message | bytes | None
    verdict: Verdict
    detail: str = ""  # the error text, the denial reason, or the hard error
    rule: str | None = None  # the permission rule that decided a denial
    duration: float = 0.0  # seconds spent in the host
    types: tuple[type[Message], type[Message]] | None = None  # for the kept bytes: request, response
    dropped: bool = False  # the payloads were let go: older than the transcript's payload_limit calls

    @property
    def request(self) -> Message | None:
        """The decoded request; None when it could not be read or decoded, or was dropped."""
        return _decoded(self.request_kept, self.types[0] if self.types else None)

    @property
    def response(self) -> Message | None:
        """The decoded response; None when there was none (a hard error), or it was dropped."""
        return _decoded(self.response_kept, self.types[1] if self.types else None)

    def __str__(self) -> str:
        text = f"#{self.seq} {self.plugin_id} {self.service}.{self.function} -> {self.verdict}"
        if self.detail:
            text += f": {self.detail}"
        if self.rule:
            text += f" [rule: {self.rule}]"
        return text + f" ({self.duration * 1000:.2f} ms)"


def _decoded(kept: Message | bytes | None, message_type: type[Message] | None) -> Message | None:
    if kept is None or isinstance(kept, Message):
        return kept
    if message_type is None:
        return None
    try:
        return message_type.FromString(kept)
    except DecodeError:
        return None


DEFAULT_TRANSCRIPT_CALLS = 20_000
DEFAULT_TRANSCRIPT_PAYLOADS = 4096


@dataclass(frozen=True, slots=True)
class TranscriptOptions:
    """How much of a scope's host calls the transcript keeps (``HostOptions.transcript``): the outlines of
    the newest ``max_calls`` and the payloads of the newest ``max_payloads``."""

    max_calls: int = DEFAULT_TRANSCRIPT_CALLS
    max_payloads: int = DEFAULT_TRANSCRIPT_PAYLOADS

    def __post_init__(self) -> None:
        check_positive("TranscriptOptions", "max_calls", self.max_calls)
        check_positive("TranscriptOptions", "max_payloads", self.max_payloads)


OptionsT = TypeVar("OptionsT")


class ScopeOptions(Protocol):
    """A scope's settings as the services read them: each service asks for its own options class.

    ``host/options.py``'s ``HostOptions`` composes every service's class and is what runtimes pass; this
    floor knows it only by this protocol, because the services (which define their classes) import it.
    """

    @property
    def transcript(self) -> TranscriptOptions: ...

    def of(self, kind: type[OptionsT]) -> OptionsT: ...


class DefaultOptions:
    """Every service's defaults: what ``HostOptions()`` holds, for an environment built without options."""

    transcript: Final = TranscriptOptions()

    def __init__(self) -> None:
        self._made: dict[type, object] = {}  # one object per class, as a HostOptions holds

    def of(self, kind: type[OptionsT]) -> OptionsT:
        made = self._made.get(kind)
        if made is None:
            made = self._made[kind] = kind()
        assert isinstance(made, kind)
        return made


class Transcript:
    """The host calls of a runtime scope, in order. Thread-safe; tests and reports read it.

    The newest ``call_limit`` calls keep their outline (plugin, function, verdict, detail, rule, duration),
    and the newest ``payload_limit`` of those their request and response payloads, so a long-lived scope's
    memory stays bounded (the production scope's transcript would otherwise grow by one entry per call
    forever) and a busy plugin does not pay for fresh memory on every host call. Calls keep their numbers
    (``seq``) when older ones go; :attr:`dropped` counts the outlines let go, a kept call whose payloads
    went reads as ``dropped``, and :meth:`functions_called` still lists the functions of dropped calls.
    """

    PAYLOAD_LIMIT = DEFAULT_TRANSCRIPT_PAYLOADS
    CALL_LIMIT = DEFAULT_TRANSCRIPT_CALLS

    def __init__(self, payload_limit: int = PAYLOAD_LIMIT, call_limit: int = CALL_LIMIT) -> None:
        if payload_limit <= 0 or call_limit <= 0:
            raise ValueError(f"transcript limits must be positive, got {payload_limit}, {call_limit}")
        self._lock = threading.Lock()
        # The newest call_limit outlines and the (request, response) of the newest payload_limit calls:
        # each deque drops its oldest itself, so the payloads line up with the last len(_payloads) calls.
        self._call_limit = call_limit
        self._calls: deque[tuple[Any, ...]] = deque(maxlen=call_limit)
        self._payloads: deque[tuple[Any, Any]] = deque(maxlen=min(payload_limit, call_limit))
        self._dropped = 0  # outlines let go; the first kept call is number _dropped + 1
        self._dropped_functions: set[tuple[str, str, str]] = set()  # (plugin, service, function)
        self._exports: dict[str, set[str]] = {}

    @classmethod
    def of(cls, options: TranscriptOptions) -> Transcript:
        return cls(payload_limit=options.max_payloads, call_limit=options.max_calls)

    def _drop_oldest(self) -> None:
        """The ring is full and one outline is about to go (lock held): count it, remember its function."""
        plugin_id, service, function = self._calls[0][:3]
        self._dropped += 1
        self._dropped_functions.add((plugin_id, service, function))

    def exports_of(self, plugin_id: str) -> set[str]:
        """The capability exports the host has called on ``plugin_id`` in this scope (a live set the
        plugin adds to: one set insertion per call, cheaper than a transcript entry)."""
        with self._lock:
            return self._exports.setdefault(plugin_id, set())

    def exports_called(self) -> dict[str, frozenset[str]]:
        """plugin id -> the capability exports called on it so far."""
        with self._lock:
            return {pid: frozenset(names) for pid, names in self._exports.items() if names}

    def record(
        self,
        *,
        plugin_id: str,
        service: str,
        function: str,
        request: Message | None,
        response: Message | None,
        verdict: Verdict,
        detail: str = "",
        rule: str | None = None,
        duration: float = 0.0,
    ) -> HostCall:
        """Add a call whose request and response are messages (callbacks, OnInit)."""
        outline = (plugin_id, service, function, verdict, detail, rule, duration, None)
        with self._lock:
            if len(self._calls) == self._call_limit:
                self._drop_oldest()
            self._calls.append(outline)
            self._payloads.append((request, response))
            seq = self._dropped + len(self._calls)
        return _host_call(seq, outline, (request, response))

    def add(
        self,
        plugin_id: str,
        fn: HostFunction,
        request: bytes | None,
        response: Message | bytes | None,
        verdict: Verdict,
        detail: str,
        rule: str | None,
        duration: float,
    ) -> None:
        """Add a host-function call as its ABI bytes (positional: this runs on every host call).

        Kept as plain tuples, numbered and made a :class:`HostCall` when read: building the
        NamedTuple here would cost more than the rest of recording."""
        outline = (plugin_id, fn.service, fn.name, verdict, detail, rule, duration, fn.types)
        lock = self._lock  # acquire/release: half the cost of ``with`` on this path
        lock.acquire()
        try:
            calls = self._calls
            if len(calls) == self._call_limit:
                self._drop_oldest()
            calls.append(outline)
            self._payloads.append((request, response))
        finally:
            lock.release()

    def calls(
        self, service: str | None = None, function: str | None = None, *, plugin_id: str | None = None
    ) -> list[HostCall]:
        """The kept calls (the newest ``call_limit``), filtered; numbered as they were recorded."""
        with self._lock:
            outlines, payloads, first_seq = list(self._calls), list(self._payloads), self._dropped + 1
        first_kept = len(outlines) - len(payloads)  # index of the oldest call whose payload is kept
        return [
            _host_call(first_seq + i, outline, payloads[i - first_kept] if i >= first_kept else None)
            for i, outline in enumerate(outlines)
            if (plugin_id is None or outline[0] == plugin_id)
            and (service is None or outline[1] == service)
            and (function is None or outline[2] == function)
        ]

    @property
    def dropped(self) -> int:
        """How many of the oldest calls' outlines were let go (only the newest ``call_limit`` are kept)."""
        with self._lock:
            return self._dropped

    @property
    def total(self) -> int:
        """Every call recorded since the scope began (or the last :meth:`clear`), kept or dropped."""
        with self._lock:
            return self._dropped + len(self._calls)

    def functions_called(self) -> set[tuple[str, str, str]]:
        """(plugin id, service, function) of every call recorded, including those whose outline went."""
        with self._lock:
            seen = set(self._dropped_functions)
            seen.update((o[0], o[1], o[2]) for o in self._calls)
        return seen

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()
            self._payloads.clear()
            self._dropped = 0
            self._dropped_functions.clear()
            for names in self._exports.values():
                names.clear()

    def __len__(self) -> int:
        """The calls kept (see :attr:`total` for all of them)."""
        with self._lock:
            return len(self._calls)

    def __iter__(self) -> Iterator[HostCall]:
        return iter(self.calls())


def _host_call(seq: int, outline: tuple[Any, ...], payload: tuple[Any, Any] | None) -> HostCall:
    plugin_id, service, function, verdict, detail, rule, duration, types = outline
    request, response = payload if payload is not None else (None, None)
    return HostCall(
        seq,
        plugin_id,
        service,
        function,
        request,
        response,
        verdict,
        detail,
        rule,
        duration,
        types,
        payload is None,
    )


_notes = threading.local()


def note_rule(rule: str) -> None:
    """Record which permission rule allowed the host call being served (shown in the transcript).

    Refusals carry their rule in :class:`Denied`; a handler calls this for the calls it lets through.
    """
    _notes.rule = rule


@dataclass(frozen=True, slots=True)
class HostBinding:
    """The host functions one plugin's instances call in one scope, and where calls are recorded."""

    plugin_id: str
    functions: Mapping[str, HostFunction]
    transcript: Transcript | None = None


def dispatch(guest: GuestAccess, fn: HostFunction, offset: int, size: int, *, binding: HostBinding) -> int:
    """Serve one guest->host call; return the packed response pointer (0 for an empty response).

    Runs on every host call, so the steps of ``check_range``, ``guest_malloc`` and ``pack`` are
    written out here (same checks, the same errors from ``abi.memory``, as hard errors); the range
    checks are the backend's own on read and write, reworded as the ABI layer's when they fail.
    tests/unit/test_dispatch_equivalence.py holds this to the helpers themselves.
    """
    started = host_monotonic()
    raw: bytes | None = None
    response: Message | None = None
    data: bytes | None = None
    verdict: Verdict = "ok"
    detail = ""
    rule: str | None = None
    _notes.rule = None
    try:
        if size:
            try:
                raw = guest.read_memory(offset, size)  # the backend checks the range (one check)
            except AbiError:
                raise _unreadable(guest, fn, offset, size) from None
        else:
            raw = b""
        try:
            request = fn.request_type.FromString(raw)
        except DecodeError as exc:
            name = fn.request_type.DESCRIPTOR.full_name
            raise HostHardError(fn.service, fn.name, f"request does not decode as {name}: {exc}") from exc
        try:
            response = fn.handler(request)
            rule = _notes.rule
        except Denied as denial:
            response, verdict, detail, rule = denial.response, "denied", denial.reason, denial.rule
        except SoftError as refusal:
            response, verdict, detail = refusal.response, "error", refusal.detail
        has_error = _ERROR_FIELD.get(type(response))
        if has_error is None:
            has_error = _has_error_field(type(response))
        if has_error and verdict == "ok":
            error_text = response.error  # type: ignore[attr-defined]  # checked just above
            if error_text:
                verdict, detail = "error", str(error_text)
        data = response.SerializeToString()
        n = len(data)
        if not n:
            return 0
        ptr = guest.call_export("malloc", (n,))
        if not isinstance(ptr, int):
            raise _unallocated(fn, malloc_no_value_error(guest.plugin_id, _label(fn)))
        ptr &= 0xFFFF_FFFF
        if ptr == 0:
            raise _unallocated(fn, malloc_zero_error(guest.plugin_id, n, _label(fn)))
        try:
            guest.write_memory(ptr, data)  # the backend checks the range; its error is reworded below
        except AbiError:
            mem = guest.memory_size()
            what = f"the buffer malloc({n}) returned"
            error = outside_error(guest.plugin_id, ptr, n, mem, export=_label(fn), what=what, op="Write")
            raise _unallocated(fn, error) from None
        packed = (ptr << 32) | n  # n < 2 GiB: a response that large could not be serialized
        return packed - (1 << 64) if packed >= 1 << 63 else packed  # wasm i64 results are signed
    except HostHardError as exc:
        verdict, detail = "hard-error", exc.message
        raise
    except Exception as exc:  # a bug in a service must still end as one clear trap, not a crash
        verdict, detail = "hard-error", f"internal error {type(exc).__name__}: {exc}"
        raise HostHardError(fn.service, fn.name, detail) from exc
    finally:
        transcript = binding.transcript
        if transcript is not None:
            kept = data if data is not None else response
            transcript.add(
                binding.plugin_id, fn, raw, kept, verdict, detail, rule, host_monotonic() - started
            )


def _unreadable(guest: GuestAccess, fn: HostFunction, offset: int, size: int) -> HostHardError:
    mem = guest.memory_size()  # worded as the ABI layer's check_range, and a hard error
    error = outside_error(guest.plugin_id, offset, size, mem, export=_label(fn), what="request", op="Read")
    return HostHardError(fn.service, fn.name, error.problem)


def _label(fn: HostFunction) -> str:
    return f"{HOST_MODULE}.{fn.name}"


def _unallocated(fn: HostFunction, error: AbiError) -> HostHardError:
    return HostHardError(fn.service, fn.name, f"cannot allocate the response: {error.problem}")


_ERROR_FIELD: dict[type[Message], bool] = {}  # per response message type: has an ``error`` field


def _has_error_field(message_type: type[Message]) -> bool:
    known = _ERROR_FIELD.get(message_type)
    if known is None:
        known = _ERROR_FIELD[message_type] = "error" in message_type.DESCRIPTOR.fields_by_name
    return known
