"""Plate grammars: normalisation, formats, look-alike fixes only where a format demands."""

import itertools

import numpy as np
import pytest

import safecity.plates.grammar as grammar_module
from safecity.plates.grammar import (
    GRAMMARS,
    Candidate,
    CharChoice,
    RegionPrior,
    best_reading,
    compile_pattern,
    line_candidates,
    matches,
    normalise_char,
    normalise_text,
    region_of,
    score_candidates,
    spell,
    _viterbi,
)
from safecity.plates.read import CharRead, LineRead, decode_ctc


def chars(text, conf=0.99, alts=None):
    alts = alts or {}
    return [CharChoice(c, conf, dict(alts.get(i, {}))) for i, c in enumerate(text)]


def read(text, grammars=None, conf=0.99, alts=None, priors=None):
    r = score_candidates([Candidate(chars(text, conf, alts))], grammars, priors)
    return r.text if r else None


def test_normalisation():
    assert normalise_text("ab-12 3.4·x") == "AB1234X"
    assert normalise_text("ＡＢ１２") == "AB12"  # full-width forms
    assert normalise_text("mü 1") == "MU1"
    assert normalise_text("皖A·12345") == "皖A12345"
    assert normalise_text("12?4") == "12?4"
    assert normalise_char("-") == "" and normalise_char("ß") == ""


@pytest.mark.parametrize(
    "text, grammar, ok",
    [
        ("1234BCD", "es", True),
        ("1234BCA", "es", False),  # vowels are not used
        ("1234QCD", "es", False),
        ("M1234AB", "es-old", True),
        ("VA58A1B", "es-old", False),  # letters inside the number: no
        ("ZZ1234AB", "es-old", False),  # ZZ is no province
        ("BA123AB", "sk", True),
        ("XX123AB", "sk", False),
        ("1B80338", "cz", True),
        ("BMW1234", "de", True),
        ("WOBVW1E", "de", True),
        ("ABC1234", "br", True),
        ("ABC1D23", "br-mercosur", True),
        ("皖A12345", "cn", True),
        ("皖AI2345", "cn", False),  # no I or O on Chinese plates
        ("皖AD12345", "cn", True),  # new-energy: 6 after the letter
        ("7ABC123", "us", True),
        ("ABC1234", "us", True),
        ("12?4BCD", "es", True),  # an unseen character fits any class
    ],
)
def test_formats(text, grammar, ok):
    assert matches(text, grammar) is ok


def test_every_pattern_compiles():
    for g in GRAMMARS.values():
        for p in g.patterns:
            assert compile_pattern(p), p


def test_lookalike_fixed_where_the_format_demands_it():
    # a Spanish plate read with O for 0: the format wants a digit there
    assert read("12O4BCD", ["es"]) == "1204BCD"
    assert read("I234BCD", ["es"]) == "1234BCD"
    assert read("1234BC8", ["es"]) == "1234BCB"
    # a Slovak district code read with a digit: letters demanded
    assert read("8A123AB", ["sk"]) == "BA123AB"
    # Chinese plates have no O: 0 it is
    assert read("皖AO1234", ["cn"]) == "皖A01234"


def test_nothing_is_changed_where_no_format_demands_it():
    # a vanity text fits only the generic grammar: O stays O
    assert read("HELLO") == "HELLO"
    assert read("OHIO1") == "OHIO1"
    # a confident read that fits a format as read is not altered
    assert read("1234BCD") == "1234BCD"


def test_model_alternatives_are_used_before_fixed_lookalikes():
    # the model gave 'Q' some probability where a letter... and '0' where a digit is needed
    alts = {2: {"0": 0.4, "Q": 0.05}}
    r = score_candidates([Candidate(chars("12O4BCD", 0.55, alts))], ["es"])
    assert r.text == "1204BCD"
    assert r.char_confidences[2] == pytest.approx(0.4)  # the model's own probability


def test_unknowns_only_where_a_format_needs_them():
    line = LineRead(
        [CharRead(c, 0.99, i * 3, i * 3, {}, float(i * 3 + (3 if i >= 2 else 0)))
         for i, c in enumerate("124BCD")],
        steps=20,
    )
    line.height = 6.0
    cands = line_candidates(line)
    assert any(c.raw == "12?4BCD" for c in cands)
    assert best_reading([line], ["es"]).text == "12?4BCD"
    # the generic grammar never takes unknowns: without a format it reads what it saw
    assert best_reading([line], ["generic"]).text == "124BCD"


def test_an_unknown_never_stands_for_a_special_series_letter():
    # an anonymised Spanish plate read with one '?' too many in front: Spain's special
    # series "[ER]NNNNCCC" would take that '?' as its E/R; the ordinary plate wins instead
    unknown = CharChoice("?", 0.2)
    one_too_many = Candidate([unknown] + chars("1050", 0.9) + [unknown] + chars("CD", 0.9), [1.0])
    as_laid_out = Candidate(chars("1050", 0.9) + [unknown] + chars("CD", 0.9), [0.5])
    assert score_candidates([one_too_many, as_laid_out], ["es"]).text == "1050?CD"
    assert unknown.options("ER") is None
    assert unknown.options("0123456789") == ("?", 0.2)


def test_a_country_code_at_the_edge_can_be_dropped():
    # 'SK' in the EU band read as one letter before a Slovak plate
    r = best_reading([LineRead([CharRead(c, 0.99, i, i) for i, c in enumerate("SBA123AB")], steps=9)], ["sk"])
    assert r.text == "BA123AB"


def test_region_prior_learns_from_confident_reads_only():
    prior = RegionPrior(min_reads=5)
    for _ in range(4):
        prior.observe("es", "1234BCD", [0.99] * 7)
    prior.observe("us", "7ABC123", [0.5] * 7)  # too unsure to count
    assert prior.region is None
    prior.observe("es-old", "M1234AB", [0.95] * 7)
    assert prior.region == "es"
    priors = prior.priors()
    assert priors["es"] == 1.0 and GRAMMARS["es-old"].prior <= priors["es-old"] < 1.0
    # neighbours' formats less likely, other continents' far less; vanity formats as before
    assert priors["us"] < priors["de"] < GRAMMARS["de"].prior
    assert priors["generic"] == GRAMMARS["generic"].prior
    # with the region known, an ambiguous reading resolves to the local format
    assert read("1234BC0", priors=priors) in ("1234BCD", "1234BC0")


def test_unknown_grammar_name_is_an_error():
    with pytest.raises(ValueError, match="unknown plate grammar"):
        read("1234BCD", ["xx"])


def _line(spec, steps, hidden=(), height=6.0):
    """A decoded line: (char, centre in time steps, confidence) per character."""
    line = LineRead([CharRead(c, conf, int(x), int(x), {}, float(x)) for c, x, conf in spec], steps=steps)
    line.height, line.hidden = height, list(hidden)
    return line


def test_an_edge_character_is_dropped_even_beside_an_unknown_at_the_other_end():
    # the EU band read as '1' before an anonymised Spanish plate whose last character is boxed
    line = _line([("1", 1.5, 0.6), ("9", 4.5, 0.99), ("2", 7.5, 0.99), ("9", 10.5, 0.99), ("H", 16.5, 0.99),
                  ("Z", 19.5, 0.99)], 24, hidden=[(12.0, 15.0), (21.0, 24.0)])
    assert best_reading([line], ["es"]).text == "929?HZ?"


def test_a_box_the_finder_missed_is_placed_by_the_spacing():
    # boxes over the 3rd and 7th characters; only the last one was found in the image
    line = _line([("1", 1.5, 0.99), ("2", 4.5, 0.99), ("4", 10.5, 0.99), ("B", 13.5, 0.99), ("C", 16.5, 0.99)],
                 21, hidden=[(18.0, 21.0)])
    assert best_reading([line], ["es"]).text == "12?4BC?"
    # without unknowns allowed the reading is what was seen
    assert best_reading([line], ["es"], max_unknowns=0).text == "124BC"


def test_a_character_beside_a_box_is_kept_one_under_it_is_not():
    # "?999JW?": the first 9 sits right beside the first box, its position known to a step
    chars = [("9", 4.5, 0.99), ("9", 7.5, 0.99), ("9", 10.5, 0.99), ("J", 13.5, 0.99), ("W", 16.5, 0.99)]
    line = _line(chars, 22, hidden=[(1.8, 5.3), (18.0, 21.0)])
    assert best_reading([line], ["es"]).text == "?999JW?"
    # a character read well inside a box is the model's guess at what it hides
    line = _line(chars[:1] + [("X", 3.5, 0.9)] + chars[1:], 22, hidden=[(1.8, 5.3), (18.0, 21.0)])
    assert "X" not in best_reading([line], ["es"]).text


def test_an_older_spanish_plate_has_two_group_spaces(monkeypatch):
    # "M·31?5·?Y" (province, number, letters), as read off a real anonymised crop: the
    # spaces after the province and before the letters are no hidden characters
    line = _line([("M", 5.0, 1.0), ("3", 12.0, 1.0), ("1", 15.0, 1.0), ("5", 22.0, 1.0), ("Y", 31.0, 1.0)],
                 37, hidden=[(16.7, 20.9), (26.9, 30.4)])
    line.start, line.end = 2.6, 34.4
    assert best_reading([line], ["es", "es-old"]).text == "M31?5?Y"
    monkeypatch.setattr(grammar_module, "MIN_TWO_SPACES", 99)  # one group space at most
    assert best_reading([line], ["es", "es-old"]).text != "M31?5?Y"


# --------------------------------------------------------------------------------------
# Decoding constrained to a format


def _forced_best_path(lg, lp, labels):
    """Best CTC path score for one fixed label sequence (textbook Viterbi)."""
    ext = [-1]
    for c in labels:
        ext += [c, -1]
    S, T = len(ext), len(lg)
    em = lambda t, s: lg[t] if ext[s] < 0 else lp[t, ext[s]]  # noqa: E731
    V = np.full((T, S), -1e30)
    V[0, 0], V[0, 1] = em(0, 0), em(0, 1)
    for t in range(1, T):
        for s in range(S):
            best = V[t - 1, s]
            if s >= 1:
                best = max(best, V[t - 1, s - 1])
            if s >= 2 and ext[s] >= 0 and ext[s] != ext[s - 2]:
                best = max(best, V[t - 1, s - 2])
            V[t, s] = best + em(t, s)
    return max(V[T - 1, S - 1], V[T - 1, S - 2])


def test_constrained_search_finds_the_best_ctc_path_through_character_sets():
    rng = np.random.default_rng(0)
    for _ in range(20):
        T, K = int(rng.integers(3, 9)), 3
        p = rng.dirichlet(np.ones(K + 1) * 0.5, T)
        lg, lp = np.log(p[:, 0]), np.log(p[:, 1:])
        sets = [[set(rng.choice(K, rng.integers(1, K + 1), replace=False).tolist())
                 for _ in range(rng.integers(1, 4))] for _ in range(3)]
        mask = np.zeros((3, max(map(len, sets)), K), bool)
        for e, ss in enumerate(sets):
            for pos, allowed in enumerate(ss):
                mask[e, pos, sorted(allowed)] = True
        scores, paths = _viterbi(lg, lp, mask)
        for e, ss in enumerate(sets):
            brute = max(_forced_best_path(lg, lp, lab) for lab in itertools.product(*[sorted(x) for x in ss]))
            if brute < -1e29:
                assert scores[e] < -1e29
                continue
            assert scores[e] == pytest.approx(brute, rel=1e-4, abs=1e-3)
            # the traced path spells the sequence and scores what was reported
            on = {t: (pos, c) for t, pos, c in paths[e]}
            assert sorted({pos for pos, _ in on.values()}) == list(range(len(ss)))
            assert all(c in ss[pos] for pos, c in on.values())
            total = sum(lp[t, c] if t in on else lg[t] for t in range(T) for c in [on.get(t, (0, 0))[1]])
            assert total == pytest.approx(scores[e], rel=1e-4, abs=1e-3)


def _ctc_line(path, classes, extra=None):
    """A decoded line from a step-by-step path of classes (0.9 each), with ``extra``
    {step: {class: probability}} mixed in."""
    probs = np.full((len(path), len(classes)), 1e-4)
    for t, k in enumerate(path):
        probs[t, classes.index(k)] = 0.9
    for t, ps in (extra or {}).items():
        for k, v in ps.items():
            probs[t, classes.index(k)] = v
    probs /= probs.sum(1, keepdims=True)
    return decode_ctc(probs, classes)


CLASSES = ("",) + tuple("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") + ("o", "-", " ")


def test_decoded_lines_carry_probabilities_folded_to_plate_characters():
    line = _ctc_line(["", "A", "", "o", "-", "", " "], CLASSES)
    assert line.text == "AO"
    assert line.probs.shape == (7, 1 + len(line.prob_chars))
    assert line.prob_chars.count("O") == 1 and "o" not in line.prob_chars
    assert line.probs[3, 1 + line.prob_chars.index("O")] > 0.85  # 'o' folded into O
    assert line.probs[4, 0] > 0.85 and line.probs[6, 0] > 0.85  # '-' and space are gaps
    np.testing.assert_allclose(line.probs.sum(1), 1.0, atol=1e-4)


def test_a_repeated_character_the_greedy_path_merged_is_split_where_a_format_demands():
    # 1234 BBC (Spain): the two Bs run together, with only a weak gap between them
    path = ["", "1", "", "2", "", "3", "", "4", "", "", "B", "B", "B", "B", "", "C", ""]
    line = _ctc_line(path, CLASSES, {12: {"": 0.35, "B": 0.6}})
    assert line.text == "1234BC"
    assert best_reading([line], ["es", "generic"], max_unknowns=0).text == "1234BBC"
    with constrained(False):  # greedy decoding and character fixes alone cannot
        assert best_reading([line], ["es", "generic"], max_unknowns=0).text == "1234BC"


def test_a_free_reading_stays_when_no_format_fits_well():
    path = ["", "4", "", "H", "", "E", "", "L", "", "", "L", "", "O", ""]
    line = _ctc_line(path, CLASSES)
    r = best_reading([line], max_unknowns=0)  # a vanity plate: no format, read as seen
    assert r.text == "4HELLO" and r.grammar in (None, "generic")


class constrained:
    def __init__(self, on):
        self.on = on

    def __enter__(self):
        self.was = grammar_module.CONSTRAINED
        grammar_module.CONSTRAINED = self.on

    def __exit__(self, *exc):
        grammar_module.CONSTRAINED = self.was


def test_us_plates_are_written_with_zero_where_o_is_read():
    # US formats, and any reading (a vanity plate) on a camera known to be in the US
    assert spell("CHOP8Y", "us") == "CH0P8Y"
    assert spell("CEMENTO", "generic", region="us") == "CEMENT0"
    assert spell("CEMENTO", None, region="us") == "CEMENT0"
    # elsewhere, or a European format read on a US camera: as read
    assert spell("CEMENTO", "generic") == "CEMENTO"
    assert spell("RKO26AJ", "de", region="us") == "RKO26AJ"
    assert spell("BA302OZ", "sk", region="es") == "BA302OZ"


def test_a_given_country_fixes_the_region_and_priors_name_it():
    assert region_of(None) is None and region_of(RegionPrior().priors()) is None
    fixed = RegionPrior(country="us")
    fixed.observe("es", "1234BCD", [0.99] * 7)
    assert fixed.region == "us" and region_of(fixed.priors()) == "us"
    learned = RegionPrior(min_reads=3)
    for _ in range(3):
        learned.observe("es", "1234BCD", [0.99] * 7)
    assert region_of(learned.priors()) == "es"
    for wrong in ("xx", ""):
        with pytest.raises(ValueError, match="unknown plate country"):
            RegionPrior(country=wrong)


def test_california_commercial_plates_are_a_us_format():
    assert matches("8D79882", "us") and not matches("8D7988", "us")
    # the older series, five digits, a letter, a digit: a reading of one wins over a
    # shorter one that fits a format only by dropping its letter
    assert matches("47366J1", "us") and not matches("4736J61", "us")
    sure = Candidate(chars("47366J1", 0.99))
    doubtful = Candidate([CharChoice(c, q) for c, q in zip("473661", (0.6, 0.8, 0.9, 0.9, 0.8, 0.25))])
    assert score_candidates([sure, doubtful], ["us", "generic"], {"us": 1.0, "generic": 0.6}).text == "47366J1"


def test_o_and_zero_are_one_character_on_us_plates():
    # Missouri's LLN LNL read with the letter O for the digit: a US format all the same,
    # at the reading's own confidence (no look-alike guess: US plates print one glyph)
    r = score_candidates([Candidate(chars("SHOR7X", 0.95))], ["us", "generic"], RegionPrior(country="us").priors())
    assert (r.text, r.grammar) == ("SH0R7X", "us") and min(r.char_confidences) == 0.95
    # elsewhere O for 0 stays a look-alike guess, at a share of the confidence
    r = score_candidates([Candidate(chars("BA12OAB", 0.95))], ["sk"])
    assert r.text == "BA120AB" and min(r.char_confidences) < 0.95


def test_a_mark_between_the_groups_read_as_a_character_is_dropped():
    us = RegionPrior(country="us").priors()
    # the state emblem between SH0 and R7X read as L
    r = best_reading([LineRead([CharRead(c, 0.95, i, i) for i, c in enumerate("SH0LR7X")], steps=8)], None, us, 0)
    assert r.text == "SH0R7X"
    # a 7-character plate in a format of its own stays whole
    r = best_reading([LineRead([CharRead(c, 0.95, i, i) for i, c in enumerate("6WHS906")], steps=8)], None, us, 0)
    assert r.text == "6WHS906"
    # and a reading no format fits keeps its middle character
    r = best_reading([LineRead([CharRead(c, 0.95, i, i) for i, c in enumerate("NEILDMND")], steps=9)], None, us, 0)
    assert r.text == "NEILDMND"
    # nor does the generic (vanity) format take a reading without its middle character
    # (a plate and its neighbour's "77" read as one row: 9 characters are too many for
    # it, yet 5VCF0377 is no reading of 5VCF20377, however weak the 2)
    sure = [CharRead(c, 0.8 if c == "2" else 0.99, i, i) for i, c in enumerate("5VCF20377")]
    r = best_reading([LineRead(sure, steps=10)], None, us, 0)
    assert r.text != "5VCF0377" and "2" in r.text
