"""OpenAPI descriptions the routes cannot derive from a model: multipart upload bodies.

Routes that read ``multipart/form-data`` themselves (to refuse hostile uploads before
parsing them fully) take a plain ``Request``, so FastAPI documents no body; they pass
``openapi_extra=multipart_schema(...)`` to describe it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def multipart_schema(
    *,
    required: Sequence[str],
    strings: Sequence[str] = (),
    datetimes: Sequence[str] = (),
    files: Sequence[str] = (),
    descriptions: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """An ``openapi_extra`` for a required multipart body: text fields, date-time fields and
    repeatable binary file fields, in that order; ``descriptions`` adds a description to a field."""
    properties: dict[str, dict[str, Any]] = {name: {"type": "string"} for name in strings}
    properties |= {name: {"type": "string", "format": "date-time"} for name in datetimes}
    properties |= {name: {"type": "array", "items": {"type": "string", "format": "binary"}} for name in files}
    for name, text in (descriptions or {}).items():
        properties[name] = {**properties[name], "description": text}
    schema = {"type": "object", "required": list(required), "properties": properties}
    return {"requestBody": {"content": {"multipart/form-data": {"schema": schema}}, "required": True}}
