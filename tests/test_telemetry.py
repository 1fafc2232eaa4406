"""OpenVINO's usage reports are declined in every process that imports safecity."""

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("openvino_telemetry")


def _python(code: str, home) -> str:
    # a home without a consent file; os._exit skips the wait for a report's sender at
    # exit, should one have been started (it hangs without internet)
    env = {**os.environ, "HOME": str(home)}
    run = subprocess.run([sys.executable, "-c", textwrap.dedent(code) + "\nimport os; os._exit(0)\n"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


def test_importing_openvino_after_safecity_reports_nothing(tmp_path):
    # without safecity, a reporter that asks nobody (as OpenVINO's import and NNCF make
    # theirs) would send: no consent file is taken as consent (checked without sending)
    unguarded = _python("""
        from openvino_telemetry.utils.opt_in_checker import OptInChecker
        print(OptInChecker().check(enable_opt_in_dialog=False).name)
    """, tmp_path)
    if unguarded != "NO_FILE":
        pytest.skip(f"this openvino-telemetry answers {unguarded} without a consent file")
    home = tmp_path / "home"
    home.mkdir()
    assert _python("import safecity, openvino.tools.ovc as ovc; print(ovc.telemetry.consent)", home) == "False"
    assert not (home / "intel").exists()  # no client id written either


def test_a_reporter_made_before_safecity_is_silenced(tmp_path):
    # OpenVINO imported before safecity: its reporter exists already (made here as NNCF
    # makes one, without a dialog, so that nothing is sent by the test itself)
    code = """
        from openvino_telemetry import Telemetry
        early = Telemetry(app_name="safecity-test", app_version="0", tid="G-TEST", backend="ga4",
                          enable_opt_in_dialog=False)
        print(early.consent)
        import safecity
        print(early.consent)
    """
    assert _python(code, tmp_path).split() == ["True", "False"]
