"""OpenVINO's usage reports are declined in every process that imports safecity."""

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("openvino_telemetry")


def _python(code: str, home) -> str:
    # a home without a consent file: left alone, OpenVINO would report; os._exit skips
    # the wait for a report's sender at exit (it hangs without internet)
    env = {**os.environ, "HOME": str(home)}
    run = subprocess.run([sys.executable, "-c", textwrap.dedent(code) + "\nimport os; os._exit(0)\n"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


def test_importing_openvino_after_safecity_reports_nothing(tmp_path):
    alone = tmp_path / "alone"
    alone.mkdir()
    reporting = _python("import openvino.tools.ovc as ovc; print(ovc.telemetry.consent)", alone)
    if reporting != "True":
        pytest.skip("this OpenVINO does not report on import")
    home = tmp_path / "home"
    home.mkdir()
    assert _python("import safecity, openvino.tools.ovc as ovc; print(ovc.telemetry.consent)", home) == "False"
    assert not (home / "intel").exists()  # no client id written either


def test_a_reporter_made_before_or_after_is_silenced(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    code = """
        import openvino.tools.ovc as ovc  # before safecity: it would report
        from safecity.telemetry import decline_usage_reports
        decline_usage_reports()
        from openvino_telemetry import Telemetry
        # as NNCF makes its reporter: no dialog, so without a consent file it would send
        later = Telemetry(app_name="safecity-test", app_version="0", tid="G-TEST", backend="ga4",
                          enable_opt_in_dialog=False)
        print(ovc.telemetry.consent, later.consent)
    """
    assert _python(code, home) == "False False"
