"""Non-local means denoising (`skimage.restoration.denoise_nl_means`).

Each pixel becomes a weighted mean of pixels whose surrounding patch looks alike, so edges and repeated
structures survive better than with a Gaussian blur.

- **h**: filtering strength, in units of the noise's standard deviation; the noise is estimated from the
  image (Immerkær's Laplacian-difference estimate) unless `sigma` is given.
- **sigma**: the noise's standard deviation in image units; `0` estimates it.
- **patch_size**, **patch_distance**: the compared patches (pixels) and how far to look for them.

The result is `float32`, same shape.
"""

from scopeflow import Image, op

PLUGIN = {
    "id": "nl-means",
    "name": "Non-local means denoising",
    "version": "0.1.0",
    "description": "Classical patch-based denoising (non-local means).",
    "requirements": ["scipy", "scikit-image"],
    "tags": ["denoising", "filter", "classical"],
    "tests": [
        {
            "name": "a noisy field of nuclei (16.7 dB) comes back at least 4 dB cleaner",
            "op": "denoise",
            "inputs": {"image": {"file": "verify/noisy.npy"}},
            "expected": {"result": {"file": "verify/clean.npy"}},
            "min_psnr": 20.7,
        }
    ],
}


@op(
    title="Non-local means",
    inputs={
        "h": {"minimum": 0.01, "maximum": 10, "description": "strength, in noise standard deviations"},
        "sigma": {"minimum": 0, "description": "noise standard deviation (image units); 0: estimate it"},
        "patch_size": {"minimum": 3, "maximum": 15, "description": "side of the compared patches (px)"},
        "patch_distance": {"minimum": 1, "maximum": 30, "description": "search radius (px)"},
    },
)
def denoise(
    image: Image["yx"], h: float = 1.0, sigma: float = 0.0, patch_size: int = 5, patch_distance: int = 6
) -> Image["yx"]:
    """Non-local means of a 2D image; returns float32 of the same shape."""
    import math

    import numpy as np
    from scipy.ndimage import convolve
    from skimage.restoration import denoise_nl_means

    data = np.asarray(image)
    if data.dtype == object or not np.issubdtype(data.dtype, np.number):
        raise ValueError(f"nl-means needs a numeric image, got dtype {data.dtype}")
    if data.ndim != 2 or min(data.shape, default=0) < 3:
        raise ValueError(f"nl-means needs a 2D image (yx) of at least 3x3 pixels, got shape {data.shape}")
    data = data.astype(np.float32)
    if not np.isfinite(data).all():
        raise ValueError("the image contains NaN or infinite values")
    if sigma <= 0:
        kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)
        response = convolve(data, kernel, mode="reflect")[1:-1, 1:-1]
        sigma = math.sqrt(math.pi / 2) * float(np.abs(response).mean()) / 6
    if sigma == 0:
        return data
    out = denoise_nl_means(
        data,
        h=h * sigma,
        sigma=sigma,
        patch_size=int(patch_size),
        patch_distance=int(patch_distance),
        fast_mode=True,
    )
    return np.asarray(out, dtype=np.float32)
