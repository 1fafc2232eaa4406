"""Prometheus metrics, read from the engine's camera status at scrape time.

Nothing is counted twice: the cameras keep their own counters (CameraStatus), and
this collector turns them into metric families when Prometheus asks, so the hot
path pays nothing for metrics.
"""

from __future__ import annotations

from typing import Callable, Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry


class EngineCollector(Collector):
    def __init__(self, health: Callable[[], list[dict]]) -> None:
        self.health = health

    def collect(self) -> Iterable:
        cameras = self.health()
        gauges = {
            "fps": GaugeMetricFamily("safecity_camera_fps", "Analysed frames per second", labels=["camera"]),
            "lag_seconds": GaugeMetricFamily(
                "safecity_camera_lag_seconds", "Delay between capture and analysis", labels=["camera"]
            ),
            "queue_depth": GaugeMetricFamily(
                "safecity_camera_queue_depth", "Frames waiting for analysis", labels=["camera"]
            ),
        }
        counters = {
            "frames": CounterMetricFamily("safecity_camera_frames", "Frames analysed", labels=["camera"]),
            "dropped": CounterMetricFamily(
                "safecity_camera_dropped_frames", "Frames dropped because analysis fell behind", labels=["camera"]
            ),
            "errors": CounterMetricFamily("safecity_camera_errors", "Source and pipeline errors", labels=["camera"]),
            "reconnects": CounterMetricFamily("safecity_camera_reconnects", "Stream reopen attempts", labels=["camera"]),
            "events": CounterMetricFamily("safecity_camera_events", "Events stored", labels=["camera"]),
        }
        up = GaugeMetricFamily("safecity_camera_up", "1 while the camera delivers frames", labels=["camera"])
        stage_ms = GaugeMetricFamily(
            "safecity_stage_ms", "Mean milliseconds per frame in each stage (inference included)",
            labels=["camera", "stage"],
        )
        for camera in cameras:
            name = camera["name"]
            for key, family in gauges.items():
                family.add_metric([name], float(camera.get(key) or 0.0))
            for key, family in counters.items():
                family.add_metric([name], float(camera.get(key) or 0))
            up.add_metric([name], 1.0 if camera.get("state") == "running" else 0.0)
            for stage, ms in (camera.get("analyser_ms") or {}).items():
                stage_ms.add_metric([name, stage], float(ms))
        yield from gauges.values()
        yield from counters.values()
        yield up
        yield stage_ms


def engine_registry(health: Callable[[], list[dict]]) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(EngineCollector(health))
    return registry
