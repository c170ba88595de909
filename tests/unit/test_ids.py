"""Id helpers: prefixed, unique, time-sortable; inbound row ids are stable per agent."""

from __future__ import annotations

import pytest

from nanoclaw_app.ids import base36, inbound_row_id, new_id


def test_ids_are_prefixed_unique_and_sortable() -> None:
    ids = [new_id("sess") for _ in range(500)]
    assert len(set(ids)) == 500
    assert all(i.startswith("sess-") for i in ids)
    stamps = [i.split("-")[1] for i in ids]
    assert [int(s, 36) for s in stamps] == sorted(int(s, 36) for s in stamps)


def test_unknown_prefix_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown id prefix"):
        new_id("evil")


def test_base36_round_trips() -> None:
    for n in (0, 1, 35, 36, 123456789):
        assert int(base36(n), 36) == n


def test_inbound_row_id_differs_per_agent_and_is_stable() -> None:
    assert inbound_row_id("m1", "ag-1") == inbound_row_id("m1", "ag-1")
    assert inbound_row_id("m1", "ag-1") != inbound_row_id("m1", "ag-2")
