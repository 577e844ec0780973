"""Load, in CI's time: 20 clients x 300 mixed calls (sync, async, waiting, arrays, UI calls), twice.

The same driver as ``bench/load.py`` (which runs 50 x 1,000). Every answer is checked: none lost, wrong or
duplicated; every UI call reaches the app; and the hub holds no state for calls that ended (the open calls
of its own services go back to what they were, where imjoy-rpc used to keep ~600 bytes per UI call)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))
from load import KINDS, measure

pytestmark = pytest.mark.hub

CLIENTS, CALLS, ROUNDS = 20, 300, 2


def test_many_clients_get_every_answer_right_and_the_hub_keeps_nothing() -> None:
    figures = measure(CLIENTS, CALLS, ROUNDS, processes=2)
    for done in figures["rounds"]:
        assert (done["ok"], done["lost"], done["wrong"], done["duplicated"]) == (CLIENTS * CALLS, 0, 0, 0)
    ui_calls = (min(CLIENTS, 10) * 50 + ROUNDS * CLIENTS * CALLS) // len(KINDS)  # warm-up included
    assert figures["ui_calls_seen_by_app"] == ui_calls
    assert figures["open_calls_after"] == figures["open_calls_before"], figures
    print(figures)
