"""One instance of each model per process, shared by every camera that uses it.

Models are large and slow to load; cameras are many. The first analyser that asks
for a model loads it, the others get the same object. Model wrappers must be
thread-safe (InferenceModel is).
"""

from __future__ import annotations

import threading
from typing import Callable, TypeVar

T = TypeVar("T")

_models: dict[str, object] = {}
_lock = threading.Lock()


def shared(name: str, factory: Callable[[], T]) -> T:
    with _lock:
        if name not in _models:
            _models[name] = factory()
        return _models[name]  # type: ignore[return-value]
