"""One validated configuration object, loaded from one YAML file (cameras are data).

Everything the system does is driven from here, as in Frigate: the cameras, what
analyses each one, the store, retention and thresholds. Validation happens once, at
start-up; :func:`load_config` turns pydantic's errors into lines that name the key
and the problem, so a typo stops the program with a sentence, not a traceback.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from safecity.pipeline.registry import ANALYSERS

Point = tuple[Annotated[float, Field(ge=0.0, le=1.0)], Annotated[float, Field(ge=0.0, le=1.0)]]


class ConfigError(ValueError):
    """A configuration that cannot run; its message is meant for the operator."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Zone(_Model):
    """A polygon in normalised image coordinates (0..1, origin top-left)."""

    name: str = Field(min_length=1)
    polygon: list[Point] = Field(min_length=3)


class Line(_Model):
    """A counting line from ``start`` to ``end`` in normalised image coordinates."""

    name: str = Field(min_length=1)
    start: Point
    end: Point

    @model_validator(mode="after")
    def _not_a_point(self) -> "Line":
        if self.start == self.end:
            raise ValueError("start and end must differ")
        return self


class Thresholds(_Model):
    """Decision thresholds; every camera inherits these unless it overrides them."""

    motion_pixel: int = Field(25, ge=1, le=255, description="grey-level change that counts as motion")
    motion_area: float = Field(
        0.002, gt=0.0, le=1.0, description="share of the frame that must change to wake the analysers"
    )
    event_min_seconds: float = Field(1.0, ge=0.0, description="motion shorter than this is no event")
    event_gap_seconds: float = Field(3.0, gt=0.0, description="stillness that ends an event")
    event_max_seconds: float = Field(300.0, gt=0.0, description="a longer event is closed and a new one begun")
    count_interval_seconds: float = Field(60.0, gt=0.0, description="length of one bin of the count time series")


class Reconnect(_Model):
    """Exponential back-off between attempts to reopen a lost stream."""

    initial_seconds: float = Field(1.0, gt=0.0)
    max_seconds: float = Field(30.0, gt=0.0)
    open_timeout_seconds: float = Field(10.0, gt=0.0)


class Camera(_Model):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    source: str = Field(min_length=1, description="file path, rtsp://, rtsp(s)://, http(s):// URL")
    fps: float = Field(5.0, gt=0.0, le=60.0, description="analysis frames per second")
    enabled: bool = True
    loop: bool = Field(False, description="replay a file source forever")
    realtime: bool = Field(
        True, description="pace a file source to its own clock; false: as fast as it decodes, times from the file"
    )
    analysers: list[str] = Field(default_factory=lambda: ["motion"])
    zones: list[Zone] = Field(default_factory=list)
    lines: list[Line] = Field(default_factory=list)
    thresholds: Thresholds | None = None
    reconnect: Reconnect = Field(default_factory=Reconnect)
    plate_country: str | None = Field(
        None,
        description="country of most plates this camera sees (us, es, de, ...): its formats are preferred; "
        "default: learned from the camera's own confident readings",
    )

    @field_validator("plate_country")
    @classmethod
    def _known_country(cls, value: str | None) -> str | None:
        from safecity.plates.grammar import known_country

        return None if value is None else known_country(value)

    @field_validator("analysers")
    @classmethod
    def _known_analysers(cls, value: list[str]) -> list[str]:
        unknown = [name for name in value if name not in ANALYSERS]
        if unknown:
            raise ValueError(f"unknown analyser {unknown[0]!r}; known: {', '.join(sorted(ANALYSERS))}")
        if len(set(value)) != len(value):
            raise ValueError("an analyser is listed twice")
        return value

    @property
    def is_file(self) -> bool:
        return "://" not in self.source or self.source.startswith("file://")


class Store(_Model):
    url: str = Field("sqlite:///var/safecity.db", description="SQLAlchemy URL: sqlite:///… or postgresql://…")
    media_dir: str | None = Field(None, description="snapshots folder; default: media/ beside the database")

    @field_validator("url")
    @classmethod
    def _supported(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql://", "postgresql+psycopg://")):
            raise ValueError("must start with sqlite:// or postgresql://")
        return value


class Retention(_Model):
    """How long each kind of record is kept, in days (enforced by the retention job)."""

    events_days: int = Field(30, ge=1)
    face_matches_days: int = Field(30, ge=1)
    plate_reads_days: int = Field(30, ge=1)
    counts_days: int = Field(90, ge=1)
    media_days: int = Field(7, ge=1, description="snapshots and clips of events without an alert")


class Mqtt(_Model):
    """Events published Frigate-style: <prefix>/events, <prefix>/<camera>/<type>, <prefix>/available."""

    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    topic_prefix: str = Field("safecity", pattern=r"^[A-Za-z0-9_/-]+$")
    username: str | None = None
    password: str | None = None
    client_id: str = "safecity"


class Webhook(_Model):
    """An HTTP endpoint that receives events as signed JSON POSTs, retried on failure."""

    url: str = Field(pattern=r"^https?://")
    secret: str = Field(min_length=16, description="HMAC-SHA256 key; the receiver checks X-Safecity-Signature")
    types: list[str] = Field(default_factory=list, description="event types to send; empty = all")
    max_attempts: int = Field(6, ge=1, le=20)
    timeout_seconds: float = Field(5.0, gt=0)


class Outputs(_Model):
    mqtt: Mqtt | None = None
    webhooks: list[Webhook] = Field(default_factory=list)


class Api(_Model):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)


class Config(_Model):
    cameras: list[Camera] = Field(default_factory=list)
    store: Store = Field(default_factory=Store)
    retention: Retention = Field(default_factory=Retention)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    api: Api = Field(default_factory=Api)
    outputs: Outputs = Field(default_factory=Outputs)

    @field_validator("cameras")
    @classmethod
    def _unique_names(cls, value: list[Camera]) -> list[Camera]:
        seen: set[str] = set()
        for camera in value:
            if camera.name in seen:
                raise ValueError(f"camera name {camera.name!r} is used twice")
            seen.add(camera.name)
        return value

    def thresholds_for(self, camera: Camera) -> Thresholds:
        return camera.thresholds or self.thresholds

    def digest(self) -> str:
        """A hash of the effective settings, so a change between runs can be audited."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


def _location(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def format_validation_error(error: ValidationError, source: str) -> str:
    lines = [f"invalid configuration in {source}:"]
    for item in error.errors():
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"  {_location(item['loc'])}: {message}")
    return "\n".join(lines)


def parse_config(data: Any, source: str = "<config>") -> Config:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"invalid configuration in {source}: the top level must be a mapping")
    try:
        return Config.model_validate(data)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error, source)) from None


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML config; raise :class:`ConfigError` with a readable message."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read config file {path}: {error}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(f"invalid YAML in {path}{where}: {problem}") from None
    return parse_config(data, str(path))
