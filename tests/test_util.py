"""The shared helpers: atomic writes, timestamps, canonical JSON, content hashes, ids."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from scopeflow._util import (
    BUILTIN_PLUGINS,
    GALLERY,
    ID_RE,
    SAMPLES_DIR,
    canonical_json,
    content_hash,
    utc_stamp,
    write_atomic,
)

pytestmark = pytest.mark.unit


def test_write_atomic_replaces_whole_files_and_a_failed_write_keeps_the_old_one(tmp_path: Path) -> None:
    target = tmp_path / "doc.json"
    write_atomic(target, "first")
    write_atomic(target, b"second")
    assert target.read_text() == "second"

    with pytest.raises(TypeError):
        write_atomic(target, 42)  # type: ignore[arg-type]
    assert target.read_text() == "second"
    assert [p.name for p in tmp_path.iterdir()] == ["doc.json"]  # no temporary file left behind


def test_canonical_json_is_the_same_for_equal_values() -> None:
    assert canonical_json({"b": 1, "a": [np.int64(2), 3.5]}) == b'{"a":[2,3.5],"b":1}'
    assert canonical_json({"é": (1, 2)}) == '{"é":[1,2]}'.encode()


def test_content_hash_of_arrays_and_values() -> None:
    a = np.arange(12, dtype=np.uint16).reshape(3, 4)
    assert content_hash(a) == content_hash(a.copy()) == content_hash(np.asfortranarray(a))
    assert content_hash(a) == content_hash(a.astype(">u2"))  # the same values in the other byte order
    assert content_hash(a) != content_hash(a.reshape(4, 3))
    assert content_hash(a) != content_hash(a.astype(np.int16))
    assert content_hash({"b": 1, "a": 2}) == content_hash({"a": 2, "b": 1})
    assert re.fullmatch(r"[0-9a-f]{64}", content_hash("x"))


def test_utc_stamp_and_ids() -> None:
    assert utc_stamp(0) == "1970-01-01T00:00:00Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", utc_stamp())
    assert ID_RE.match("nuclei-segmentation_2.v1")
    assert not ID_RE.match("../etc") and not ID_RE.match("a" * 129)


def test_built_in_plugins_gallery_and_samples_are_package_data() -> None:
    import scopeflow

    package = Path(scopeflow.__file__).parent
    for folder in (BUILTIN_PLUGINS, GALLERY, SAMPLES_DIR):
        assert folder.is_dir() and folder.is_relative_to(package)
    assert (BUILTIN_PLUGINS / "gaussian.py").is_file()
    assert (BUILTIN_PLUGINS / "nuclei_segmentation" / "weights.pt").is_file()
    assert sorted(GALLERY.glob("*.json")) and (SAMPLES_DIR / "nuclei-2d.tif").is_file()
