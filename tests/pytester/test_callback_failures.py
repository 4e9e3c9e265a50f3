"""A host-triggered callback that fails (the original only logged it) is a warning, or a failure when strict.

The plugin is the hostile sample ``bad_cron_on_close``: its OnInit connects ``feed`` and its OnClose
reschedules with a 6-field cron, which the scheduler refuses as a hard error, so the callback traps.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pytester.test_pytest_plugin import run

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

CRON_ERROR = "failed to schedule recurring job: expected exactly 5 fields, found 6: [[]*/2 * * * * *[]]"
FAILURE = (
    "*plugin 'bad_cron_on_close', export 'web_socket_callback_on_close': the host's callback for "
    "connection 'feed' failed (PluginTrap): host function env.schedule_recurring (scheduler) failed: "
    f"{CRON_ERROR}*"
)
HINT = "*pass --wasm-strict-callbacks (or mark the test @pytest.mark.wasm_strict_callbacks)*"

CLOSING_TEST = """
    import pytest

    {marker}
    def test_feed_closes(wasm_load, wasm_websocket, wasm_calls):
        wasm_load({plugin!r})
        wasm_websocket.peer("feed").close(1000, "bye")
        wasm_calls.assert_called("websocket", "on_close", times=1)
"""


@pytest.fixture
def plugin(samples_dir: Path) -> str:
    return str(samples_dir / "hostile" / "bad_cron_on_close")


def closing_test(pytester: pytest.Pytester, plugin: str, marker: str = "") -> None:
    pytester.makepyfile(CLOSING_TEST.format(plugin=plugin, marker=marker))


def test_by_default_a_failed_callback_is_one_warning_and_the_test_passes(
    pytester: pytest.Pytester, plugin: str, cache_args: list[str]
) -> None:
    closing_test(pytester, plugin)
    result = run(pytester, *cache_args)
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(
        ["*warnings summary*", "*test_feed_closes*", f"*CallbackFailureWarning: {FAILURE}"]
    )
    result.stdout.fnmatch_lines([HINT])
    # Attributed to the test, not to the harness's own module.
    result.stdout.fnmatch_lines(
        [
            "*test_by_default_a_failed_callback_is_one_warning*.py:4: CallbackFailureWarning*",
            "    def test_feed_closes(*",
        ]
    )


@pytest.mark.parametrize(
    ("how", "marker"),
    [
        pytest.param(["--wasm-strict-callbacks"], "", id="option"),
        pytest.param(["-o", "wasm_strict_callbacks=true"], "", id="ini"),
        pytest.param([], "@pytest.mark.wasm_strict_callbacks", id="marker"),
    ],
)
def test_strict_callbacks_fail_the_test_naming_plugin_export_and_error(
    pytester: pytest.Pytester, plugin: str, cache_args: list[str], how: list[str], marker: str
) -> None:
    closing_test(pytester, plugin, marker)
    result = run(pytester, *how, *cache_args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*host-triggered callbacks failed (strict callbacks*", FAILURE])
    result.stdout.fnmatch_lines(["*- wasmhost -*", "*websocket.on_close -> error*"])  # the transcript too
    assert "CallbackFailureWarning" not in result.stdout.str()


def test_the_marker_with_false_only_warns_under_the_option(
    pytester: pytest.Pytester, plugin: str, cache_args: list[str]
) -> None:
    closing_test(pytester, plugin, "@pytest.mark.wasm_strict_callbacks(False)")
    result = run(pytester, "--wasm-strict-callbacks", *cache_args)
    result.assert_outcomes(passed=1, warnings=1)


def test_a_bad_marker_argument_is_a_usage_error(
    pytester: pytest.Pytester, plugin: str, cache_args: list[str]
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.wasm_strict_callbacks("yes")
        def test_nothing_fails(wasm_runtime):
            pass
        """
    )
    result = run(pytester, *cache_args)
    result.stdout.fnmatch_lines(["*wasm_strict_callbacks takes at most one bool*"])
    assert result.ret != pytest.ExitCode.OK


def test_a_callback_failing_after_the_test_body_fails_its_teardown_when_strict(
    pytester: pytest.Pytester, plugin: str, cache_args: list[str]
) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.fixture
        def feed(wasm_load, wasm_websocket):
            wasm_load({plugin!r})
            yield
            wasm_websocket.peer("feed").close(1000, "bye")  # after the body: teardown reports it

        def test_feed(feed):
            pass
        """
    )
    result = run(pytester, "--wasm-strict-callbacks", *cache_args)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_feed*", FAILURE])


def test_a_test_that_fails_anyway_shows_its_failed_callbacks_in_its_report(
    pytester: pytest.Pytester, plugin: str, cache_args: list[str]
) -> None:
    pytester.makepyfile(
        f"""
        def test_feed(wasm_load, wasm_websocket):
            wasm_load({plugin!r})
            wasm_websocket.peer("feed").close(1000, "bye")
            assert False, "the test's own failure"
        """
    )
    result = run(pytester, "--wasm-strict-callbacks", *cache_args)
    result.assert_outcomes(failed=1)  # once, with its own assertion: no second failure, no warning
    result.stdout.fnmatch_lines(
        ["*the test's own failure*", "*host-triggered callbacks that failed:*", FAILURE]
    )
    assert "CallbackFailureWarning" not in result.stdout.str()


def test_a_scheduler_firing_a_plugin_without_the_capability_warns(
    pytester: pytest.Pytester, plugin: str, cache_args: list[str]
) -> None:
    pytester.makepyfile(
        f"""
        def test_tick(wasm_load, wasm_scheduler, wasm_clock):
            loaded = wasm_load({plugin!r})
            wasm_scheduler.schedule_one_time(loaded.plugin_id, "tick", 5, b"")
            (fired,) = wasm_clock.advance(5)
            assert fired.outcome == "error"
        """
    )
    result = run(pytester, *cache_args)
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*CallbackFailureWarning: plugin 'bad_cron_on_close', export "
            "'scheduler_callback_on_scheduler_callback': the host's callback for schedule 'tick' failed "
            "(PluginLoadError): the manifest does not declare the SchedulerCallback capability*"
        ]
    )


def test_a_failure_the_test_provoked_on_purpose_can_be_asserted_and_cleared(
    pytester: pytest.Pytester, plugin: str, cache_args: list[str]
) -> None:
    pytester.makepyfile(
        f"""
        from pytest_wasmhost import CallbackFailed, PluginTrap

        def test_feed(wasm_load, wasm_websocket, wasm_runtime):
            wasm_load({plugin!r})
            wasm_websocket.peer("feed").close(1000, "bye")
            (failure,) = wasm_runtime.callback_failures
            assert isinstance(failure, CallbackFailed) and isinstance(failure.cause, PluginTrap)
            assert failure.export == "web_socket_callback_on_close"
            wasm_runtime.callback_failures.clear()
        """
    )
    run(pytester, "--wasm-strict-callbacks", *cache_args).assert_outcomes(passed=1)
