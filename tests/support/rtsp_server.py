#!/usr/bin/python3
"""Tiny RTSP test server: serve local H.264 MP4 files at rtsp://127.0.0.1:PORT/<mount>.

Run with a Python that has PyGObject + GstRtspServer (Debian: /usr/bin/python3 with
python3-gi, gir1.2-gst-rtsp-server-1.0), *not* the project venv:

    python3 rtsp_server.py --port 8554 --mount /cam1=clip.mp4 [--mount /cam2=...] [--loop]

Design notes (why it looks like this):
* The H.264 is re-payloaded as-is (qtdemux ! h264parse ! rtph264pay): no re-encode, so
  startup is instant and CPU use negligible. h264parse ``config-interval=-1`` repeats
  SPS/PPS at every IDR so a client joining a running stream can decode from the next
  keyframe. (Not also on rtph264pay: with x264 output that made FFmpeg emit every
  keyframe twice.)
  ``--gop N`` re-encodes instead (x264, keyframe every N frames) for clips whose GOP is
  so long that late joiners would wait too long for their first frame.
* Factories are shared: all clients of a mount see one pipeline, like a real camera.
* The media is made non-seekable (publish clock mode CLOCK_AND_OFFSET; the SDP then also
  carries RFC 7273 clock info, which FFmpeg ignores). Otherwise FFmpeg's PLAY
  ``Range: npt=0.000-`` makes gst-rtsp-server flush-seek the *shared* pipeline to 0,
  restarting the clip and timestamps for everyone already watching (and breaking --loop).
* ``--loop`` uses *segment* seeks: one flushing SEGMENT seek when the media is prepared,
  then, on each SEGMENT_DONE, a non-flushing seek back to 0, so running time (and RTP
  timestamps) keep increasing and clients see one endless stream. Without it the stream
  ends with EOS after one pass.
* ``--port 0`` lets the OS pick a free port (no race); the READY line reports the real one.
* Binds 127.0.0.1 only; prints ``READY rtsp://127.0.0.1:PORT`` once listening;
  SIGTERM/SIGINT quit the main loop and exit 0.
"""
import argparse
import os
import signal
import sys
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

# Must run before LoopingMedia is defined: subclassing runs RTSPMedia's class_init, which
# registers its "handle-message" signal with GST_TYPE_MESSAGE; before Gst.init that type
# id is still 0 and every RTSPMedia (looping or not) then fails with a 5xx reply.
Gst.init(None)


class LoopingMedia(GstRtspServer.RTSPMedia):
    """RTSPMedia that restarts the clip on SEGMENT_DONE instead of ending (see module doc)."""

    def do_prepared(self):
        # Enter segment mode; flushing is fine here, nothing has been sent yet.
        self.get_element().seek_simple(
            Gst.Format.TIME, Gst.SeekFlags.FLUSH | Gst.SeekFlags.SEGMENT, 0
        )
        # The flush drops each stream's SEGMENT event until data flows again; a PLAY
        # arriving in that window hits an assertion in gst_rtsp_media_get_rates() and
        # aborts the whole server. PLAY is held off while this handler runs, so wait here.
        deadline = time.monotonic() + 3
        streams = [self.get_stream(i) for i in range(self.n_streams())]
        while not all(s.get_rates()[0] for s in streams) and time.monotonic() < deadline:
            time.sleep(0.005)

    def do_handle_message(self, message):
        if message.type == Gst.MessageType.SEGMENT_DONE:
            # Non-flushing, so running time stays monotonic for clients.
            self.get_element().seek_simple(Gst.Format.TIME, Gst.SeekFlags.SEGMENT, 0)
            return True
        return GstRtspServer.RTSPMedia.do_handle_message(self, message)


def _launch_line(path: str, gop: int) -> str:
    src = f'filesrc location="{path}" ! qtdemux ! h264parse'
    if gop:
        src += (
            " ! avdec_h264 ! videoconvert ! x264enc tune=zerolatency speed-preset=ultrafast"
            f" key-int-max={gop} ! video/x-h264,profile=main ! h264parse"
        )
    return f"( {src} config-interval=-1 ! rtph264pay name=pay0 pt=96 )"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=8554, help="0 = pick a free port")
    ap.add_argument("--mount", action="append", required=True, metavar="/NAME=FILE.mp4")
    ap.add_argument("--loop", action="store_true", help="repeat clips forever")
    ap.add_argument("--gop", type=int, default=0, help="re-encode, keyframe every N frames")
    args = ap.parse_args(argv)

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    for spec in args.mount:
        name, sep, path = spec.partition("=")
        if not sep or not name.startswith("/"):
            ap.error(f"bad --mount {spec!r}, expected /NAME=FILE")
        path = os.path.abspath(path)
        if not os.path.isfile(path):
            ap.error(f"no such file: {path}")
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(_launch_line(path, args.gop))
        factory.set_shared(True)
        factory.set_publish_clock_mode(GstRtspServer.RTSPPublishClockMode.CLOCK_AND_OFFSET)
        if args.loop:
            factory.set_media_gtype(LoopingMedia)
        mounts.add_factory(name, factory)

    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr)
        return 1

    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print(f"READY rtsp://127.0.0.1:{server.get_bound_port()}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
