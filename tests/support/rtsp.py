"""Run ``rtsp_server.py`` (GStreamer RTSP server) from tests that use the project venv.

The venv has no PyGObject, so the server runs under a system Python that does
(``/usr/bin/python3`` by default, override with ``SAFECITY_GST_PYTHON``). Pure stdlib here.
"""
from __future__ import annotations

import os
import subprocess
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")
READY_TIMEOUT_S = 20.0


def gst_python() -> str:
    return os.environ.get("SAFECITY_GST_PYTHON", "/usr/bin/python3")


def rtsp_available() -> bool:
    """True if the GStreamer Python can import gi + GstRtspServer (for a clear test failure)."""
    probe = (
        "import gi; gi.require_version('Gst', '1.0'); "
        "gi.require_version('GstRtspServer', '1.0'); "
        "from gi.repository import Gst, GstRtspServer"
    )
    try:
        done = subprocess.run([gst_python(), "-c", probe], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@contextmanager
def serve_rtsp(
    mounts: dict[str, Path], port: int | None = None, loop: bool = True, gop: int = 0
) -> Iterator[str]:
    """Serve ``{"/cam1": Path("a.mp4"), ...}`` over RTSP; yields ``rtsp://127.0.0.1:PORT``.

    ``port=None`` passes ``--port 0`` so the server binds a free port itself and reports it
    in its READY line (no pick-then-bind race).  ``loop`` repeats clips so streams never end
    mid-test.  ``gop`` > 0 re-encodes with a keyframe every ``gop`` frames, so a client
    joining an already-running mount gets a first frame quickly (as-is, car-detection.mp4
    has a 4.8 s GOP).  The server is terminated (then killed) on exit.
    """
    cmd = [gst_python(), str(SERVER_SCRIPT), "--port", str(port or 0)]
    for name, path in mounts.items():
        cmd += ["--mount", f"/{name.lstrip('/')}={Path(path).resolve()}"]
    if loop:
        cmd.append("--loop")
    if gop:
        cmd += ["--gop", str(gop)]
    # stderr goes to a file, not a pipe: nobody drains it while tests run, and a full pipe
    # (e.g. with GST_DEBUG set) would stall the server's streaming threads.
    errlog = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errlog, text=True)
    try:
        # Read the READY line in a thread so a silent or hung server can't block us forever.
        box: list[str] = []
        reader = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(READY_TIMEOUT_S)
        line = box[0].strip() if box else ""
        if not line.startswith("READY "):
            proc.kill()
            proc.wait()
            errlog.seek(0)
            raise RuntimeError(
                f"RTSP server did not start (rc={proc.returncode}, got {line!r}): "
                f"{errlog.read()[-4000:].strip()}"
            )
        yield line.split(" ", 1)[1]
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        proc.stdout.close()
        errlog.close()
