"""Saved workflow documents and their versions: what a crash mid-save leaves is put right at start."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scopeflow._util import write_atomic
from scopeflow.workflows.library import Documents

pytestmark = pytest.mark.unit


def titles(docs: Documents, name: str) -> list[str]:
    return [docs.load(name, v["version"])["title"] for v in docs.versions(name)]


def doc(title: str) -> dict:
    return {"format": "scopeflow.workflow", "version": 1, "title": title, "nodes": []}


def test_a_document_behind_its_history_is_brought_up_to_it_and_no_version_repeats(tmp_path: Path) -> None:
    docs = Documents(tmp_path)
    docs.save("w", doc("one"))
    docs.save("w", doc("two"))
    # the hub died after keeping version 3 and before writing the document
    third = (json.dumps(doc("three"), indent=2, ensure_ascii=False) + "\n").encode()
    write_atomic(docs._version_path("w", 3), third)
    assert docs.load("w")["title"] == "two" and len(docs.versions("w")) == 3
    docs.recover()
    assert docs.load("w")["title"] == "three"
    docs.save("w", doc("four"))
    assert titles(docs, "w") == ["one", "two", "three", "four"]


def test_a_stale_document_is_not_kept_again_as_a_new_version_even_without_recovery(tmp_path: Path) -> None:
    docs = Documents(tmp_path)
    docs.save("w", doc("one"))
    docs.save("w", doc("two"))
    write_atomic(docs._version_path("w", 3), b'{"title": "three"}\n')  # kept, the document not written
    docs.save("w", doc("four"))
    assert titles(docs, "w") == ["one", "two", "three", "four"]  # "two" was not kept a second time


def test_a_hand_placed_file_is_still_kept_first_and_leftovers_are_removed(tmp_path: Path) -> None:
    docs = Documents(tmp_path)
    (tmp_path / "by-hand.json").write_text(json.dumps(doc("by hand")))
    (tmp_path / ".by-hand.json.x1y2.tmp").write_text("half written")
    docs.recover()
    assert not list(tmp_path.glob(".*.tmp"))
    docs.save("by-hand", doc("saved"))
    assert titles(docs, "by-hand") == ["by hand", "saved"]
