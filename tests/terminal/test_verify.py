"""1:1 verification with the challenge, on real faces (ORL) rendered as terminal camera frames.

s10 turned her head both ways in ORL (~0.16 inter-ocular distances of nose parallax each
way), so a compliant sequence for any turn challenge can be built from her own photos.
"""

from __future__ import annotations

import numpy as np
import pytest

from safecity.faces.calibration import OPERATING_THRESHOLD
from safecity.terminal.attacks import genuine_frame, photo_attack
from safecity.terminal.liveness import ChallengeRules
from safecity.terminal.verify import decide

RULES = ChallengeRules()
ASKED = ("turn_left", "turn_right", "turn_left")


@pytest.fixture(scope="module")
def s10(people):
    return people("s10")


def test_the_enrolled_person_doing_the_challenge_is_granted_and_an_impostor_is_not(verifier, people, s10):
    seen = verifier.observe(s10.sequence(ASKED))
    verdict = decide(seen, s10.enrol.template, ASKED, RULES)
    assert verdict.granted, verdict.reason
    assert verdict.score >= OPERATING_THRESHOLD + 0.15
    # someone else doing the same movements, with s10's badge
    s11 = people("s11")
    impostor = decide(verifier.observe(s11.sequence(("turn_right",))), s10.enrol.template, ("turn_right",), RULES)
    assert not impostor.granted and impostor.code == "no_match"
    assert impostor.score < OPERATING_THRESHOLD - 0.15


def test_the_wrong_movement_or_none_is_denied(verifier, s10):
    wrong = decide(verifier.observe(s10.sequence(("turn_right", "turn_left", "turn_right"))), s10.enrol.template, ASKED, RULES)
    assert not wrong.granted and wrong.code == "liveness_wrong_movement"
    rng = np.random.default_rng(3)
    still = [(i * 0.4, genuine_frame(s10.baseline.image, rng)) for i in range(8)]
    standing = decide(verifier.observe(still), s10.enrol.template, ASKED, RULES)
    assert not standing.granted and standing.code == "liveness_incomplete"
    assert standing.score >= OPERATING_THRESHOLD  # it is her: only the liveness failed


@pytest.mark.parametrize("kind", ["tilt", "roll"])
def test_a_printed_photo_turned_to_fake_the_challenge_is_denied(verifier, s10, kind):
    attack = photo_attack(s10.baseline.image, ASKED, kind, 1.0, np.random.default_rng(11))
    verdict = decide(verifier.observe(attack), s10.enrol.template, ASKED, RULES)
    assert verdict.score >= OPERATING_THRESHOLD  # the print is of the right person ...
    assert not verdict.granted and verdict.code.startswith("liveness_")  # ... but it is not alive


def test_swapping_faces_during_the_challenge_is_denied(verifier, people, s10):
    s13 = people("s13")
    frames = s13.sequence(("turn_left",))  # an accomplice does the movements ...
    rng = np.random.default_rng(5)
    frames[:2] = [(t, genuine_frame(s10.baseline.image, rng)) for t, _ in frames[:2]]  # ... after a photo of s10
    verdict = decide(verifier.observe(frames), s10.enrol.template, ("turn_left",), ChallengeRules(steps=1))
    assert not verdict.granted and verdict.code == "face_changed"


def test_two_faces_in_front_of_the_terminal_are_refused(verifier, people, s10):
    rng = np.random.default_rng(2)
    left, right = genuine_frame(s10.baseline.image, rng), genuine_frame(people("s13").baseline.image, rng)
    both = np.hstack([left[:, 160:480], right[:, 160:480]])
    verdict = decide(verifier.observe([(0.0, both), (0.4, both)]), s10.enrol.template, ("turn_left",), RULES)
    assert not verdict.granted and verdict.code == "several_faces"
