import numpy as np

from safecity.vision.motion import MotionGate


def scene(seed: int = 0, noise: int = 4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.full((432, 768, 3), 90, np.uint8)
    return np.clip(base + rng.integers(-noise, noise + 1, base.shape), 0, 255).astype(np.uint8)


def test_static_scene_with_sensor_noise_stays_closed():
    gate = MotionGate()
    results = [gate.update(scene(seed)) for seed in range(20)]
    assert not any(r.active for r in results)
    assert max(r.area for r in results) < 0.002


def test_moving_object_opens_gate_with_its_region():
    gate = MotionGate()
    gate.update(scene(0))
    for step in range(1, 6):
        frame = scene(step)
        x = 100 + 40 * step
        frame[200:280, x : x + 60] = 250  # a bright object moving right
        motion = gate.update(frame)
    assert motion.active
    box = motion.regions.xyxy
    # the changed region covers the object in full-frame pixels
    assert (box[:, 0] <= x + 5).any() and (box[:, 2] >= x + 55).any()
    assert (box[:, 1] <= 205).any() and (box[:, 3] >= 275).any()


def test_tiny_change_below_min_area_is_ignored():
    gate = MotionGate(min_area=0.01)
    gate.update(scene(0))
    frame = scene(1)
    frame[10:16, 10:16] = 255
    assert not gate.update(frame).active


def test_global_change_relearns_instead_of_alarming():
    gate = MotionGate()
    gate.update(scene(0))
    lights_on = np.clip(scene(1).astype(int) + 120, 0, 255).astype(np.uint8)
    assert not gate.update(lights_on).active
    assert not gate.update(np.clip(scene(2).astype(int) + 120, 0, 255).astype(np.uint8)).active


def test_object_that_stops_is_absorbed_into_background():
    gate = MotionGate(learning_rate=0.2)
    gate.update(scene(0))
    parked = scene(1)
    parked[100:200, 100:200] = 240
    states = [gate.update(parked).active for _ in range(40)]
    assert states[0] and not states[-1]
