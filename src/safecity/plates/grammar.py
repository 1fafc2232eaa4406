"""Plate text: normalisation, per-country format grammars, and choosing the best reading.

A *grammar* is a named set of patterns, one character class per position:

    N digit   L letter A-Z   A letter or digit   C Spanish consonant (no vowels, Q, Ñ)
    D Chinese-plate letter or digit (no I, O)    P Chinese province character
    [XYZ] one of these characters                {NAME} one code from the code list NAME
    x? optional token (any token)                ( ... )? an optional group is not supported:
                                                 write the alternatives as separate patterns

The reader gives, for each character it saw, its confidence and the model's probability
for other characters at that position (:class:`CharChoice`). A reading fits a pattern
when every position's character is in the pattern's class; where it is not, the
character may be replaced only by

- a *look-alike* of a class the pattern demands (O/0, I/1, B/8, S/5, Z/2, G/6, ...), at a
  cost, or by the model's own probability for that character if it is higher;
- another character the model itself gave some probability at that position.

Nothing is changed where no grammar demands it: a reading that fits only the generic
pattern of its own length is kept as read.

Unknown characters (``?``): the reader offers layouts with up to three unseen
characters inserted (:func:`line_candidates`); each layout is weighed by how evenly the
seen characters then sit on their slots (characters on a plate are evenly spaced, up to
one space between groups), whether there is room at the ends, and how plausible the
implied pitch is for the line's height, relative to the line's best layout. Only a
country grammar may take unknowns (never the generic one, never inside a code such as a
Spanish province), each at a low fixed confidence.

A character at either end may be dropped (a country code in the EU band), at a cost.
Among all (reading, pattern) pairs the highest score wins: the grammar's prior times the
geometric mean of the per-character confidences times the layout's evidence.
:class:`RegionPrior` lets a camera learn which country's grammars to prefer.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable, Sequence

import numpy as np

UNKNOWN = "?"
UNKNOWN_CONFIDENCE = 0.2
# An unknown character fills only a slot open to at least this many characters. The one-
# or two-letter slots are the marks of rare special series (Spain's E/R prefix, Germany's
# E/H suffix); letting a '?' stand there turned ordinary plates read with one '?' too many
# into such a series (uc3m-es: 0.858 with a '?' allowed there, 0.862 without).
UNKNOWN_MIN_SLOT = 3
LOOKALIKE_FACTOR = 0.3  # a look-alike replacement keeps this share of the read char's confidence
MIN_ALTERNATIVE = 0.02  # a model alternative below this is not considered

DIGITS = "0123456789"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# Chinese provinces and the special-use characters found on Chinese plates
CN_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
CN_SUFFIXES = "学警挂港澳领使试超"

# Pairs that OCR confuses; a grammar may swap one for the other where it demands it.
LOOKALIKES: dict[str, str] = {
    "0": "ODQU",
    "O": "0DQ",
    "D": "0O",
    "Q": "0O",
    "U": "0V",
    "1": "IJLT",
    "I": "1JLT",
    "J": "1I",
    "L": "1I",
    "T": "1I7",
    "2": "Z",
    "Z": "27",
    "5": "S",
    "S": "58",
    "8": "BS",
    "B": "86",
    "6": "GB",
    "G": "6C",
    "C": "G",
    "7": "TZ",
    "4": "A",
    "A": "4",
    "V": "UY",
    "Y": "V",
    "M": "N",
    "N": "MH",
    "H": "N",
    "K": "X",
    "X": "K",
    "E": "F",
    "F": "E",
    "P": "R",
    "R": "P",
}

CLASSES: dict[str, str] = {
    "N": DIGITS,
    "L": LETTERS,
    "A": LETTERS + DIGITS,
    "C": "BCDFGHJKLMNPRSTVWXYZ",
    "D": LETTERS.replace("I", "").replace("O", "") + DIGITS,
    "P": CN_PROVINCES,
    "S": CN_SUFFIXES,
}

CODE_LISTS: dict[str, tuple[str, ...]] = {
    # Spanish provincial codes (1971-2000 series and earlier)
    "ES_PROV": tuple(
        "A AB AL AV B BA BI BU C CA CC CE CO CR CS CU GC GE GI GR GU H HU IB J L LE LO LU M MA ML MU "
        "NA O OU OR P PM PO S SA SE SG SO SS T TE TF TO V VA VI Z ZA".split()
    ),
    # Slovak district codes
    "SK_DISTRICT": tuple(
        "BA BB BC BE BI BJ BL BN BR BS BT BY CA DK DS DT GA GL HC HE IL KA KC KE KI KK KM KN KS LC LE LL LM "
        "LV MA MI ML MT MY NI NM NO NR NZ PB PD PE PK PN PO PP PS PT PU PV RA RK RS RV SA SB SC SE SI SK SL "
        "SN SO SP SV TA TC TN TO TR TS TT TV VK VT ZA ZC ZH ZI ZM ZV".split()
    ),
}


@dataclass(frozen=True, slots=True)
class Grammar:
    name: str
    description: str
    patterns: tuple[str, ...]
    prior: float
    unknowns: bool = True  # may unseen characters ('?') fill its positions?
    # may a character be swapped for a fixed look-alike the model itself did not see?
    # Not for a loose union of formats (US states: many formats are not listed), where
    # a mismatch says little about the character.
    lookalikes: bool = True


GRAMMARS: dict[str, Grammar] = {
    g.name: g
    for g in [
        Grammar("es", "Spain since 2000: 1234 BCD (consonants only)", ("NNNNCCC", "[ER]NNNNCCC"), 1.0),
        Grammar(
            "es-old",
            "Spain, provincial series: M 1234 AB (1971-2000), M 123456 (before)",
            ("{ES_PROV}NNNNL", "{ES_PROV}NNNNLL", "{ES_PROV}NNNNNN", "{ES_PROV}NNNNN"),
            0.85,
        ),
        Grammar("sk", "Slovakia: district, 3 digits, 2 letters (BA 123 AB)", ("{SK_DISTRICT}NNNLL",), 0.9),
        Grammar("cz", "Czechia: 1A2 3456", ("NLANNNN",), 0.9),
        Grammar("pl", "Poland: 2-3 letter district + 4-5 characters", ("LLNNNNN", "LLNNNNL", "LLNNNLL", "LLLNNNN",
                                                                       "LLLNNLL", "LLLLNNN"), 0.8),
        Grammar(
            "de",
            "Germany: district (1-3 letters), 1-2 letters, 1-4 digits (no leading 0), optional E/H",
            tuple(
                "L" * a + "L" * b + "[123456789]" + "N" * (c - 1) + s
                for a in (1, 2, 3)
                for b in (1, 2)
                for c in (1, 2, 3, 4)
                for s in ("", "[EH]")
                if a + b + c + len(s and "x") <= 8
            ),
            0.8,
        ),
        Grammar("br", "Brazil, old series: ABC 1234", ("LLLNNNN",), 0.85),
        Grammar("br-mercosur", "Brazil, Mercosur: ABC1D23", ("LLLNLNN",), 0.9),
        Grammar(
            "cn",
            "China: province, letter, 5 (6 for new-energy) letters/digits without I and O",
            ("PLDDDDD", "PLDDDDDD", "PLDDDDS"),
            0.9,
        ),
        Grammar(
            "us",
            "USA, common state serial formats",
            # (NLNNNNN: California commercial vehicles, 1A23456; NNNNNLN: their older series, 12345A1)
            ("NLLLNNN", "LLLNNNN", "LLLNNN", "NNNLLL", "NLLNNN", "LLNNNNN", "NNNNNNN", "LNNNNNN", "NNNNNN", "NLNNNNN",
             "LLLNLN", "LLNLNL", "NNNNNLN"),
            0.85,
            lookalikes=False,
        ),
        Grammar("generic", "any 2-8 letters/digits (vanity and unlisted formats)", tuple("A" * n for n in range(2, 9)),
                0.6, unknowns=False),
    ]
}

NO_GRAMMAR_PRIOR = 0.3
EDGE_DROP_COST = 0.7  # reading without a character at the plate's edge
# A mark between a plate's character groups (a state emblem, an inspection sticker) may
# be read as a character: a reading of MIDDLE_DROP_MIN characters or more is also offered
# without its middle one (either middle one of an even length), at a stray edge
# character's cost.
MIDDLE_DROP_COST = EDGE_DROP_COST
MIDDLE_DROP_MIN = 7  # a stray mark in the shortest grouped formats (6 characters)


# --------------------------------------------------------------------------------------
# Normalisation


def normalise_char(char: str) -> str:
    """One recognised character as plate text: upper-case ASCII letters and digits, CJK
    characters as they are; accents dropped (Ö -> O), full-width forms folded; anything
    else (separators, punctuation) becomes ''."""
    if not char or len(char) != 1:
        return ""
    if "\u4e00" <= char <= "\u9fff":
        return char
    folded = unicodedata.normalize("NFKD", char)
    base = "".join(c for c in folded if not unicodedata.combining(c)).upper()
    if len(base) == 1 and (base in DIGITS or base in LETTERS):
        return base
    return ""


_SEPARATORS = re.compile(r"[\s\-\.·•:_/]+")


def normalise_text(text: str) -> str:
    """A whole plate string as compared and stored: separators removed, characters
    normalised as :func:`normalise_char` does (``?`` kept)."""
    out = []
    for c in _SEPARATORS.sub("", text):
        if c == UNKNOWN:
            out.append(c)
        else:
            out.append(normalise_char(c))
    return "".join(out)


# --------------------------------------------------------------------------------------
# Patterns


@dataclass(frozen=True, slots=True)
class _Slot:
    chars: frozenset[str] | None = None  # a class of single characters
    words: tuple[str, ...] = ()  # or one of these codes (all the same length)

    @property
    def length(self) -> int:
        return len(self.words[0]) if self.words else 1


_TOKEN = re.compile(r"\{([A-Z_]+)\}|\[([^\]]+)\]|([A-Z])")


def _tokens(pattern: str) -> list[tuple[list[_Slot], bool]]:
    """Parse a pattern into tokens; each token is a list of alternative slots (codes of
    different lengths become different slots) and whether it is optional."""
    tokens: list[tuple[list[_Slot], bool]] = []
    pos = 0
    pattern = pattern.replace(" ", "")
    while pos < len(pattern):
        m = _TOKEN.match(pattern, pos)
        if not m:
            raise ValueError(f"bad plate pattern {pattern!r} at {pos}")
        pos = m.end()
        optional = pos < len(pattern) and pattern[pos] == "?"
        if optional:
            pos += 1
        if m.group(1):
            codes = CODE_LISTS[m.group(1)]
            by_length: dict[int, list[str]] = {}
            for code in codes:
                by_length.setdefault(len(code), []).append(code)
            slots = [_Slot(words=tuple(v)) for _, v in sorted(by_length.items())]
        elif m.group(2):
            slots = [_Slot(chars=frozenset(m.group(2)))]
        else:
            slots = [_Slot(chars=frozenset(CLASSES[m.group(3)]))]
        tokens.append((slots, optional))
    return tokens


@lru_cache(maxsize=None)
def compile_pattern(pattern: str) -> tuple[tuple[_Slot, ...], ...]:
    """All fixed-layout expansions of a pattern (optional tokens and code lengths)."""
    expansions: list[tuple[_Slot, ...]] = [()]
    for slots, optional in _tokens(pattern):
        nxt = []
        for e in expansions:
            if optional:
                nxt.append(e)
            nxt.extend(e + (s,) for s in slots)
        expansions = nxt
    return tuple(expansions)


def _length(expansion: tuple[_Slot, ...]) -> int:
    return sum(s.length for s in expansion)


@lru_cache(maxsize=None)
def _patterns_by_length(names: tuple[str, ...]) -> dict[int, list[tuple[Grammar, str, tuple[_Slot, ...]]]]:
    table: dict[int, list[tuple[Grammar, str, tuple[_Slot, ...]]]] = {}
    for name in names:
        grammar = GRAMMARS[name]
        for pattern in grammar.patterns:
            for expansion in compile_pattern(pattern):
                table.setdefault(_length(expansion), []).append((grammar, pattern, expansion))
    return table


def matches(text: str, grammar: str) -> bool:
    """Does the (normalised) text fit one of the grammar's patterns exactly, as read?"""
    text = normalise_text(text)
    for g, _, expansion in _patterns_by_length((grammar,)).get(len(text), []):
        i = 0
        ok = True
        for slot in expansion:
            part = text[i : i + slot.length]
            if slot.words:
                ok = part in slot.words
            else:
                ok = part in slot.chars or part == UNKNOWN
            if not ok:
                break
            i += slot.length
        if ok:
            return True
    return False


# --------------------------------------------------------------------------------------
# Scoring readings


@dataclass(slots=True)
class CharChoice:
    """What the reader saw at one position: its character, confidence, and the model's
    probabilities for other characters there. ``char == '?'``: an unseen character."""

    char: str
    confidence: float
    alternatives: dict[str, float] = field(default_factory=dict)

    def options(self, allowed: Iterable[str], lookalikes: bool = True,
                glyphs: dict[str, str] | None = None) -> tuple[str, float] | None:
        """The best character from ``allowed`` for this position, with its confidence.
        ``glyphs``: characters the plate prints alike (US: O and 0), each other's at
        full confidence."""
        allowed = allowed if isinstance(allowed, (set, frozenset)) else set(allowed)
        if self.char == UNKNOWN:
            return (UNKNOWN, UNKNOWN_CONFIDENCE) if len(allowed) >= UNKNOWN_MIN_SLOT else None
        if self.char in allowed:
            return self.char, self.confidence
        if glyphs and glyphs.get(self.char) in allowed:
            return glyphs[self.char], self.confidence
        best: tuple[str, float] | None = None
        for c in LOOKALIKES.get(self.char, "") if lookalikes else "":
            if c in allowed:
                q = max(self.confidence * LOOKALIKE_FACTOR, self.alternatives.get(c, 0.0))
                if best is None or q > best[1]:
                    best = (c, q)
        for c, p in self.alternatives.items():
            if c in allowed and p >= MIN_ALTERNATIVE and (best is None or p > best[1]):
                best = (c, p)
        return best


@dataclass(slots=True)
class Candidate:
    """One way of reading a plate: its characters in order (unknowns included)."""

    chars: list[CharChoice]
    evidence: list[float] = field(default_factory=list)  # how well hidden characters fit the gaps
    country_only: bool = False  # may win only under a country's format (not generic, not as read)

    @property
    def raw(self) -> str:
        return "".join(c.char for c in self.chars)


@dataclass(slots=True)
class Reading:
    text: str
    score: float
    confidence: float
    char_confidences: list[float]
    grammar: str | None
    pattern: str | None
    raw: str


def _fit(chars: Sequence[CharChoice], expansion: tuple[_Slot, ...],
         lookalikes: bool = True, glyphs: dict[str, str] | None = None,
         memo: dict | None = None) -> tuple[str, list[float]] | None:
    """The best reading of ``chars`` in one expansion of a pattern, with each character's
    confidence; None if a position fits nowhere. ``memo``: a dict kept over many calls
    on the same characters (the patterns of a grammar share their character classes, so
    the same question is asked of a position many times); it must not outlive them,
    since it is keyed by the characters' identity."""
    if memo is None:
        memo = {}
    text: list[str] = []
    confs: list[float] = []
    i = 0

    def option(choice: CharChoice, allowed: frozenset[str] | str) -> tuple[str, float] | None:
        key = (id(choice), allowed, lookalikes, id(glyphs))
        try:
            return memo[key]
        except KeyError:
            got = memo[key] = choice.options((allowed,) if isinstance(allowed, str) else allowed, lookalikes, glyphs)
            return got

    for slot in expansion:
        if slot.words:
            n = slot.length
            part = chars[i : i + n]
            best: tuple[str, list[float], float] | None = None
            for word in slot.words:
                qs = []
                for choice, target in zip(part, word):
                    got = None if choice.char == UNKNOWN else option(choice, target)
                    if got is None:
                        break
                    qs.append(got[1])
                else:
                    total = sum(math.log(max(q, 1e-9)) for q in qs)
                    if best is None or total > best[2]:
                        best = (word, qs, total)
            if best is None:
                return None
            text.append(best[0])
            confs.extend(best[1])
            i += n
        else:
            got = option(chars[i], slot.chars)  # type: ignore[arg-type]
            if got is None:
                return None
            text.append(got[0])
            confs.append(got[1])
            i += 1
    return "".join(text), confs


def _geomean(values: Sequence[float]) -> float:
    if not values:
        return 0.0
    return math.exp(sum(math.log(max(v, 1e-9)) for v in values) / len(values))


def score_candidates(candidates: Sequence[Candidate], grammars: Sequence[str] | None = None,
                     priors: dict[str, float] | None = None) -> Reading | None:
    """The best reading among candidates under the given grammars (default: all).
    ``priors`` overrides grammars' priors by name (see :class:`RegionPrior`)."""
    names = tuple(grammars) if grammars else tuple(GRAMMARS)
    for name in names:
        if name not in GRAMMARS:
            raise ValueError(f"unknown plate grammar {name!r} (known: {', '.join(GRAMMARS)})")
    table = _patterns_by_length(names)
    top_prior = max([priors.get(n, GRAMMARS[n].prior) if priors else GRAMMARS[n].prior for n in names]
                    + [priors.get("", NO_GRAMMAR_PRIOR) if priors else NO_GRAMMAR_PRIOR])

    def bound(cand: Candidate) -> float:
        # no reading of this candidate can score more: every confidence is at most 1,
        # an unknown's is fixed
        k = sum(c.char == UNKNOWN for c in cand.chars)
        return top_prior * math.prod(cand.evidence) * UNKNOWN_CONFIDENCE ** (k / max(1, len(cand.chars)))

    best: Reading | None = None
    memo: dict = {}  # _fit's answers, while the candidates (the keys' characters) live
    for cand in sorted(candidates, key=bound, reverse=True):
        chars = cand.chars
        if not chars:
            continue
        if best is not None and bound(cand) < best.score:
            break  # sorted by bound: none of the rest can win
        has_unknowns = UNKNOWN in cand.raw
        for grammar, pattern, expansion in table.get(len(chars), []):
            if (has_unknowns and not grammar.unknowns) or (cand.country_only and grammar.name == "generic"):
                continue
            fitted = _fit(chars, expansion, grammar.lookalikes, ONE_GLYPH.get(_FAMILY_OF.get(grammar.name, "")), memo)
            if fitted is None:
                continue
            text, confs = fitted
            conf = _geomean(confs)
            prior = priors.get(grammar.name, grammar.prior) if priors else grammar.prior
            score = prior * conf * math.prod(cand.evidence)
            if best is None or score > best.score:
                best = Reading(text, score, conf, confs, grammar.name, pattern, cand.raw)
        # no grammar: the reading as it is (unknowns only come in where a grammar needs them)
        if not has_unknowns and not cand.country_only:
            confs = [c.confidence for c in chars]
            conf = _geomean(confs)
            prior = priors.get("", NO_GRAMMAR_PRIOR) if priors else NO_GRAMMAR_PRIOR
            score = prior * conf * math.prod(cand.evidence)
            if best is None or score > best.score:
                best = Reading(cand.raw, score, conf, confs, None, None, cand.raw)
    return best


# --------------------------------------------------------------------------------------
# From the reader's lines to candidates, with unknowns where characters are missing


SPACING_SIGMA = 0.3  # spread of character spacing, in pitches
GROUP_SPACE = 2.0  # the most a space between character groups adds, in pitches (Chinese: the dot)
MIN_TWO_SPACES = 6  # lines of this many characters placed (seen, or unknown on a found box) may have two group spaces


def _gauss(x: float, sigma: float = SPACING_SIGMA) -> float:
    return math.exp(-0.5 * (x / sigma) ** 2)


PITCH_PER_HEIGHT = 0.5  # typical character pitch over the line image's height
PITCH_SIGMA = 0.3  # spread of that ratio (log scale): fonts and crops differ


def _regularity(centres: Sequence[float], slots: Sequence[int], height: float) -> tuple[float, float]:
    """How well the seen characters sit on evenly spaced slots: a least-squares line
    (position = start + pitch x slot, plus a space between character groups, or two
    spaces (three groups: older Spanish plates, "M 1234 AB"), if that fits better), the
    fit of each character to it, and how plausible the pitch is for the line's height.
    Returns (fit, pitch)."""
    c = np.asarray(centres, np.float64)
    s = np.asarray(slots, np.float64)
    n = len(c)
    # the characters each group space follows: none, one split, or two splits
    inner = list(range(1, n - 2)) if n >= 5 else []
    splits: list[tuple[int, ...]] = [()] + [(j,) for j in inner]
    if n >= MIN_TWO_SPACES:
        splits += [(j, k) for j in range(0, n - 2) for k in range(j + 1, n - 1) if (j, k) != (0, n - 2)]
    X = np.zeros((len(splits), n, 4))
    X[:, :, 0] = 1.0
    X[:, :, 1] = s
    for m, cut in enumerate(splits):
        for g, j in enumerate(cut):
            X[m, j + 1 :, 2 + g] = 1.0
    XtX = np.einsum("kni,knj->kij", X, X)
    for m, cut in enumerate(splits):
        for g in range(len(cut), 2):
            XtX[m, 2 + g, 2 + g] = 1.0  # no such group-space column: keep the system solvable
    Xty = np.einsum("kni,n->ki", X, c)
    try:
        beta = np.linalg.solve(XtX, Xty[..., None])[..., 0]
    except np.linalg.LinAlgError:
        return 0.0, 0.0
    best, best_pitch = 0.0, 0.0
    for m, cut in enumerate(splits):
        pitch, gaps = beta[m, 1], beta[m, 2 : 2 + len(cut)]
        if pitch <= 0 or any(gap < -0.1 * pitch or gap > GROUP_SPACE * pitch for gap in gaps):
            continue
        resid = (c - X[m] @ beta[m]) / pitch
        fit = float(np.exp(-0.5 * np.sum((resid / SPACING_SIGMA) ** 2)))
        fit *= 0.9 ** len(cut)  # each group space is one more assumption
        if height > 0:
            fit *= _gauss(math.log(pitch / (PITCH_PER_HEIGHT * height)), PITCH_SIGMA)
        if fit > best:
            best, best_pitch = fit, float(pitch)
    return best, best_pitch


def _edge_fit(room: float, k: int, allowance: float) -> float:
    """At a line's ends margins vary (an EU band, the crop's margin): ``allowance``
    pitches of room are normal. ``k`` hidden characters need room for k characters;
    room far beyond the allowance suggests hidden ones."""
    if k == 0:
        return _gauss(max(0.0, room - allowance - 0.5) / 1.5)
    return _gauss(max(0.0, k - 0.2 - room))


def _insertions(n: int, most: int) -> list[tuple[int, ...]]:
    """Every way of putting 1..most unknowns into the n + 1 places around n characters
    (as a count per place)."""
    out: list[tuple[int, ...]] = []

    def rec(place: int, left: int, acc: list[int]) -> None:
        if place == n:
            acc.append(left)
            out.append(tuple(acc))
            acc.pop()
            return
        for k in range(left + 1):
            acc.append(k)
            rec(place + 1, left - k, acc)
            acc.pop()

    for total in range(1, most + 1):
        rec(0, total, [])
    return out


def line_candidates(line, max_unknowns: int = 3, min_evidence: float = 0.05) -> list[Candidate]:
    """Candidates for one decoded line (a :class:`safecity.plates.read.LineRead`): as
    read, and with up to ``max_unknowns`` unknown characters inserted. Each carries how
    well its layout fits the line (``evidence``): seen characters evenly spaced on their
    slots, unknowns where there is room for them, no wide unexplained room at the ends.
    A reading that ignores a gap one character wide is as doubtful as one that invents
    characters where none could hide."""
    chars = [CharChoice(c.char, c.confidence, dict(c.alternatives)) for c in line.chars]
    hidden = list(getattr(line, "hidden", None) or [])
    if max_unknowns <= 0:
        return [Candidate(chars)]
    centres = [c.centre for c in line.chars]
    if hidden:
        return _hidden_candidates(line, chars, centres, hidden, max_unknowns, min_evidence)
    return _layouts(line, chars, centres, max_unknowns, min_evidence)


def _layouts(line, chars: list[CharChoice], centres: list[float], max_unknowns: int,
             min_evidence: float) -> list[Candidate]:
    """``chars`` (at ``centres``; some may already be unknowns placed on anonymising
    boxes) as they are and with up to ``max_unknowns`` more unknowns inserted, each with
    its layout's evidence relative to the best layout."""
    n = len(chars)
    if n < 3 or max_unknowns <= 0:
        return [Candidate(chars, [1.0])]
    start = float(getattr(line, "start", 0.0))
    end = float(getattr(line, "end", line.steps))
    height = float(getattr(line, "height", 0.0))
    cands: list[Candidate] = []
    for counts in [(0,) * (n + 1)] + _insertions(n, max_unknowns):
        slots, pos = [], 0
        for i in range(n):
            pos += counts[i]
            slots.append(pos)
            pos += 1
        fit, pitch = _regularity(centres, slots, height)
        if pitch <= 0:
            if not any(counts):
                cands.append(Candidate(chars, [0.0]))
            continue
        lead = (centres[0] - start) / pitch - 0.5
        trail = (end - centres[-1]) / pitch - 0.5
        evidence = fit * _edge_fit(lead, counts[0], 1.5) * _edge_fit(trail, counts[-1], 0.5)
        out: list[CharChoice] = []
        for i in range(n + 1):
            out.extend(CharChoice(UNKNOWN, UNKNOWN_CONFIDENCE) for _ in range(counts[i]))
            if i < n:
                out.append(chars[i])
        cands.append(Candidate(out, [evidence]))
    # evidence is relative: the line's best layout counts as fully supported, so lines
    # read from different views compete on their characters, not on their spacing
    top = max((c.evidence[0] for c in cands), default=0.0)
    if top <= 0:
        return [Candidate(chars, [1.0])]
    for c in cands:
        c.evidence = [c.evidence[0] / top]
    # the reading as seen always stays; unlikely layouts with unknowns go
    return [c for i, c in enumerate(cands) if i == 0 or c.evidence[0] >= min_evidence]


HIDDEN_MISS = 0.15  # evidence left per anonymising box without an unknown on it (or unknown without a box)
# A character read in the middle half of a box (UNDER_BOX of its width in from each side)
# is the model's guess at what the box hides and is dropped. Character positions are
# known to about a time step, a third of a character on small crops, so a character
# just beside a box may seem to reach into it: with the middle 60 % (0.2) two such were
# dropped on uc3m-es (0.919 -> 0.922 at 0.25; 0.3 and 0.4 gained as many and lost 1-2).
UNDER_BOX = 0.25


def _hidden_candidates(line, chars: list[CharChoice], centres: list[float], hidden: list[tuple[float, float]],
                       max_unknowns: int = 3, min_evidence: float = 0.05) -> list[Candidate]:
    """Candidates for a line whose anonymising boxes were found in the image: an unknown
    on every box (replacing whatever the model read on it), more unknowns where the
    spacing of characters and boxes together shows a box the finder missed; or, less
    likely (the box finder may be wrong), as read with unknowns where the spacing
    suggests."""
    if len(centres) >= 2:
        pitch = float(np.median(np.diff(centres)))
    else:
        pitch = float(getattr(line, "height", 6.0)) * PITCH_PER_HEIGHT
    pitch = max(pitch, 1e-3)
    items: list[tuple[float, CharChoice]] = []
    for centre, choice in zip(centres, chars):
        if any(a + UNDER_BOX * (b - a) <= centre <= b - UNDER_BOX * (b - a) for a, b in hidden):
            continue  # the model's guess at what lies under a box
        items.append((centre, choice))
    # two boxes closer than half a pitch are one box
    merged: list[float] = []
    for b in sorted((a + b) / 2 for a, b in hidden):
        if merged and b - merged[-1] < 0.5 * pitch:
            continue
        merged.append(b)
    merged = merged[:max_unknowns]
    items += [(b, CharChoice(UNKNOWN, UNKNOWN_CONFIDENCE)) for b in merged]
    items.sort(key=lambda t: t[0])
    boxed = _layouts(line, [c for _, c in items], [t for t, _ in items], max_unknowns - len(merged), min_evidence)
    for c in boxed:
        k = sum(ch.char == UNKNOWN for ch in c.chars) - len(merged)
        c.evidence = [c.evidence[0] * HIDDEN_MISS ** (0.5 * k)]  # a missed box is less likely than a found one
    plain = _layouts(line, chars, centres, max_unknowns, min_evidence)
    for c in plain:
        k = sum(ch.char == UNKNOWN for ch in c.chars)
        c.evidence = [c.evidence[0] * HIDDEN_MISS ** max(1, abs(len(merged) - k))]
    return boxed + plain


# --------------------------------------------------------------------------------------
# Decoding constrained to a format: the best CTC path that spells a pattern


CONSTRAINED = True  # offer format-constrained decodings of single lines (constrained_candidates)
CONSTRAINED_WEIGHT = 1.0  # weight of the path's log-likelihood ratio (per character) in its evidence
CONSTRAINED_SURE = 0.7  # a line read as-is in a country format, every character this sure, is not searched
MIN_CONSTRAINED_EVIDENCE = 0.01  # a constrained path this much less likely than the free one is not offered
CONSTRAINED_TRACE = 24  # paths traced back per search (the most likely per character)
CONSTRAINED_KEEP = 8  # candidates offered per line
CONSTRAINED_MIN_PROB = 1e-3  # characters never this likely on a line are not searched for
_GAP_CERTAIN = 0.995  # runs of steps this surely a gap are one step for the constrained search
_NEG = -1e30


def _slot_sets(expansion: tuple[_Slot, ...]) -> list[frozenset[str]]:
    """One character set per position (a code list becomes its per-position letters;
    whether the pair is a real code is checked when the reading is scored)."""
    out: list[frozenset[str]] = []
    for slot in expansion:
        if slot.words:
            out.extend(frozenset(w[i] for w in slot.words) for i in range(slot.length))
        else:
            out.append(slot.chars)  # type: ignore[arg-type]
    return out


@lru_cache(maxsize=64)
def _constrained_plans(names: tuple[str, ...]) -> tuple[tuple[tuple[frozenset[str], ...], int, int], ...]:
    """The distinct per-position character sequences of the grammars' patterns, each
    with no edge character, one extra character before or one after (an EU band, a
    screw): (sets, lead, trail)."""
    seen: set[tuple[frozenset[str], ...]] = set()
    plans = []
    for name in names:
        grammar = GRAMMARS[name]
        if grammar.name == "generic":
            continue  # any string of letters and digits: the free reading is its best path
        for pattern in grammar.patterns:
            for expansion in compile_pattern(pattern):
                sets = tuple(_slot_sets(expansion))
                if sets not in seen:
                    seen.add(sets)
                    plans.extend([(sets, 0, 0), (sets, 1, 0), (sets, 0, 1)])
    return tuple(plans)


def _viterbi(lg: np.ndarray, lp: np.ndarray, mask: np.ndarray,
             select=None) -> tuple[np.ndarray, dict[int, list[tuple[int, int, int]]]]:
    """Best CTC paths through per-position character sets. ``lg`` (T): log probability of
    a gap per step; ``lp`` (T x K): of each character; ``mask`` (E x L x K): which
    characters each position of each of E sequences allows (a position beyond a
    sequence's length allows none). A repeated character needs a gap between its two
    runs, as in CTC. Returns each sequence's best path log-probability and, for those
    ``select(scores)`` picks (default: all that have a path), its steps spent on
    characters as (step, position, character column)."""
    E, L, K = mask.shape
    T = len(lg)
    lengths = mask.any(2).sum(1)
    lg = lg.astype(np.float32)
    lp = lp.astype(np.float32)
    # characters first, sequences last: numpy reduces and slices fastest that way
    allow = np.where(mask.transpose(2, 1, 0), np.float32(0.0), np.float32(_NEG))  # K x L x E
    Bs = np.full((T, L + 1, E), _NEG, np.float32)  # in a gap after l characters
    Cs = np.full((T, K, L, E), _NEG, np.float32)  # on character k at position l
    Bs[0, 0] = lg[0]
    Cs[0, :, 0] = allow[:, 0] + lp[0][:, None]
    for t in range(1, T):
        Bp, Cp, B, C = Bs[t - 1], Cs[t - 1], Bs[t], Cs[t]
        m1 = Cp.max(0)
        B[0] = Bp[0]
        np.maximum(Bp[1:], m1, out=B[1:])
        B += lg[t]
        np.maximum(Cp, Bp[None, :L], out=C)
        if L > 1:
            # from the previous position's character straight on: only a different one
            # (its best character may only follow from the runner-up)
            top = Cp[:, :-1] == m1[None, :-1]
            m2 = np.where(top, np.float32(_NEG), Cp[:, :-1]).max(0)
            np.maximum(C[:, 1:], np.where(top, m2[None], m1[None, :-1]), out=C[:, 1:])
        C += allow
        C += lp[t][:, None, None]
    e_all = np.arange(E)
    end_b = Bs[T - 1, lengths, e_all]
    last = Cs[T - 1][:, lengths - 1, e_all]  # K x E
    end_c_char = last.argmax(0)
    end_c = last[end_c_char, e_all]
    scores = np.maximum(end_b, end_c).astype(np.float64)
    scores[scores <= _NEG / 2] = _NEG
    todo = np.flatnonzero(scores > _NEG / 2)
    if select is not None:
        todo = np.intersect1d(todo, select(scores))
    paths: dict[int, list[tuple[int, int, int]]] = {int(e): [] for e in todo}
    if not len(todo):
        return scores, paths
    # back along all wanted paths at once
    gap = end_b[todo] >= end_c[todo]
    pos = np.where(gap, lengths[todo], lengths[todo] - 1)
    char = end_c_char[todo].copy()
    steps_l = np.full((T, len(todo)), -1, np.int64)
    steps_c = np.zeros((T, len(todo)), np.int64)
    ks = np.arange(K)
    n_idx = np.arange(len(todo))
    for t in range(T - 1, -1, -1):
        on = ~gap
        steps_l[t, on] = pos[on]
        steps_c[t, on] = char[on]
        if t == 0:
            break
        Bp, Cp = Bs[t - 1], Cs[t - 1]
        lc = np.clip(pos, 0, L - 1)
        lprev = np.clip(pos - 1, 0, L - 1)
        row_prev = Cp[:, lprev, todo].T  # n x K: the previous position's characters
        # in a gap: stayed in it, or just finished the previous position's character
        g_stay = Bp[pos, todo]
        g_from = np.where(pos > 0, row_prev.max(1), _NEG)
        # on a character: stayed on it, came from a gap, or straight from another character
        c_stay = Cp[char, lc, todo]
        c_gap = Bp[np.clip(pos, 0, L), todo]
        other = np.where(ks[None, :] == char[:, None], _NEG, row_prev)
        c_prev_char = other.argmax(1)
        c_prev = np.where(pos > 0, other[n_idx, c_prev_char], _NEG)
        new_gap = gap.copy()
        new_pos = pos.copy()
        new_char = char.copy()
        g_to_c = gap & (g_from > g_stay)
        new_gap[g_to_c] = False
        new_pos[g_to_c] = pos[g_to_c] - 1
        new_char[g_to_c] = row_prev[g_to_c].argmax(1)
        best = np.maximum(c_stay, np.maximum(c_gap, c_prev))
        c_to_g = on & (c_stay < best) & (c_gap >= best)
        c_to_c = on & (c_stay < best) & ~(c_gap >= best)
        new_gap[c_to_g] = True
        new_pos[c_to_c] = pos[c_to_c] - 1
        new_char[c_to_c] = c_prev_char[c_to_c]
        gap, pos, char = new_gap, new_pos, new_char
    for j, e in enumerate(todo):
        on = np.flatnonzero(steps_l[:, j] >= 0)
        paths[int(e)] = [(int(t), int(steps_l[t, j]), int(steps_c[t, j])) for t in on]
    return scores, paths


@lru_cache(maxsize=256)
def _constrained_masks(names: tuple[str, ...], n_read: int, columns: str):
    """The plans worth searching for a line of ``n_read`` characters (one more or fewer
    than a plan spells), grouped into Latin and Chinese plans -- each search carries only
    the characters its plans can spell -- as (plans, character columns, E x L x K mask)."""
    plans = [p for p in _constrained_plans(names) if abs(len(p[0]) + p[1] + p[2] - n_read) <= 1]
    index = {c: j for j, c in enumerate(columns)}
    groups: dict[bool, list[tuple[tuple[frozenset[str], ...], int, int]]] = {}
    for plan in plans:
        groups.setdefault(any(c in CN_PROVINCES for s in plan[0] for c in s), []).append(plan)
    out = []
    for group in groups.values():
        union = sorted({index[c] for sets, _, _ in group for s in sets for c in s if c in index})
        if not union:
            continue
        local = {j: i for i, j in enumerate(union)}
        L = max(len(sets) + lead + trail for sets, lead, trail in group)
        mask = np.zeros((len(group), L, len(union)), bool)
        for e, (sets, lead, trail) in enumerate(group):
            if lead:
                mask[e, 0, :] = True
            for i, allowed in enumerate(sets):
                mask[e, lead + i, [local[index[c]] for c in allowed if c in index]] = True
            if trail:
                mask[e, lead + len(sets), :] = True
        keep = mask.any(2).sum(1) == np.array([len(s) + a + b for s, a, b in group])  # every position spellable
        out.append(([g for g, k in zip(group, keep) if k], np.array(union), mask[keep]))
    return [g for g in out if len(g[0])]


def constrained_candidates(line, grammars: Sequence[str] | None = None,
                           weight: float | None = None) -> list[Candidate]:
    """Readings of one line decoded *through* the formats of ``grammars``: for each
    pattern (and with one stray character before or after it), the most probable CTC
    path over the line's per-step probabilities whose characters fit the pattern's
    classes position by position. Unlike replacing characters of the greedy reading,
    this can split a repeated character the greedy path merged, find a character it
    read as a gap, or let a stray mark go. Each candidate's characters carry their peak
    probability over their steps (and the model's alternatives there); its evidence is
    the path's probability against the free best path, per character, to the power
    ``weight`` (default :data:`CONSTRAINED_WEIGHT`); a stray edge character costs
    :data:`EDGE_DROP_COST` as well. Lines without probabilities, with anonymising boxes,
    or already read surely (every character >= :data:`CONSTRAINED_SURE`) in a country
    format give none."""
    weight = CONSTRAINED_WEIGHT if weight is None else weight
    probs = getattr(line, "probs", None)
    chars_read = list(line.chars)
    if probs is None or len(probs) < 2 or not chars_read or getattr(line, "hidden", None):
        return []  # (anonymising boxes: see docs/plates.md, not better than the layouts)
    names = tuple(grammars) if grammars else tuple(GRAMMARS)
    n_read = len(chars_read)
    raw = "".join(c.char for c in chars_read)
    if min(c.confidence for c in chars_read) >= CONSTRAINED_SURE and any(
        matches(raw, name) for name in names if name != "generic"
    ):
        return []
    columns = line.prob_chars
    groups = _constrained_masks(names, n_read, columns)
    if not groups:
        return []
    # steps surely a gap in a row are one step: the search is over the rest
    gap = probs[:, 0]
    keep = np.ones(len(probs), bool)
    keep[1:] = ~((gap[1:] > _GAP_CERTAIN) & (gap[:-1] > _GAP_CERTAIN))
    steps = np.flatnonzero(keep)
    P = probs[steps].astype(np.float64)
    logs = np.log(np.maximum(P, 1e-12))
    lg, lp = logs[:, 0], logs[:, 1:]
    free = float(np.maximum(lg, lp.max(1)).sum())
    results = []
    seen = P[:, 1:].max(0) >= CONSTRAINED_MIN_PROB
    for group, cols, mask in groups:
        # only characters the model gave some probability somewhere on the line
        sub = np.flatnonzero(seen[cols])
        if not len(sub):
            continue
        spellable = mask[:, :, sub].any(2).sum(1) == mask.any(2).sum(1)
        if not spellable.any():
            continue
        group = [g for g, k in zip(group, spellable) if k]
        cols, mask = cols[sub], mask[spellable][:, :, sub]
        # only the most likely paths are traced back (per character, as evidence counts)
        per_char = np.array([len(p[0]) for p in group], np.float64)

        def select(scores: np.ndarray, per_char: np.ndarray = per_char) -> np.ndarray:
            rate = (scores - free) / per_char
            ok = np.flatnonzero(weight * rate >= math.log(MIN_CONSTRAINED_EVIDENCE))
            return ok[np.argsort(-rate[ok])[:CONSTRAINED_TRACE]]

        scores, paths = _viterbi(lg, lp[:, cols], mask, select)
        results += [(plan, scores[e], [(t, l, int(cols[c])) for t, l, c in paths[e]])
                    for e, plan in enumerate(group) if e in paths]
    # one candidate per text: the plan whose path explains the line best
    best: dict[str, tuple[float, list[list[int]], list[int], int, int]] = {}
    for (sets, lead, trail), score, path in results:
        n = len(sets) + lead + trail
        if score <= _NEG / 2 or not path:
            continue
        frames: list[list[int]] = [[] for _ in range(n)]
        picked = [0] * n
        for t, l, c in path:
            frames[l].append(t)
            picked[l] = c
        evidence = math.exp(weight * min(0.0, score - free) / len(sets)) * EDGE_DROP_COST ** (lead + trail)
        if evidence < MIN_CONSTRAINED_EVIDENCE:
            continue
        text = "".join(columns[c] for c in picked[lead : n - trail])
        if text not in best or evidence > best[text][0]:
            best[text] = (evidence, frames, picked, lead, n - trail)
    # the few most promising texts become candidates (evidence x their characters' peaks)
    def promise(v: tuple[float, list[list[int]], list[int], int, int]) -> float:
        evidence, frames, picked, lo, hi = v
        return evidence * _geomean([float(P[frames[l], picked[l] + 1].max()) for l in range(lo, hi)])

    out = []
    for evidence, frames, picked, lo, hi in sorted(best.values(), key=promise, reverse=True)[:CONSTRAINED_KEEP]:
        choices = []
        for l in range(lo, hi):
            peak = P[frames[l], 1:].max(0)
            c = picked[l]
            top = np.argpartition(-peak, 7)[:7] if len(peak) > 7 else range(len(peak))
            alts = {columns[j]: float(peak[j]) for j in top if j != c and peak[j] >= MIN_ALTERNATIVE}
            choices.append(CharChoice(columns[c], float(peak[c]), alts))
        out.append(Candidate(choices, [evidence]))
    return out


def best_reading(lines: Sequence, grammars: Sequence[str] | None = None,
                 priors: dict[str, float] | None = None, max_unknowns: int = 3) -> Reading | None:
    """The best grammar-consistent reading of one view of a plate: its lines (one, or
    two rows of a two-line plate, upper first) joined."""
    if not lines:
        return None
    per_line = [line_candidates(line, max_unknowns) for line in lines]
    joined: list[Candidate] = [Candidate([])]
    for cands in per_line:
        joined = [Candidate(a.chars + b.chars, a.evidence + b.evidence) for a in joined for b in cands][:1024]
    joined = [c for c in joined if c.chars]
    if not joined:
        return Reading("", 0.0, 0.0, [], None, None, "")
    # a character at either end may not belong to the plate (a country code in the EU
    # band, a frame screw), nor one between its groups (an emblem): offer the reading
    # without it, at a cost
    trimmed = []
    for c in joined:
        if len(c.chars) >= 5:
            # (an unknown is never dropped: it stands for a box or a gap seen inside the plate)
            if c.chars[0].char != UNKNOWN:
                trimmed.append(Candidate(c.chars[1:], c.evidence + [EDGE_DROP_COST]))
            if c.chars[-1].char != UNKNOWN:
                trimmed.append(Candidate(c.chars[:-1], c.evidence + [EDGE_DROP_COST]))
        if len(c.chars) >= MIDDLE_DROP_MIN:
            n = len(c.chars)
            for k in sorted({(n - 1) // 2, n // 2}):
                if c.chars[k].char != UNKNOWN:
                    trimmed.append(Candidate(c.chars[:k] + c.chars[k + 1 :], c.evidence + [MIDDLE_DROP_COST], True))
    joined += trimmed
    if len(lines) == 1 and CONSTRAINED:
        # (they do not depend on priors: a line rescored with other priors reuses them)
        key = tuple(grammars) if grammars else None
        cache = getattr(lines[0], "constrained", None)
        if cache is None or key not in cache:
            found = constrained_candidates(lines[0], grammars)
            if cache is not None:
                cache[key] = found
        else:
            found = cache[key]
        joined += found
    return score_candidates(joined, grammars, priors)


# --------------------------------------------------------------------------------------
# Learning a camera's region


FAMILIES: dict[str, tuple[str, ...]] = {
    "es": ("es", "es-old"),
    "sk": ("sk",),
    "cz": ("cz",),
    "pl": ("pl",),
    "de": ("de",),
    "br": ("br", "br-mercosur"),
    "cn": ("cn",),
    "us": ("us",),
}
_FAMILY_OF = {g: f for f, gs in FAMILIES.items() for g in gs}
# where plates of a country are also met: cars cross borders within an area far more
# often than between continents
AREAS: dict[str, str] = {"es": "europe", "sk": "europe", "cz": "europe", "pl": "europe", "de": "europe",
                         "us": "americas", "br": "americas", "cn": "asia"}


# How a country's records write characters its plates do not tell apart: most US states
# issue no letter O in standard serials and print O and 0 with one glyph, and US
# hotlists and plate readers record it as zero (vanity plates included).
SPELLING: dict[str, dict[str, str]] = {"us": {"O": "0"}}
# The same pairs both ways, per country: a reading of either character fits a format of
# that country that wants the other, at the reading's own confidence (one glyph, not a
# look-alike guess).
ONE_GLYPH: dict[str, dict[str, str]] = {
    country: {**rules, **{b: a for a, b in rules.items()}} for country, rules in SPELLING.items()
}


def region_of(priors: dict[str, float] | None) -> str | None:
    """The country a set of priors from :meth:`RegionPrior.priors` prefers (its main
    format is the only grammar at prior 1), or None."""
    if not priors:
        return None
    return next((family for family, names in FAMILIES.items() if any(priors.get(n, 0.0) >= 1.0 for n in names)), None)


def spell(text: str, grammar: str | None, region: str | None = None) -> str:
    """``text`` as the plate's country writes it (:data:`SPELLING`). The country is the
    reading's grammar's; for a reading in no country's format (a vanity plate, say) it
    is the camera's ``region``."""
    country = _FAMILY_OF.get(grammar or "") or region
    rules = SPELLING.get(country or "")
    return "".join(rules.get(c, c) for c in text) if rules else text


def known_country(country: str) -> str:
    """``country`` if plates of that country have formats here (a :data:`FAMILIES` key)."""
    if country not in FAMILIES:
        raise ValueError(f"unknown plate country {country!r}; known: {', '.join(sorted(FAMILIES))}")
    return country


class RegionPrior:
    """Learns which country's formats a camera sees, from its own confident readings.

    A camera in Madrid reads mostly Spanish plates; once ``min_reads`` confident
    readings (every seen character >= ``min_confidence``) fitted a country's formats
    and one country holds ``min_share`` of them, that country's most likely grammar gets
    prior 1 (its others in proportion), the grammars of countries in the same area
    (:data:`AREAS`: cars cross borders) are scaled by ``neighbours`` and those of other
    areas by ``far``, so ambiguous readings resolve towards local formats. The generic
    and no-grammar fallbacks keep their priors: vanity and unlisted formats are no
    rarer for knowing the country. Nothing changes until the evidence is there. Labels
    are never used.
    """

    def __init__(self, min_reads: int = 20, min_share: float = 0.6, min_confidence: float = 0.9,
                 neighbours: float = 0.7, far: float = 0.3, country: str | None = None) -> None:
        # set by whoever knows it: then nothing is learned
        self.country = None if country is None else known_country(country)
        self.min_reads = min_reads
        self.min_share = min_share
        self.min_confidence = min_confidence
        self.neighbours = neighbours
        self.far = far
        self.counts: dict[str, int] = {}

    def observe(self, grammar: str | None, text: str, char_confidences: Sequence[float]) -> None:
        """Count one reading: its grammar, text and per-character confidences (unknown
        characters are not counted against it; at most two may be unknown)."""
        family = _FAMILY_OF.get(grammar or "")
        seen = [c for t, c in zip(text, char_confidences) if t != UNKNOWN]
        if family and seen and len(text) - len(seen) <= 2 and min(seen) >= self.min_confidence:
            self.counts[family] = self.counts.get(family, 0) + 1

    @property
    def region(self) -> str | None:
        if self.country is not None:
            return self.country
        total = sum(self.counts.values())
        if total < self.min_reads:
            return None
        family, n = max(self.counts.items(), key=lambda kv: kv[1])
        return family if n >= self.min_share * total else None

    def priors(self) -> dict[str, float] | None:
        region = self.region
        if region is None:
            return None
        area = AREAS.get(region)
        out: dict[str, float] = {"": NO_GRAMMAR_PRIOR}
        for name, g in GRAMMARS.items():
            family = _FAMILY_OF.get(name)
            if family is None:
                out[name] = g.prior
            else:
                out[name] = g.prior * (self.neighbours if AREAS.get(family) == area else self.far)
        # the region's formats: its most likely at 1, the others in proportion (older
        # series stay less likely than current ones)
        top = max(GRAMMARS[name].prior for name in FAMILIES[region])
        for name in FAMILIES[region]:
            out[name] = GRAMMARS[name].prior / top
        return out
