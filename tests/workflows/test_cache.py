"""The on-disk result cache: keys, round trips, LRU eviction, atomic writes, corrupt entries."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scopeflow._util import content_hash
from scopeflow.workflows.cache import Cache, hash_off_loop, node_key


async def test_content_hashes_and_keys() -> None:
    a = np.arange(12, dtype="uint16").reshape(3, 4)
    assert await hash_off_loop(a) == await hash_off_loop(a.copy())
    assert await hash_off_loop(a) != await hash_off_loop(a.astype("int16"))  # same bytes count, other dtype
    assert await hash_off_loop(a) != await hash_off_loop(a.reshape(4, 3))
    assert await hash_off_loop(np.asfortranarray(a)) == await hash_off_loop(a)
    big = np.random.default_rng(0).random((800, 800))  # hashed in a thread
    assert await hash_off_loop(big) == content_hash(big)
    assert await hash_off_loop({"b": 1, "a": [1, 2]}) == await hash_off_loop({"a": [1, 2], "b": 1})
    key = node_key("s" * 64, "blur", {"sigma": 1.5}, [["image", "h1"]])
    assert len(key) == 64
    assert key == node_key("s" * 64, "blur", {"sigma": 1.5}, [["image", "h1"]])
    assert key != node_key("s" * 64, "blur", {"sigma": 2}, [["image", "h1"]])
    assert key != node_key("t" * 64, "blur", {"sigma": 1.5}, [["image", "h1"]])
    assert key != node_key("s" * 64, "blur", {"sigma": 1.5}, [["image", "h2"]])


async def test_round_trip_of_arrays_tables_values(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    image = np.random.default_rng(1).integers(0, 4000, (64, 48), dtype="uint16")
    table = {"label": [1, 2], "area": [10.5, 3.0]}
    key = "a" * 64
    entry = await cache.put(key, {"image": ("ndarray", image), "table": ("table", table), "n": ("value", 7)})
    assert entry.outputs["image"].summary == {"kind": "ndarray", "shape": [64, 48], "dtype": "uint16"}
    assert entry.outputs["table"].summary == {"kind": "table", "columns": ["label", "area"], "rows": 2}
    assert entry.outputs["n"].summary == {"kind": "value", "value": 7}
    again = Cache(tmp_path / "cache").get(key)  # a new instance reads what is on disk
    assert again is not None
    assert np.array_equal(again.load("image"), image) and again.load("image").dtype == np.uint16
    assert again.load("table") == table and again.load("n") == 7
    assert list(again.load("table")) == ["label", "area"]  # column order kept, not sorted
    assert again.outputs["image"].hash == await hash_off_loop(image)  # stored, not recomputed
    assert cache.get("b" * 64) is None and cache.get("not a key") is None


async def test_least_recently_used_entries_go_first(tmp_path: Path) -> None:
    one_mb = np.zeros(1 << 20, dtype="uint8")
    cache = Cache(tmp_path / "cache", budget=int(3.5 * (1 << 20)))
    keys = [c * 64 for c in "abcd"]
    for key in keys[:3]:
        await cache.put(key, {"x": ("ndarray", one_mb)})
        time.sleep(0.01)
    assert cache.get(keys[0]) is not None  # a is now the most recently used
    time.sleep(0.01)
    await cache.put(keys[3], {"x": ("ndarray", one_mb)})
    assert keys[1] not in cache and not cache.path(keys[1]).exists()  # b was the least recently used
    assert all(k in cache for k in (keys[0], keys[2], keys[3]))
    assert cache.size <= cache.budget
    reopened = Cache(tmp_path / "cache", budget=int(1.5 * (1 << 20)))  # last use survives a restart
    assert reopened.evict() == [keys[2], keys[0]]
    assert keys[3] in reopened


async def test_writes_are_atomic_and_leftovers_cleared(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    key = "c" * 64
    leftover = cache.tmp / f"{key}.dead"  # a write a stopped hub never finished
    leftover.mkdir(parents=True)
    (leftover / "0.npy").write_bytes(b"half")
    os.utime(leftover, (time.time() - 7200, time.time() - 7200))  # left over an hour ago
    cache = Cache(tmp_path / "cache")
    assert not leftover.exists() and cache.get(key) is None
    entry = await cache.put(key, {"x": ("value", [1, 2])})
    assert sorted(p.name for p in entry.path.iterdir()) == ["0.json", "meta.json"]
    assert list(cache.tmp.iterdir()) == []
    await cache.put(key, {"x": ("value", [1, 2])})  # the same key again keeps one entry
    assert cache.get(key) is not None and cache.get(key).load("x") == [1, 2]  # type: ignore[union-attr]


@pytest.mark.parametrize("damage", ["meta", "missing file", "truncated array"])
async def test_a_corrupt_entry_is_a_miss_not_a_crash(tmp_path: Path, damage: str) -> None:
    cache = Cache(tmp_path / "cache")
    key = "d" * 64
    entry = await cache.put(key, {"x": ("ndarray", np.ones((100, 100)))})
    if damage == "meta":
        (entry.path / "meta.json").write_text("{not json")
        assert cache.get(key) is None
        assert not entry.path.exists()
    elif damage == "missing file":
        os.unlink(entry.path / "0.npy")
        assert cache.get(key) is None
    else:
        with open(entry.path / "0.npy", "r+b") as file:
            file.truncate(200)
        found = cache.get(key)
        assert found is not None  # its metadata is fine; reading the array fails cleanly
        with pytest.raises(ValueError):
            found.load("x")
    meta = json.dumps({"outputs": {"x": {"kind": "value"}}})  # a wrong shape of metadata
    path = cache.path("e" * 64)
    path.mkdir(parents=True)
    (path / "meta.json").write_text(meta)
    assert cache.get("e" * 64) is None


def test_code_digest_covers_the_plugins_folder_of_weights(tmp_path: Path) -> None:
    from scopeflow.workflows.cache import code_digest

    plugin = tmp_path / "segment.py"
    plugin.write_text("PLUGIN = {}")
    assert code_digest("s" * 64, str(plugin)) == "s" * 64  # a plugin alone: its file's sha256
    (tmp_path / "segment").mkdir()
    weights = tmp_path / "segment" / "weights.pt"
    weights.write_bytes(b"one")
    first = code_digest("s" * 64, str(plugin))
    (tmp_path / "segment" / "__pycache__").mkdir()
    (tmp_path / "segment" / "__pycache__" / "x.pyc").write_bytes(b"noise")
    assert code_digest("s" * 64, str(plugin)) == first  # caches of Python do not count
    weights.write_bytes(b"second")  # retrained: cached results of the old weights must not be served
    assert code_digest("s" * 64, str(plugin)) != first


def test_structured_arrays_hash_their_fields() -> None:
    a = np.zeros(3, dtype=[("a", "<i4"), ("b", "<f4")])
    b = np.zeros(3, dtype=[("a", "<f4"), ("b", "<i4")])
    assert a.tobytes() == b.tobytes() and content_hash(a) != content_hash(b)


async def test_held_outputs_survive_eviction_and_a_second_hub_keeps_the_firsts_writes(tmp_path: Path) -> None:
    one_mb = np.zeros(1 << 20, dtype="uint8")
    cache = Cache(tmp_path / "cache", budget=int(1.5 * (1 << 20)))
    await cache.put("a" * 64, {"x": ("ndarray", one_mb)})
    cache.hold("a" * 64, 60)  # a run's output its caller has not read yet
    await cache.put("b" * 64, {"x": ("ndarray", one_mb)})
    assert cache.get("a" * 64) is not None
    busy = cache.tmp / "write-in-flight"  # another hub on the same data dir is writing
    busy.mkdir(parents=True)
    old = cache.tmp / "left-by-a-killed-hub"
    old.mkdir()
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    Cache(tmp_path / "cache")
    assert busy.exists() and not old.exists()


def on_disk(cache: Cache) -> int:
    """The bytes the cache's entries really take (what its index should count)."""
    return sum(f.stat().st_size for f in cache.objects.rglob("*") if f.is_file())


class WaitsInTheWriter(dict[str, Any]):
    """A table whose serialisation in the cache's writer thread waits until the test lets it go on."""

    def __init__(self, value: dict[str, Any]) -> None:
        super().__init__(value)
        self.writing = threading.Event()
        self.go_on = threading.Event()

    def items(self) -> Any:
        if threading.current_thread() is not threading.main_thread():
            self.writing.set()
            self.go_on.wait(10)
        return super().items()


async def test_a_run_cancelled_while_its_result_is_written_leaves_no_uncounted_entry(tmp_path: Path) -> None:
    one_mb = np.zeros(1 << 20, dtype="uint8")
    cache = Cache(tmp_path / "cache", budget=int(1.5 * (1 << 20)))
    await cache.put("a" * 64, {"x": ("ndarray", one_mb)})
    key = "b" * 64
    table = WaitsInTheWriter({"label": list(range(150_000))})  # ~1 MB of JSON: over budget with a
    put = asyncio.create_task(cache.put(key, {"t": ("table", table)}, hashes={"t": "h" * 64}))
    try:
        assert await asyncio.to_thread(table.writing.wait, 10)  # the write is under way in its thread
        put.cancel()  # the run is cancelled: the thread cannot be, and goes on
        with pytest.raises(asyncio.CancelledError):
            await put
    finally:
        table.go_on.set()
    for _ in range(500):  # until the thread has renamed the entry into place
        if cache.path(key).is_dir() and not any(cache.tmp.iterdir()):
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    assert cache.path(key).is_dir()  # the write finished after its task was cancelled
    assert key in cache and cache.size == on_disk(cache)  # and the index counts it
    await cache.put("c" * 64, {"x": ("value", 1)})  # so the next write evicts for it
    assert on_disk(cache) == cache.size <= cache.budget
    assert "a" * 64 not in cache and not cache.path("a" * 64).exists()


def test_a_get_racing_the_eviction_of_its_entry_does_not_count_it_again(tmp_path: Path) -> None:
    one_mb = np.zeros(1 << 20, dtype="uint8")
    cache = Cache(tmp_path / "cache", budget=int(1.5 * (1 << 20)))
    victim = "a" * 64
    found: list[Any] = []

    async def race() -> None:
        # one worker thread, so that the test can keep the eviction's removal waiting behind a job of its own
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(1))
        await cache.put(victim, {"x": ("ndarray", one_mb)})
        go_on = threading.Event()
        table = WaitsInTheWriter({"label": list(range(150_000))})  # ~1 MB of JSON: over budget with a
        put = asyncio.create_task(cache.put("b" * 64, {"t": ("table", table)}, hashes={"t": "h" * 64}))
        try:
            while not table.writing.is_set():  # put's write holds the one worker...
                await asyncio.sleep(0.01)
            blocker = asyncio.get_running_loop().run_in_executor(None, go_on.wait, 10)  # ...this waits next
            table.go_on.set()
            for _ in range(500):  # until put has chosen its victims (their removal waits behind the blocker)
                if victim not in cache:
                    break
                await asyncio.sleep(0.01)
            assert victim not in cache
            found.append(cache.get(victim))  # a run looks the entry up while it is being deleted
        finally:
            table.go_on.set()
            go_on.set()
        await blocker
        await put

    asyncio.run(race())
    assert cache.size == on_disk(cache)  # the index counts nothing that is not on disk
    assert found == [None]  # a miss: not an entry whose files were being deleted
    assert victim not in cache and not cache.path(victim).exists() and cache.get(victim) is None
    assert Cache(tmp_path / "cache").size == cache.size


async def test_a_key_written_twice_with_other_bytes_leaves_index_and_disk_agreeing(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    key = "f" * 64
    await cache.put(key, {"x": ("ndarray", np.zeros(10))})
    second = await cache.put(key, {"x": ("ndarray", np.ones(1000))})  # a plugin that is not deterministic
    assert cache.size == on_disk(cache) == Cache(tmp_path / "cache").size
    found = cache.get(key)
    assert found is not None and found.outputs["x"].hash == second.outputs["x"].hash
    assert second.outputs["x"].hash == await hash_off_loop(found.load("x"))  # put returned what is stored
    assert found.outputs["x"].summary == {"kind": "ndarray", "shape": [1000], "dtype": "float64"}
    assert list(cache.tmp.iterdir()) == []
