"""Tracking: identities for detections over time, how well that works, and what it counts.

- :mod:`~safecity.tracking.bytetrack`: the ByteTrack tracker (time-aware, per class).
- :mod:`~safecity.tracking.kalman`: its constant-velocity Kalman filter on boxes.
- :mod:`~safecity.tracking.metrics`: MOTA and IDF1, checked against motmetrics.
- :mod:`~safecity.tracking.analytics`: line crossings, zone occupancy and dwell time.
"""

from safecity.tracking.bytetrack import ByteTracker
from safecity.tracking.metrics import MotScores, MotTrajectories, evaluate

__all__ = ["ByteTracker", "MotScores", "MotTrajectories", "evaluate"]
