"""Attacks on the token and the request, as rows of the end-to-end case table."""

from __future__ import annotations

ATTACK_CASES: list = []
