"""Door decisions as events (idempotent keys) and the rate-limit and lockout rules."""

from __future__ import annotations

import pytest

from safecity.terminal.decisions import Attempt, Decision, LockoutRules, badge_digest, refusal

RULES = LockoutRules(badge_failures=3, terminal_failures=5, window_seconds=300, lockout_seconds=120, attempts_per_minute=6)
BADGE = badge_digest("hq", "1234")
OTHER = badge_digest("hq", "5678")


def fails(badge, times, terminal="door-1"):
    return [Attempt(t, terminal, badge, "denied") for t in times]


def test_a_badge_locks_after_repeated_failures_at_any_terminal_and_unlocks_after_the_lockout():
    attempts = fails(BADGE, [0, 70], "door-1") + fails(BADGE, [140], "door-2")
    code, _, wait = refusal(attempts, "door-3", BADGE, 150, RULES)
    assert code == "badge_locked" and wait == pytest.approx(110)
    assert refusal(attempts, "door-3", OTHER, 150, RULES) is None  # other badges are not affected
    assert refusal(attempts, "door-3", BADGE, 261, RULES) is None  # the lockout ended
    # failures spread wider than the window do not lock
    assert refusal(fails(BADGE, [0, 200, 400]), "door-1", BADGE, 410, RULES) is None


def test_a_success_or_an_unlock_resets_the_badge():
    granted = fails(BADGE, [0, 10]) + [Attempt(20, "door-1", BADGE, "granted")] + fails(BADGE, [30])
    assert refusal(granted, "door-1", BADGE, 40, RULES) is None
    unlocked = fails(BADGE, [0, 10, 20]) + [Attempt(25, "*", BADGE, "unlock")]
    assert refusal(fails(BADGE, [0, 10, 20]), "door-1", BADGE, 30, RULES)[0] == "badge_locked"
    assert refusal(unlocked, "door-1", BADGE, 30, RULES) is None


def test_a_terminal_locks_after_failures_of_many_badges_and_successes_do_not_reset_it():
    attempts = []
    for i in range(5):
        attempts += fails(badge_digest("hq", f"guess-{i}"), [i * 20.0])
        attempts.append(Attempt(i * 20.0 + 5, "door-1", OTHER, "granted"))
    code, _, _ = refusal(attempts, "door-1", badge_digest("hq", "new"), 100, RULES)
    assert code == "terminal_locked"
    assert refusal(attempts, "door-2", badge_digest("hq", "new"), 100, RULES) is None
    assert refusal(attempts + [Attempt(95, "door-1", None, "unlock")], "door-1", OTHER, 100, RULES) is None


def test_refused_attempts_do_not_extend_a_lock_and_the_rate_limit_counts_everything():
    locked = fails(BADGE, [0, 10, 20]) + [Attempt(t, "door-1", BADGE, "refused") for t in (30, 40, 50)]
    assert refusal(locked, "door-1", BADGE, 141, RULES) is None  # 20 + 120
    busy = [Attempt(float(t), "door-1", OTHER, "granted") for t in range(0, 60, 10)]
    assert refusal(busy, "door-1", OTHER, 59, RULES)[0] == "rate_limited"
    assert refusal(busy, "door-1", OTHER, 61, RULES) is None


def test_a_decision_is_an_idempotent_door_event():
    decision = Decision("hq", "door-1", BADGE, False, "no_match", "face does not match", decided_at=1_700_000_000.0, label="A")
    event = decision.event()
    assert event.type == "door" and event.camera == "hq/door-1" and event.label == "A"
    assert event.attributes["decision"] == "denied" and event.attributes["code"] == "no_match"
    assert event.attributes["badge"] == BADGE[:12] and "1234" not in str(event.attributes)
    again = Decision.from_dict(decision.as_dict())
    assert again.key == decision.key == event.key
    assert Decision("hq", "door-1", BADGE, False, "no_match", "x", decided_at=1_700_000_000.0).key != decision.key
    with pytest.raises(ValueError):
        Decision.from_dict({**decision.as_dict(), "code": "opened_anyway"})
    with pytest.raises(ValueError):
        Decision.from_dict({**decision.as_dict(), "site": "../etc"})
    assert badge_digest("hq", "1234") != badge_digest("annex", "1234")
