"""The denoising plugins (noise2void, nl-means, gaussian) through a real hub, on small images."""

from __future__ import annotations

import numpy as np
import pytest

from scopeflow.rpc.client import connect


def blobs(size: int = 48, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A smooth image of bright discs in [0, 1] and a noisy copy (Gaussian noise, sigma = 0.15)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    clean = np.zeros((size, size), np.float32)
    for _ in range(6):
        cy, cx, r = rng.uniform(6, size - 6), rng.uniform(6, size - 6), rng.uniform(4, 8)
        clean = np.maximum(clean, ((yy - cy) ** 2 + (xx - cx) ** 2 < r * r) * rng.uniform(0.5, 1.0))
    noisy = clean + rng.normal(0, 0.15, clean.shape).astype(np.float32)
    return clean, noisy.astype(np.float32)


def mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((np.asarray(a, np.float64) - b) ** 2))


@pytest.fixture
async def client(hub):
    server = await connect(hub.url, token=hub.token)
    yield server
    await server.disconnect()


@pytest.mark.timeout(900)  # trains three small networks on a shared CPU
async def test_noise2void_denoises_deterministically_and_reports_its_training(hub):
    """Shape and dtype kept, noise reduced, same seed same result; the app gets the progress and loss plot."""
    windows: list[dict] = []
    progress: list[float] = []
    app = await connect(hub.url, token=hub.token, client_id="n2v-test-app")
    try:
        await app.register_service(
            {"id": "imjoy-api", "createWindow": windows.append, "showProgress": progress.append}
        )
        n2v = await app.get_plugin("noise2void")
        clean, noisy = blobs()
        first = await n2v.denoise(noisy, iterations=60, batch_size=8, seed=3)
        assert first.shape == noisy.shape and first.dtype == np.float32
        assert mse(first, clean) < 0.7 * mse(noisy, clean)
        again = await n2v.denoise(noisy, iterations=60, batch_size=8, seed=3)
        np.testing.assert_array_equal(first, again)
        other = await n2v.denoise(noisy, iterations=10, batch_size=4, seed=4)
        assert not np.array_equal(first, other)
        as_uint16 = (noisy.clip(0, None) * 1000).astype(np.uint16)
        as_uint16 = await n2v.denoise(as_uint16, iterations=10, batch_size=4)
        assert as_uint16.dtype == np.float32 and as_uint16.shape == noisy.shape
    finally:
        await app.disconnect()
    plots = [w for w in windows if w.get("type") == "scopeflow/plot"]
    assert plots and all(p["name"] == "noise2void loss" for p in plots)
    longest = max((p["data"] for p in plots), key=lambda data: len(data["x"]))
    assert len(longest["x"]) == len(longest["series"]["train"]) == len(longest["series"]["held-out"]) >= 2
    assert all(np.isfinite(longest["series"]["held-out"]))
    assert progress and max(progress) == 100


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((3, 32, 32), np.float32), "2D"),
        (np.zeros((0, 0), np.float32), "empty"),
        (np.full((32, 32), np.nan, np.float32), "NaN"),
        (np.zeros((8, 8), np.float32), "at least 16"),
    ],
)
async def test_noise2void_rejects_bad_images_clearly(client, image, message):
    n2v = await client.get_plugin("noise2void")
    with pytest.raises(Exception, match=message):
        await n2v.denoise(image, iterations=10)
    # the plugin survives the bad input
    out = await n2v.denoise(blobs(32)[1], iterations=10, batch_size=2)
    assert out.shape == (32, 32)


async def test_nl_means_and_gaussian_reduce_noise(client):
    clean, noisy = blobs(64)
    nlm = await client.get_plugin("nl-means")
    out = await nlm.denoise(noisy)
    assert out.shape == noisy.shape and out.dtype == np.float32
    assert mse(out, clean) < 0.5 * mse(noisy, clean)
    fixed = await nlm.denoise(noisy, h=0.8, sigma=0.15)
    assert mse(fixed, clean) < mse(noisy, clean)
    with pytest.raises(Exception, match="NaN"):
        await nlm.denoise(np.full((16, 16), np.nan))
    with pytest.raises(Exception, match="2D"):
        await nlm.denoise(np.zeros((2, 16, 16)))
    gaussian = await client.get_plugin("gaussian")
    blurred = await gaussian.blur(noisy, sigma=1.5)
    assert blurred.dtype == np.float32 and mse(blurred, clean) < mse(noisy, clean)
