"""Stored forms of terminal sites, consented enrolments, their templates, attempts and challenges.

The schema is owned by migration 0006. These tables have no relation to the watchlist
tables: terminal templates are never matched against a watchlist, and no watchlist
code reads them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from safecity.db import Base, UTCDateTime


class TerminalSite(Base):
    __tablename__ = "terminal_sites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    enrolments: Mapped[list["TerminalEnrolment"]] = relationship(
        back_populates="site", cascade="all, delete-orphan", passive_deletes=True
    )


class TerminalEnrolment(Base):
    """A person who consented to face verification at one site, under one badge."""

    __tablename__ = "terminal_enrolments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("terminal_sites.id", ondelete="CASCADE"))
    badge_digest: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(256))
    consent_subject: Mapped[str] = mapped_column(String(256))
    consent_at: Mapped[datetime] = mapped_column(UTCDateTime())
    consent_method: Mapped[str] = mapped_column(String(256))
    consent_reference: Mapped[str] = mapped_column(String(256))
    consent_recorded_by: Mapped[str] = mapped_column(String(256))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    site: Mapped[TerminalSite] = relationship(back_populates="enrolments")
    templates: Mapped[list["TerminalTemplate"]] = relationship(
        back_populates="enrolment", cascade="all, delete-orphan", passive_deletes=True
    )


class TerminalTemplate(Base):
    __tablename__ = "terminal_templates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    enrolment_id: Mapped[int] = mapped_column(ForeignKey("terminal_enrolments.id", ondelete="CASCADE"))
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    quality: Mapped[float] = mapped_column(Float)
    image_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    enrolment: Mapped[TerminalEnrolment] = relationship(back_populates="templates")


class TerminalAttempt(Base):
    """One attempt at a door, kept for rate limits and lockouts (the door event is the record)."""

    __tablename__ = "terminal_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("terminal_sites.id", ondelete="CASCADE"))
    terminal: Mapped[str] = mapped_column(String(128))
    badge_digest: Mapped[str | None] = mapped_column(String(64))
    ts: Mapped[float] = mapped_column(Float)
    outcome: Mapped[str] = mapped_column(String(16))
    decision_key: Mapped[str | None] = mapped_column(String(64))


class TerminalChallenge(Base):
    """A challenge issued by the central API: single use, valid until ``expires_at``."""

    __tablename__ = "terminal_challenges"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("terminal_sites.id", ondelete="CASCADE"))
    terminal: Mapped[str] = mapped_column(String(128))
    badge_digest: Mapped[str] = mapped_column(String(64))
    actions: Mapped[list[str]] = mapped_column(JSON)
    issued_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    used_at: Mapped[float | None] = mapped_column(Float)
