"""One exception tree for every failure a user (or their plugin) can cause.

Every exception carries structured fields (``plugin_id``, ``export``, ``service``, ...) and renders a
message that reads in one line: who (plugin), where (export / service / file), what happened, and the
fix. Tests and reports use the fields; humans read the message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "AbiError",
    "CallbackFailed",
    "CallbackFailureWarning",
    "ConfigKeyWarning",
    "HostLimitWarning",
    "ManifestError",
    "NoResult",
    "NotFoundByPlugin",
    "NotImplementedByPlugin",
    "PermissionDenied",
    "PluginError",
    "PluginLoadError",
    "PluginMemoryError",
    "PluginTimeout",
    "PluginTrap",
    "PoolClosed",
    "PoolTimeout",
    "WasmHostError",
]


def hide_harness_frames(excinfo: Any) -> bool:
    """pytest's ``__tracebackhide__`` hook for our modules: an error of ours already names the plugin,
    the export and the fix, so its traceback shows the user's frames only. Any other exception (a bug
    in the harness) keeps every frame."""
    return isinstance(getattr(excinfo, "value", None), WasmHostError)


class WasmHostError(Exception):
    """Root of every error raised by pytest-wasmhost."""

    plugin_id: str | None
    export: str | None
    fix: str | None

    def __init__(
        self,
        problem: str,
        *,
        plugin_id: str | None = None,
        export: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.problem = problem
        self.plugin_id = plugin_id
        self.export = export
        self.fix = fix
        super().__init__(self._render())

    def _where(self) -> str:
        parts = []
        if self.plugin_id is not None:
            parts.append(f"plugin {self.plugin_id!r}")
        if self.export is not None:
            parts.append(f"export {self.export!r}")
        return ", ".join(parts)

    def _render(self) -> str:
        where = self._where()
        text = f"{where}: {self.problem}" if where else self.problem
        if self.fix:
            text += f" Fix: {self.fix}"
        return text


class ManifestError(WasmHostError):
    """A manifest, plugin folder or ``.ndp`` package that the original host would reject.

    ``original`` holds the original host's error text (``invalid manifest: ...``) where it has one,
    so tests can compare with what production printed.
    """

    def __init__(
        self,
        problem: str,
        *,
        path: str,
        json_path: str = "$",
        rule: str,
        original: str | None = None,
        plugin_id: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.path = path
        self.json_path = json_path
        self.rule = rule
        self.original = original
        super().__init__(problem, plugin_id=plugin_id, fix=fix)

    def _where(self) -> str:
        base = super()._where()
        loc = f"{self.path} at {self.json_path}"
        return f"{base}, {loc}" if base else loc

    def _render(self) -> str:
        text = f"{self._where()}: {self.problem} [rule: {self.rule}]"
        if self.fix:
            text += f" Fix: {self.fix}"
        return text


class PluginLoadError(WasmHostError):
    """The plugin cannot be instantiated: broken wasm, a missing export, an unlinkable import.

    ``original`` is the text the original host would have reported (for example
    ``metadata_agent_get_album_images is not exported``).
    """

    def __init__(
        self,
        problem: str,
        *,
        plugin_id: str | None,
        export: str | None = None,
        import_name: str | None = None,
        permission: str | None = None,
        original: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.import_name = import_name
        self.permission = permission
        self.original = original
        super().__init__(problem, plugin_id=plugin_id, export=export, fix=fix)


class PermissionDenied(WasmHostError):
    """A host call the manifest does not allow (a service not granted, a URL or user not allowed)."""

    def __init__(
        self,
        problem: str,
        *,
        plugin_id: str | None,
        service: str,
        function: str | None = None,
        permission: str | None = None,
        reason_code: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.service = service
        self.function = function
        self.permission = permission
        self.reason_code = reason_code
        super().__init__(problem, plugin_id=plugin_id, fix=fix)

    def _where(self) -> str:
        base = super()._where()
        svc = f"service {self.service!r}" + (f" function {self.function!r}" if self.function else "")
        return f"{base}, {svc}" if base else svc


class PluginError(WasmHostError):
    """The plugin answered with an error string (error bit or a response ``error`` field).

    ``text`` is exactly the plugin's error string, as the original host passed it on.
    """

    def __init__(self, text: str, *, plugin_id: str | None, export: str | None) -> None:
        self.text = text
        super().__init__(f"the plugin returned the error {text!r}", plugin_id=plugin_id, export=export)


class NoResult(WasmHostError):
    """Base of the two sentinels; the original's MetadataAgent adapter treats both as "agent not found"."""

    sentinel: str = ""

    def __init__(self, *, plugin_id: str | None, export: str | None) -> None:
        super().__init__(f"the plugin answered {self.sentinel!r}", plugin_id=plugin_id, export=export)


class NotImplementedByPlugin(NoResult):
    """The plugin returned exactly ``plugin:not_implemented``."""

    sentinel = "plugin:not_implemented"


class NotFoundByPlugin(NoResult):
    """The plugin returned exactly ``plugin:not_found`` (or a MetadataAgent album info was absent)."""

    sentinel = "plugin:not_found"


class AbiError(WasmHostError):
    """The guest broke the calling convention: a pointer outside its memory, ``malloc`` returning 0, ..."""


class PluginTrap(WasmHostError):
    """The guest trapped (``unreachable``, a Go panic, a host-function hard error, ``proc_exit``)."""

    def __init__(
        self,
        problem: str,
        *,
        plugin_id: str | None,
        export: str | None,
        backtrace: Sequence[str] = (),
        stderr: str = "",
        fix: str | None = None,
    ) -> None:
        self.backtrace = tuple(backtrace)
        self.stderr = stderr
        super().__init__(problem, plugin_id=plugin_id, export=export, fix=fix)


class PluginTimeout(WasmHostError):
    """The guest ran past its deadline (epoch interruption) and was stopped."""


class PluginMemoryError(WasmHostError):
    """The guest hit its linear-memory cap."""


class PoolTimeout(WasmHostError):
    """No instance slot became free within the pool's get timeout."""


class PoolClosed(WasmHostError):
    """The plugin's instance pool was closed (its runtime shut down) while a caller wanted an instance."""


class CallbackFailed(WasmHostError):
    """A callback the host triggered (a scheduler firing, a WebSocket event) did not complete.

    The export raised instead of answering: it trapped (also when a host function it called failed hard,
    such as a cron expression the scheduler refuses), ran past its deadline or its memory cap, broke the
    ABI, or the plugin or its capability was missing. The original host only logged it and dropped the
    event. A plugin's own error answer is not one of these (the transcript shows it as an ``error``).
    ``cause`` is what the call raised; ``subject`` names the schedule or connection.
    """

    def __init__(
        self,
        problem: str,
        *,
        plugin_id: str,
        export: str,
        service: str,
        subject: str,
        cause: BaseException,
        fix: str | None = None,
    ) -> None:
        self.service = service
        self.subject = subject
        self.cause = cause
        super().__init__(problem, plugin_id=plugin_id, export=export, fix=fix)


class ConfigKeyWarning(UserWarning):
    """A test gave a configuration key in another case than the lower case the plugin sees."""


class CallbackFailureWarning(UserWarning):
    """A test's host-triggered callback failed (see :class:`CallbackFailed`); strict callbacks fail it."""


class HostLimitWarning(UserWarning):
    """A plugin reached one of the host's memory caps (cache entries or bytes, scheduled jobs, open
    WebSocket connections). The plugin got the service's refusal; the test is warned once per plugin and
    cap in a scope, with the setting that raises the cap."""
