"""Voting across the reads of one vehicle's plate along its track.

A tracked vehicle is read in many frames; single reads disagree (blur, angle, a
character hidden for a moment). :func:`vote` combines them: readings of the most
supported length vote position by position, each weighted by its per-character
confidence, so more reads and more confident reads win; an unknown character (``?``)
in one read is filled by the others. The result names the read whose crop best shows
the winning text (for the event's snapshot).

A track none of whose reads gave any text is *unreadable*: it is returned as such
(``readable`` false, empty text) and counted by :class:`TrackVotes`, never dropped.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from safecity.plates.grammar import UNKNOWN, normalise_text


@dataclass(frozen=True, slots=True)
class Read:
    """One read of a plate in one frame. ``char_confidences`` may be empty (then every
    character counts with ``confidence``); ``quality`` ranks crops when no read has
    text (e.g. detection confidence times plate width)."""

    text: str
    confidence: float
    char_confidences: tuple[float, ...] = ()
    quality: float = 0.0

    @classmethod
    def of(cls, read: object, quality: float = 0.0) -> "Read":
        """From a :class:`safecity.plates.read.PlateRead`, a ``(text, confidence)`` pair,
        or a Read."""
        if isinstance(read, Read):
            return read
        if isinstance(read, tuple):
            text, conf = read[0], read[1]
            return cls(str(text or ""), float(conf), (), quality)
        text = getattr(read, "text", "") or ""
        return cls(text, float(getattr(read, "confidence", 0.0)),
                   tuple(getattr(read, "char_confidences", ()) or ()), quality)


@dataclass(frozen=True, slots=True)
class PlateVote:
    text: str  # "" when unreadable
    confidence: float  # 0..1: agreement among reads times their confidence
    best_index: int  # the read whose crop to keep (-1 only when there were no reads)
    reads: int  # how many reads were offered
    support: int  # how many readable reads agree with the text
    unreadable_reads: int  # reads that gave no text
    char_confidences: tuple[float, ...] = field(default=())

    @property
    def readable(self) -> bool:
        return bool(self.text)


def _compatible(a: str, b: str) -> bool:
    return len(a) == len(b) and all(x == y or UNKNOWN in (x, y) for x, y in zip(a, b))


def vote(reads: Sequence[object], qualities: Sequence[float] | None = None) -> PlateVote:
    """Combine the reads of one track. ``reads``: PlateRead objects, ``(text,
    confidence)`` pairs or :class:`Read`; ``qualities`` optionally ranks their crops."""
    items = [Read.of(r, qualities[i] if qualities is not None else 0.0) for i, r in enumerate(reads)]
    items = [Read(normalise_text(r.text), r.confidence, r.char_confidences, r.quality) for r in items]
    n = len(items)
    if n == 0:
        return PlateVote("", 0.0, -1, 0, 0, 0)
    readable = [i for i, r in enumerate(items) if r.text]
    unreadable = n - len(readable)
    if not readable:
        best = max(range(n), key=lambda i: (items[i].quality, -i))
        return PlateVote("", 0.0, best, n, 0, unreadable)

    def weights(r: Read) -> list[float]:
        cc = list(r.char_confidences)
        if len(cc) != len(r.text):
            cc = [r.confidence] * len(r.text)
        return [max(0.0, min(1.0, c)) for c in cc]

    # 1. the length most supported (sum of read confidences)
    by_length: dict[int, float] = defaultdict(float)
    for i in readable:
        by_length[len(items[i].text)] += max(items[i].confidence, 1e-6)
    length = max(by_length, key=lambda k: (by_length[k], k))
    voters = [i for i in readable if len(items[i].text) == length]

    # 2. position by position, confidence-weighted; '?' only where nobody saw a character
    text, char_conf = [], []
    for pos in range(length):
        tally: dict[str, float] = defaultdict(float)
        total = 0.0
        for i in voters:
            c = items[i].text[pos]
            w = weights(items[i])[pos]
            if c == UNKNOWN:
                continue
            tally[c] += w + 1e-6
            total += w + 1e-6
        if not tally:
            text.append(UNKNOWN)
            char_conf.append(0.0)
            continue
        c = max(tally, key=lambda k: (tally[k], k))
        text.append(c)
        # the winner's share of the weight, times its mean confidence
        agreeing = [weights(items[i])[pos] for i in voters if items[i].text[pos] == c]
        char_conf.append(tally[c] / total * (sum(agreeing) / len(agreeing)))
    result = "".join(text)

    support = [i for i in readable if _compatible(items[i].text, result)]
    all_weight = sum(max(items[i].confidence, 1e-6) for i in readable)
    agree_weight = sum(max(items[i].confidence, 1e-6) for i in support)
    mean_conf = agree_weight / max(len(support), 1)
    confidence = (agree_weight / all_weight) * min(1.0, mean_conf) if support else 0.0
    best = max(support or voters, key=lambda i: (
        items[i].text == result, items[i].confidence, items[i].quality, -i))
    return PlateVote(result, float(confidence), best, n, len(support), unreadable, tuple(char_conf))


class TrackVotes:
    """Collects reads per track and votes when a track ends. Unreadable tracks are kept
    and counted (``unreadable_tracks``), as are readable ones."""

    def __init__(self) -> None:
        self._reads: dict[object, list[Read]] = defaultdict(list)
        self.readable_tracks = 0
        self.unreadable_tracks = 0

    def add(self, track_id: object, read: object, quality: float = 0.0) -> None:
        self._reads[track_id].append(Read.of(read, quality))

    def pending(self) -> list[object]:
        return list(self._reads)

    def peek(self, track_id: object) -> PlateVote:
        """The vote so far, without ending the track."""
        return vote(self._reads.get(track_id, []))

    def finish(self, track_id: object) -> PlateVote:
        result = vote(self._reads.pop(track_id, []))
        if result.reads:
            if result.readable:
                self.readable_tracks += 1
            else:
                self.unreadable_tracks += 1
        return result

    def finish_all(self) -> dict[object, PlateVote]:
        return {t: self.finish(t) for t in list(self._reads)}


def vote_texts(texts: Iterable[tuple[str, float]]) -> PlateVote:
    """Convenience: vote over ``(text, confidence)`` pairs."""
    return vote(list(texts))
