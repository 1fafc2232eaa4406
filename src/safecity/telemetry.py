"""Nothing leaves the machine that nobody asked to send: OpenVINO's usage reports are declined.

``import openvino`` imports its model converter, which creates a usage reporter and
sends an "import" event to Google Analytics unless a consent file in the user's home
says no; ``openvino.convert_model`` and NNCF (openvino-telemetry, both) report more, and
the reporter writes a client id under ``~/intel``. A system that watches cities sends
nothing to third parties that nobody asked for. On a site without internet it is worse:
the report goes out from a child process that hangs on the network, and a process that
imported OpenVINO waits for that child when it exits (``safecity run`` did not stop on
SIGTERM). So ``import safecity`` calls :func:`decline_usage_reports` before any of its
modules imports OpenVINO.
"""

from __future__ import annotations


def decline_usage_reports() -> None:
    """In this process the consent check answers "declined", and a reporter created
    before this call (OpenVINO imported before safecity) is silenced. Without
    openvino-telemetry installed, nothing reports and nothing is done."""
    try:
        from openvino_telemetry import Telemetry
        from openvino_telemetry.utils.opt_in_checker import ConsentCheckResult, OptInChecker
    except ImportError:  # nothing installed that reports
        return
    OptInChecker.check = lambda self, *args, **kwargs: ConsentCheckResult.DECLINED  # type: ignore[method-assign]
    existing = getattr(Telemetry, "_SingletonMetaClass__single_instance", None)
    if existing is not None:
        existing.consent = False
