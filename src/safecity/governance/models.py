"""Stored forms of watchlists, their entries and the templates of enrolled people."""

from __future__ import annotations

from datetime import datetime

import numpy as np
from sqlalchemy import Float, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from safecity.db import Base, UTCDateTime


class Watchlist(Base):
    __tablename__ = "watchlists"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    threshold: Mapped[float | None] = mapped_column(Float)
    description: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    entries: Mapped[list["WatchlistEntry"]] = relationship(
        back_populates="watchlist", cascade="all, delete-orphan", passive_deletes=True
    )


class WatchlistEntry(Base):
    __tablename__ = "watchlist_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    watchlist_id: Mapped[int] = mapped_column(ForeignKey("watchlists.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(256))
    plate: Mapped[str | None] = mapped_column(String(32))
    legal_basis: Mapped[str] = mapped_column(Text)
    purpose: Mapped[str] = mapped_column(Text)
    authoriser: Mapped[str] = mapped_column(String(256))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    approved_by: Mapped[str | None] = mapped_column(String(256))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    watchlist: Mapped[Watchlist] = relationship(back_populates="entries")
    templates: Mapped[list["FaceTemplate"]] = relationship(
        back_populates="entry", cascade="all, delete-orphan", passive_deletes=True
    )

    def is_active(self, now: datetime) -> bool:
        """Matches only when approved by a second person and not expired."""
        return self.approved_at is not None and self.expires_at > now


class FaceTemplate(Base):
    """The template of a person someone with authority put on a watchlist (never anyone else's)."""

    __tablename__ = "face_templates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("watchlist_entries.id", ondelete="CASCADE"))
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    image_sha256: Mapped[str] = mapped_column(String(64))
    quality: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    entry: Mapped[WatchlistEntry] = relationship(back_populates="templates")

    @property
    def embedding(self) -> np.ndarray:
        return np.frombuffer(self.vector, dtype=np.float32)
