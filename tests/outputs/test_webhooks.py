import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from safecity.config import Webhook
from safecity.outputs.webhooks import WebhookSink, verify_signature
from safecity.records import Event

SECRET = "a-very-secret-key-123"


class Receiver:
    """A real HTTP endpoint that fails the first ``failures`` calls, then accepts."""

    def __init__(self, failures: int = 0, status: int = 503):
        self.calls: list[tuple[dict, bytes]] = []
        self.failures = failures
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.calls.append((dict(self.headers), body))
                code = status if len(receiver.calls) <= receiver.failures else 200
                self.send_response(code)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self):
        self.server.shutdown()


def test_signed_delivery_with_retry_after_failures():
    receiver = Receiver(failures=2)
    sink = WebhookSink(Webhook(url=receiver.url, secret=SECRET, types=["face_match"]), backoff_seconds=0.05)
    sink.publish([Event(camera="gate", type="motion", start_ts=1.0)])  # filtered out by type
    sink.publish([Event(camera="gate", type="face_match", label="Person A", start_ts=2.0, score=0.61)])
    sink.close()
    receiver.close()
    assert len(receiver.calls) == 3 and sink.stats.delivered == 1 and sink.stats.retried == 2
    headers, body = receiver.calls[-1]
    assert json.loads(body)["type"] == "face_match"
    assert verify_signature(SECRET, headers["X-Safecity-Timestamp"], body, headers["X-Safecity-Signature"])
    assert not verify_signature("another-secret-key-000", headers["X-Safecity-Timestamp"], body, headers["X-Safecity-Signature"])
    assert not verify_signature(SECRET, headers["X-Safecity-Timestamp"], body + b" ", headers["X-Safecity-Signature"])
    old = f"{time.time() - 3600:.0f}"
    assert not verify_signature(SECRET, old, body, headers["X-Safecity-Signature"])


def test_gives_up_after_max_attempts_and_on_refusal():
    down = Receiver(failures=99)
    sink = WebhookSink(Webhook(url=down.url, secret=SECRET, max_attempts=3), backoff_seconds=0.02)
    sink.publish([Event(camera="gate", type="motion", start_ts=1.0)])
    sink.close()
    assert len(down.calls) == 3 and sink.stats.failed == 1 and sink.stats.delivered == 0
    down.close()

    refusing = Receiver(failures=99, status=400)
    sink = WebhookSink(Webhook(url=refusing.url, secret=SECRET, max_attempts=5), backoff_seconds=0.02)
    sink.publish([Event(camera="gate", type="motion", start_ts=1.0)])
    sink.close()
    assert len(refusing.calls) == 1 and sink.stats.failed == 1  # a 400 is not retried
    refusing.close()
