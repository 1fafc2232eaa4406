from prometheus_client import generate_latest

from safecity.engines.metrics import engine_registry


def test_camera_status_becomes_prometheus_metrics():
    health = [
        {
            "name": "gate", "state": "running", "fps": 4.9, "lag_seconds": 0.3, "queue_depth": 1, "frames": 120,
            "dropped": 7, "errors": 2, "reconnects": 1, "events": 5, "analyser_ms": {"motion_gate": 0.4, "objects": 9.5},
        },
        {"name": "door", "state": "reconnecting", "fps": 0.0, "lag_seconds": 0.0, "frames": 0, "errors": 3},
    ]
    text = generate_latest(engine_registry(lambda: health)).decode()
    assert 'safecity_camera_fps{camera="gate"} 4.9' in text
    assert 'safecity_camera_dropped_frames_total{camera="gate"} 7.0' in text
    assert 'safecity_stage_ms{camera="gate",stage="objects"} 9.5' in text
    assert 'safecity_camera_up{camera="door"} 0.0' in text
    assert 'safecity_camera_errors_total{camera="door"} 3.0' in text
