"""Contactless access terminals: consented 1:1 face verification with a liveness challenge.

* :mod:`~safecity.terminal.liveness` — the head-turn challenge, judged from YuNet's
  5 landmarks (nose parallax against the plane of the eyes and mouth);
* :mod:`~safecity.terminal.verify` — frames + claimed identity -> decision;
* :mod:`~safecity.terminal.decisions` — door decisions, door events, rate limits, lockouts;
* :mod:`~safecity.terminal.service` — sites, consented enrolments (own tables, per
  site, never a watchlist), audited;
* :mod:`~safecity.terminal.device` — the offline-first terminal: local copy, queue, sync;
* :mod:`~safecity.terminal.attacks` — the APCER/BPCER evaluation (docs/terminal.md).

Imports here stay light: the CLI imports this package at start-up.
"""
