"""A constant-velocity Kalman filter on boxes, in seconds rather than frames.

The state is ``(cx, cy, w, h, vcx, vcy, vw, vh)``: box centre and size in pixels,
velocities in pixels per **second**. DeepSORT and ByteTrack express their noise per
frame at the benchmark's 30 fps, so their filters drift when a camera is analysed at
5 fps. Here process noise is a random walk whose variance grows linearly with the
elapsed time ``dt``, and prediction moves the box by ``velocity * dt``; the same
filter therefore behaves the same at 2, 5 or 30 analysis frames per second, and a
track coasting through an occlusion becomes less certain the longer it lasts.

Noise scales with the box's own size (width for x and w, height for y and h, as in
BoT-SORT), because detector jitter and plausible motion both grow with how close the
object is to the camera. The default densities reproduce DeepSORT's per-frame values
at 30 fps (position 1/20 of the size, velocity 1/160 of the size per frame).

Functions are batched over tracks (leading axis ``N``) so a frame costs a few array
operations, not a Python loop per track.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STATE_DIM = 8
MEASURE_DIM = 4
_REFERENCE_FPS = 30.0


def xyxy_to_cxcywh(xyxy: np.ndarray) -> np.ndarray:
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    w = xyxy[:, 2] - xyxy[:, 0]
    h = xyxy[:, 3] - xyxy[:, 1]
    return np.stack([xyxy[:, 0] + w / 2, xyxy[:, 1] + h / 2, w, h], axis=1)


def cxcywh_to_xyxy(cxcywh: np.ndarray) -> np.ndarray:
    c = np.asarray(cxcywh, dtype=np.float64).reshape(-1, 4)
    half_w, half_h = c[:, 2] / 2, c[:, 3] / 2
    return np.stack([c[:, 0] - half_w, c[:, 1] - half_h, c[:, 0] + half_w, c[:, 1] + half_h], axis=1)


@dataclass(frozen=True, slots=True)
class KalmanBoxFilter:
    """Noise settings plus the three filter steps: initiate, predict, update.

    ``position_std`` and ``velocity_std`` are per-frame standard deviations at
    ``reference_fps`` as fractions of the box size (DeepSORT's units, so published
    tunings carry over); they are converted to per-second densities internally.
    ``measurement_std`` is the detector's jitter, independent of time.
    """

    position_std: float = 1.0 / 20
    velocity_std: float = 1.0 / 160
    measurement_std: float = 1.0 / 20
    reference_fps: float = _REFERENCE_FPS

    def _scale(self, cxcywh: np.ndarray) -> np.ndarray:
        """Per-dimension size: w for cx and w, h for cy and h (N x 4)."""
        w = np.maximum(cxcywh[..., 2], 1.0)
        h = np.maximum(cxcywh[..., 3], 1.0)
        return np.stack([w, h, w, h], axis=-1)

    def initiate(self, measurements: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """New tracks from N x 4 ``cxcywh`` boxes: zero velocity, wide velocity prior."""
        z = np.asarray(measurements, dtype=np.float64).reshape(-1, MEASURE_DIM)
        n = len(z)
        mean = np.zeros((n, STATE_DIM))
        mean[:, :4] = z
        scale = self._scale(z)
        fps = self.reference_fps
        std = np.concatenate([2 * self.position_std * scale, 10 * self.velocity_std * fps * scale], axis=1)
        cov = np.zeros((n, STATE_DIM, STATE_DIM))
        idx = np.arange(STATE_DIM)
        cov[:, idx, idx] = std**2
        return mean, cov

    def predict(
        self, mean: np.ndarray, cov: np.ndarray, dt: np.ndarray | float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Move N states forward by ``dt`` seconds (a scalar or one per track)."""
        n = len(mean)
        dt = np.broadcast_to(np.asarray(dt, dtype=np.float64), (n,))
        if np.any(dt < 0):
            raise ValueError("cannot predict backwards in time")
        F = np.broadcast_to(np.eye(STATE_DIM), (n, STATE_DIM, STATE_DIM)).copy()
        for k in range(4):
            F[:, k, k + 4] = dt
        new_mean = np.einsum("nij,nj->ni", F, mean)
        scale = self._scale(mean[:, :4])
        fps = self.reference_fps
        # Per-frame variance at the reference rate, times frames elapsed (fps * dt).
        pos_var = (self.position_std * scale) ** 2 * (fps * dt)[:, None]
        vel_var = (self.velocity_std * fps * scale) ** 2 * (fps * dt)[:, None]
        Q = np.zeros_like(cov)
        idx = np.arange(4)
        Q[:, idx, idx] = pos_var
        Q[:, idx + 4, idx + 4] = vel_var
        new_cov = F @ cov @ np.transpose(F, (0, 2, 1)) + Q
        return new_mean, new_cov

    def update(
        self, mean: np.ndarray, cov: np.ndarray, measurements: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Correct N states with N matched ``cxcywh`` measurements."""
        z = np.asarray(measurements, dtype=np.float64).reshape(-1, MEASURE_DIM)
        r_std = self.measurement_std * self._scale(mean[:, :4])
        S = cov[:, :4, :4].copy()
        idx = np.arange(4)
        S[:, idx, idx] += r_std**2
        PHt = cov[:, :, :4]  # P H^T with H = [I 0]
        # K = P H^T S^-1, solved rather than inverted; S and P are symmetric.
        K = np.transpose(np.linalg.solve(S, np.transpose(PHt, (0, 2, 1))), (0, 2, 1))
        innovation = z - mean[:, :4]
        new_mean = mean + np.einsum("nij,nj->ni", K, innovation)
        new_cov = cov - K @ S @ np.transpose(K, (0, 2, 1))
        new_cov = (new_cov + np.transpose(new_cov, (0, 2, 1))) / 2  # keep it symmetric
        return new_mean, new_cov
