"""Gaussian blur.

Smooths a 2D image with a Gaussian kernel (`scipy.ndimage.gaussian_filter`).

- **sigma**: the kernel's standard deviation, in pixels; `0` leaves the image as it is.

The result is `float32`, whatever the input's dtype.
"""

from scopeflow import Image, op

PLUGIN = {
    "id": "gaussian",
    "name": "Gaussian blur",
    "version": "0.1.0",
    "description": "Smooth an image with a Gaussian kernel.",
    "requirements": ["scipy"],
    "tags": ["denoising", "filter"],
    "tests": [
        {
            "name": "a crop of nuclei-2d against scipy.ndimage.gaussian_filter",
            "op": "blur",
            "inputs": {"image": {"file": "verify/crop.npy"}, "sigma": 2.0},
            "expected": {"result": {"file": "verify/crop-blurred.npy"}},
            "atol": 1e-4,
        }
    ],
}


@op(
    title="Gaussian blur",
    inputs={
        "sigma": {"minimum": 0, "maximum": 50, "description": "kernel width (standard deviation) in pixels"}
    },
)
def blur(image: Image["yx"], sigma: float = 2.0) -> Image["yx"]:
    """Smooth the image with a Gaussian of width `sigma` pixels; returns float32."""
    import numpy as np
    from scipy.ndimage import gaussian_filter

    data = np.asarray(image, dtype=np.float32)
    if sigma == 0:
        return data
    return gaussian_filter(data, sigma=float(sigma)).astype(np.float32, copy=False)
