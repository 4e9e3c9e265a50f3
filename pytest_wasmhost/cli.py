"""``wasmhost``: poke a plugin by hand or from a CI script.

``wasmhost inspect PATH``       manifest summary, imports vs grants, exports vs capabilities, api versions
``wasmhost call PATH EXPORT JSON``  JSON -> protobuf -> call -> JSON
``wasmhost check PATH...``      the conformance suite (through pytest), non-zero exit on failure

Exit codes: 0 success; 1 the plugin answered with an error (for ``check``: a check failed); 2 the
plugin cannot be loaded or the command line is wrong; 3 the plugin answered
``plugin:not_implemented`` / ``plugin:not_found``. Errors are one line on stderr; a failed ``call``
adds the tail of the plugin's stderr and its host calls below it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from humanize import naturalsize

from pytest_wasmhost.abi.capabilities import CAPABILITIES, METHODS_BY_EXPORT, check_err
from pytest_wasmhost.abi.codec import message_from_json, message_to_dict
from pytest_wasmhost.doubles.subsonic import FakeSubsonic
from pytest_wasmhost.errors import (
    AbiError,
    NoResult,
    PluginError,
    PluginMemoryError,
    PluginTimeout,
    PluginTrap,
    WasmHostError,
)
from pytest_wasmhost.host.base import HOST_MODULE, service_of
from pytest_wasmhost.host.http import method_warnings
from pytest_wasmhost.host.options import HostOptions, SubsonicOptions
from pytest_wasmhost.manifest import HttpPermission, SubsonicApiPermission, WebSocketPermission
from pytest_wasmhost.package import load_plugin
from pytest_wasmhost.runtime.instance import InstanceLimits, describe_module
from pytest_wasmhost.runtime.plugin import Plugin
from pytest_wasmhost.runtime.runtime import Runtime, RuntimeSettings
from pytest_wasmhost.runtime.wasi import WASI_MODULE, WasiOptions

EXIT_OK, EXIT_PLUGIN_ERROR, EXIT_LOAD, EXIT_NO_RESULT = 0, 1, 2, 3

# How much of a failed call's context ``call`` prints: enough to see the cause, bounded so a
# plugin that floods stderr or loops over host calls does not bury the error line.
STDERR_TAIL_LINES = 20
STDERR_TAIL_CHARS = 4000
TRANSCRIPT_TAIL = 20


def _add_config(parser: argparse.ArgumentParser) -> None:
    """``--config KEY=VALUE`` for the commands that load one plugin (parsed by :func:`_config_pairs`)."""
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="plugin configuration entry, as OnInit and the config service see it (repeatable)",
    )


def _config_pairs(values: Sequence[str]) -> dict[str, str]:
    config: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"--config takes KEY=VALUE, got {item!r}")
        config[key] = value
    return config


def _settings(args: argparse.Namespace, *, real_clocks: bool = False) -> RuntimeSettings:
    cache_dir = Path(args.cache_dir) if args.cache_dir else None
    return RuntimeSettings(
        cache_dir=cache_dir,
        disk_cache=not args.no_disk_cache,
        wasi=WasiOptions(real_clocks=real_clocks),
        limits=InstanceLimits(call_timeout=args.timeout),
    )


def _host_options() -> HostOptions:
    """Real network for http and websocket (under the plugin's allow-lists); subsonicapi reaches a fake
    server (FakeSubsonic's users admin and user), there being no Navidrome behind the CLI."""
    return HostOptions(subsonicapi=SubsonicOptions(backend=FakeSubsonic))


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--id", dest="plugin_id", help="plugin id to use instead of the one derived from PATH"
    )
    parser.add_argument("--cache-dir", help="compile cache folder (default: ~/.cache/pytest-wasmhost)")
    parser.add_argument("--no-disk-cache", action="store_true", help="compile in memory only")
    parser.add_argument("--timeout", type=float, default=30.0, help="deadline per guest call, seconds (30)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wasmhost", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    sub = parser.add_subparsers(dest="command", required=True)

    inspect = sub.add_parser(
        "inspect", help="show a plugin's manifest, imports vs grants, exports vs capabilities"
    )
    inspect.add_argument("path", help="plugin folder, .ndp package, or .wasm with manifest.json beside it")
    _add_common(inspect)
    _add_config(inspect)
    inspect.add_argument("--json", action="store_true", help="print a JSON document instead of text")

    call = sub.add_parser("call", help="call one capability export with a JSON request")
    call.add_argument("path", help="plugin folder, .ndp package, or .wasm with manifest.json beside it")
    call.add_argument("export", help="method export, e.g. metadata_agent_get_artist_mbid")
    call.add_argument("request", nargs="?", default="{}", help="request message as JSON (default: {})")
    _add_common(call)
    _add_config(call)
    call.add_argument("--real-clocks", action="store_true", help="give the guest real clocks (default: fake)")
    call.add_argument("--stderr", action="store_true", help="print what the plugin wrote to stderr")
    check = sub.add_parser(
        "check", help="run the built-in conformance suite on plugins (no test files needed)"
    )
    check.add_argument(
        "paths", nargs="+", metavar="PATH", help="plugin folders, .ndp packages or .wasm files"
    )
    check.add_argument("--junitxml", metavar="FILE", help="write a JUnit XML report (for CI)")
    check.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="ID.KEY=VALUE",
        help="plugin configuration (repeatable)",
    )
    check.add_argument("--cache-dir", help="compile cache folder (default: ~/.cache/pytest-wasmhost)")
    check.add_argument(
        "-k", dest="keyword", metavar="EXPR", help="only checks matching this pytest -k expression"
    )
    check.add_argument("-q", "--quiet", action="store_true", help="less output")
    return parser


# -- check -----------------------------------------------------------------------------------------


def _check_exit_code(code: int, args: argparse.Namespace) -> int:
    """pytest's exit code in the terms of the README's (and the other commands') exit codes."""
    import pytest

    if code == pytest.ExitCode.OK:
        return EXIT_OK
    if code == pytest.ExitCode.USAGE_ERROR:
        # pytest printed the reason: an invalid manifest or package, a missing path, a bad --config.
        return EXIT_LOAD
    if code == pytest.ExitCode.NO_TESTS_COLLECTED:
        selected = f" matches -k {args.keyword!r}" if args.keyword else " was collected"
        sys.stderr.write(f"error: no conformance check{selected}\n")
        return EXIT_LOAD
    # TESTS_FAILED, and pytest's INTERRUPTED / INTERNAL_ERROR, whose own numbers (2, 3) mean
    # something else here: the run did not pass.
    return EXIT_PLUGIN_ERROR


def cmd_check(args: argparse.Namespace) -> int:
    """Run the conformance suite through pytest, isolated from any pytest config in the current folder."""
    import tempfile

    import pytest

    suite = Path(__file__).parent / "conformance" / "suite.py"
    with tempfile.TemporaryDirectory(prefix="wasmhost-check-") as tmp:
        ini = Path(tmp) / "pytest.ini"
        ini.write_text("[pytest]\n")
        # This process imported pytest_wasmhost already, so pytest cannot assert-rewrite it: say nothing.
        argv = [str(suite), "-c", str(ini), "--rootdir", tmp, "-p", "no:cacheprovider"]
        # faulthandler's enable/disable pair would unhook wasmtime's trap handlers when this runs
        # in a process that already uses wasmtime (a wasm trap would then kill the process).
        argv += ["-p", "no:faulthandler"]
        argv += ["-W", "ignore::pytest.PytestAssertRewriteWarning"]
        for path in args.paths:
            argv += ["--wasm-plugin", str(Path(path).resolve())]
        if args.cache_dir:
            argv += ["--wasm-cache-dir", args.cache_dir]
        for item in args.config:
            argv += ["--wasm-config", item]
        if args.junitxml:
            argv += ["--junitxml", args.junitxml]
        if args.keyword:
            argv += ["-k", args.keyword]
        argv += ["-q"] if args.quiet else ["-rfEs"]
        return _check_exit_code(pytest.main(argv), args)


# -- inspect ---------------------------------------------------------------------------------------


@dataclass
class Inspection:
    plugin_id: str
    origin: str
    manifest: dict[str, object]
    module_bytes: int = 0  # the size of plugin.wasm
    capabilities: list[dict[str, object]] = field(default_factory=list)
    permissions: list[dict[str, object]] = field(default_factory=list)
    env_imports: list[dict[str, object]] = field(default_factory=list)
    wasi_imports: list[str] = field(default_factory=list)
    other_imports: list[str] = field(default_factory=list)
    undeclared_capability_exports: list[str] = field(default_factory=list)
    lint: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    load: str = "ok"
    exit_code: int = 0  # the README's code for the load's outcome; not part of the JSON


def inspect_plugin(
    runtime: Runtime,
    path: str,
    *,
    plugin_id: str | None = None,
    config: dict[str, str] | None = None,
) -> Inspection:
    """Describe the plugin at ``path``; ``config`` is what its OnInit sees when the load is tried."""
    source = load_plugin(path, plugin_id=plugin_id)
    manifest = source.manifest
    granted = manifest.permissions.granted()
    # Compile without linking, so a module whose imports are not granted can still be described.
    module = runtime.modules.get(source.wasm_bytes, plugin_id=source.plugin_id)
    imports, exports = describe_module(module)
    export_funcs = {e.name: e for e in exports if e.kind == "func"}
    result = Inspection(
        plugin_id=source.plugin_id,
        origin=source.origin,
        module_bytes=len(source.wasm_bytes),
        manifest={
            "name": manifest.name,
            "version": manifest.version,
            "author": manifest.author,
            "website": manifest.website,
            "description": manifest.description,
        },
        lint=[f"{w.json_path}: {w.message}" for w in source.lint],
    )
    for cap in CAPABILITIES.values():
        present = [m.export for m in cap.methods if m.export in export_funcs]
        missing = [m.export for m in cap.methods if m.export not in export_funcs]
        declared = cap.name in manifest.capabilities
        if not declared and (present or cap.version_export in export_funcs):
            result.undeclared_capability_exports.append(cap.name)
        if declared:
            result.capabilities.append(
                {
                    "name": cap.name,
                    "version_export": cap.version_export in export_funcs,
                    "methods": len(present),
                    "missing": missing,
                }
            )
    for name in granted:
        result.permissions.append(_permission_entry(name, getattr(manifest.permissions, name)))
    for imp in imports:
        if imp.module == HOST_MODULE:
            service = service_of(imp.name)
            result.env_imports.append(
                {"name": imp.name, "service": service, "granted": service is not None and service in granted}
            )
        elif imp.module == WASI_MODULE:
            result.wasi_imports.append(imp.name)
        else:
            result.other_imports.append(f"{imp.module}.{imp.name}")
    result.warnings = method_warnings(manifest, (i.name for i in imports if i.module == HOST_MODULE))
    try:
        loaded = runtime.plugin(path, plugin_id=plugin_id, config=config)
    except WasmHostError as exc:
        result.load = f"FAILED: {exc}"
        # An OnInit that answered an error is the plugin's answer (1); anything else is a load failure (2).
        result.exit_code = EXIT_PLUGIN_ERROR if isinstance(exc, PluginError) else EXIT_LOAD
    else:
        # An unlinkable module loads, as in the original, but no call to it can succeed.
        if loaded.linked.link_error is not None:
            result.load = f"FAILED (every call): {loaded.linked.link_failure()}"
            result.exit_code = EXIT_LOAD
        loaded.close()
    return result


def _permission_entry(service: str, perm: object) -> dict[str, object]:
    """One granted permission as inspect reports it: its reason and what it allows, in manifest terms."""
    entry: dict[str, object] = {"service": service, "reason": getattr(perm, "reason", "")}
    if isinstance(perm, HttpPermission):
        # pattern -> methods, in the manifest's order; an empty list allows no method at all.
        entry["allowed_urls"] = {pattern: list(methods) for pattern, methods in perm.allowed_urls}
        entry["allow_local_network"] = perm.allow_local_network
    elif isinstance(perm, WebSocketPermission):
        entry["allowed_urls"] = list(perm.allowed_urls)
        entry["allow_local_network"] = perm.allow_local_network
    elif isinstance(perm, SubsonicApiPermission):
        entry["allowed_usernames"] = list(perm.allowed_usernames)
        entry["allow_admins"] = perm.allow_admins
    return entry


def _permission_lines(perm: dict[str, object]) -> list[str]:
    """The text lines under a permission's reason: its URL patterns (with methods) and flags."""
    lines: list[str] = []
    urls = perm.get("allowed_urls")
    if isinstance(urls, dict):
        width = max((len(str(pattern)) for pattern in urls), default=0)
        for pattern, methods in urls.items():
            allowed = ", ".join(methods) if methods else "(no method: every request is denied)"
            lines.append(f"allowedUrls  {pattern:<{width}}  {allowed}")
    elif isinstance(urls, list):
        lines += [f"allowedUrls  {pattern}" for pattern in urls]
    if isinstance(urls, (dict, list)) and not urls:
        lines.append("allowedUrls  (none)")
    if "allow_local_network" in perm:
        lines.append(f"allowLocalNetwork  {str(perm['allow_local_network']).lower()}")
    if "allowed_usernames" in perm:
        users = perm["allowed_usernames"]
        listed = ", ".join(users) if isinstance(users, list) and users else "(any user)"
        lines.append(f"allowedUsernames  {listed}")
        lines.append(f"allowAdmins  {str(perm['allow_admins']).lower()}")
    return lines


def _print_inspection(info: Inspection) -> None:
    out = sys.stdout.write
    m = info.manifest
    out(f"plugin   {info.plugin_id}  ({info.origin}, plugin.wasm {naturalsize(info.module_bytes)})\n")
    out(f"manifest {m['name']} {m['version']} by {m['author']}  {m['website']}\n")
    out("capabilities\n")
    for cap in info.capabilities:
        status = (
            "ok"
            if cap["version_export"] and not cap["missing"]
            else "MISSING "
            + ", ".join(
                ([] if cap["version_export"] else [f"{CAPABILITIES[str(cap['name'])].version_export}"])
                + list(cap["missing"])  # type: ignore[call-overload]
            )
        )
        out(f"  {cap['name']:<22} {cap['methods']} method exports  {status}\n")
    if info.undeclared_capability_exports:
        undeclared = ", ".join(info.undeclared_capability_exports)
        out(f"  exported but not declared (never called by the host): {undeclared}\n")
    out("permissions\n")
    for perm in info.permissions or [{"service": "(none)", "reason": ""}]:
        out(f"  {perm['service']:<12} {perm['reason']}\n")
        for line in _permission_lines(perm):
            out(f"  {'':<12} {line}\n")
    out("imports\n")
    for imp in info.env_imports:
        verdict = (
            "granted"
            if imp["granted"]
            else (
                f"NOT GRANTED: add the '{imp['service']}' permission"
                if imp["service"]
                else "NO SUCH HOST FUNCTION"
            )
        )
        out(f"  env.{imp['name']:<20} {imp['service'] or '-':<12} {verdict}\n")
    out(f"  {WASI_MODULE}: {len(info.wasi_imports)} functions\n")
    for other in info.other_imports:
        out(f"  {other}  UNKNOWN MODULE\n")
    for warning in info.lint:
        out(f"lint     {warning}\n")
    for warning in info.warnings:
        out(f"warning  {warning}\n")
    out(f"load     {info.load}\n")


def cmd_inspect(args: argparse.Namespace) -> int:
    with Runtime(_settings(args), host_options=_host_options()) as runtime:
        info = inspect_plugin(runtime, args.path, plugin_id=args.plugin_id, config=_config_pairs(args.config))
    if args.json:
        json.dump({k: v for k, v in info.__dict__.items() if k != "exit_code"}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print_inspection(info)
    return info.exit_code


# -- call ------------------------------------------------------------------------------------------


def _stderr_tail(text: str) -> str:
    """The last :data:`STDERR_TAIL_LINES` lines of ``text`` (at most :data:`STDERR_TAIL_CHARS`)."""
    lines = text.rstrip("\n").split("\n")
    tail = "\n".join(lines[-STDERR_TAIL_LINES:])
    if len(tail) > STDERR_TAIL_CHARS:
        tail = "..." + tail[-STDERR_TAIL_CHARS:]
    shown = min(len(lines), STDERR_TAIL_LINES)
    header = (
        f"plugin stderr (last {shown} of {len(lines)} lines; --stderr prints all):"
        if len(lines) > shown
        else "plugin stderr:"
    )
    return f"{header}\n{tail}"


def _failure_context(plugin: Plugin, *, full_stderr_shown: bool) -> list[str]:
    """What a failed call leaves to read: the plugin's stderr tail and its host calls (each if any)."""
    notes: list[str] = []
    if plugin.stderr and not full_stderr_shown:
        notes.append(_stderr_tail(plugin.stderr))
    calls = plugin.transcript.calls(plugin_id=plugin.plugin_id)
    if calls:
        shown = calls[-TRANSCRIPT_TAIL:]
        header = (
            f"host calls (last {len(shown)} of {len(calls)}):" if len(calls) > len(shown) else "host calls:"
        )
        notes.append("\n".join([header, *(f"  {call}" for call in shown)]))
    return notes


def _write_error(exc: BaseException, prefix: str = "error: ") -> None:
    """The one-line error, then the notes a command added (a failed call's stderr and host calls)."""
    sys.stderr.write(f"{prefix}{exc}\n")
    for note in getattr(exc, "__notes__", ()):
        sys.stderr.write(f"{note}\n")


def cmd_call(args: argparse.Namespace) -> int:
    method = METHODS_BY_EXPORT.get(args.export)
    if method is None:
        raise WasmHostError(
            f"{args.export!r} is not a capability method export.",
            fix=f"use one of: {', '.join(sorted(METHODS_BY_EXPORT))}.",
        )
    request = message_from_json(method.request, args.request, export=args.export)
    config = _config_pairs(args.config)
    with (
        Runtime(_settings(args, real_clocks=args.real_clocks), host_options=_host_options()) as runtime,
        runtime.plugin(args.path, plugin_id=args.plugin_id, config=config) as plugin,
    ):
        try:
            reply = plugin.call(args.export, request)
            # Only error-bit errors are mapped; an ``error`` field stays visible in the printed response.
            check_err(reply, plugin_id=plugin.plugin_id, export=args.export, honour_error_field=False)
        except WasmHostError as exc:
            # main() prints the error line, then these notes: what the plugin said and asked the host.
            for note in _failure_context(plugin, full_stderr_shown=args.stderr):
                exc.add_note(note)
            raise
        finally:
            if args.stderr and plugin.stderr:
                sys.stderr.write(plugin.stderr)
        assert reply.response is not None
        json.dump(message_to_dict(reply.response), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "inspect":
            return cmd_inspect(args)
        if args.command == "check":
            return cmd_check(args)
        return cmd_call(args)
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    except NoResult as exc:
        _write_error(exc, prefix="")
        return EXIT_NO_RESULT
    except (PluginError, PluginTrap, PluginTimeout, PluginMemoryError, AbiError) as exc:
        _write_error(exc)
        return EXIT_PLUGIN_ERROR
    except WasmHostError as exc:
        _write_error(exc)
        return EXIT_LOAD
    return EXIT_LOAD  # unreachable: parser.error exits


if __name__ == "__main__":
    sys.exit(main())
