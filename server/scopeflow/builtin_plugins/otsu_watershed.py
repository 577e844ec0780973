"""Otsu + watershed: classical nuclei segmentation, the baseline for the deep-learning plugins.

1. Smooth with a Gaussian (`smoothing`, pixels) and threshold at Otsu's level: the foreground.
2. Fill holes, drop objects smaller than `min_area` pixels.
3. Split touching nuclei: seeds are the maxima of the distance to the background that are at least
   `min_distance` pixels apart; a watershed of the inverted distance grows them inside the foreground.

Returns an int32 label image (0 = background, 1..n = nuclei). Works well on well-separated, evenly bright
nuclei; dim nuclei beside bright ones (Otsu's single level) and irregular shapes (over-splitting) are its
weak points — compare with `nuclei-segmentation`.
"""

from scopeflow import Image, op

PLUGIN = {
    "id": "otsu-watershed",
    "name": "Otsu + watershed segmentation",
    "version": "0.1.0",
    "description": "Classical nuclei segmentation: Otsu threshold, distance-transform watershed.",
    "requirements": ["scipy", "scikit-image"],
    "tags": ["segmentation", "classical", "nuclei"],
    "tests": [
        {
            "name": "nuclei-2d against its 125 hand-drawn nuclei (measured F1 0.714)",
            "op": "segment",
            "inputs": {"image": {"sample": "nuclei-2d"}},
            "expected": {"result": {"sample": "nuclei-2d-labels"}},
            "min_f1": 0.70,
        }
    ],
}


@op(
    title="Otsu + watershed",
    inputs={
        "smoothing": {
            "minimum": 0,
            "maximum": 20,
            "description": "Gaussian smoothing before thresholding (px)",
        },
        "min_distance": {
            "minimum": 1,
            "maximum": 200,
            "description": "smallest distance between two seeds (px)",
        },
        "min_area": {"minimum": 0, "description": "objects smaller than this are dropped (px²)"},
    },
)
def segment(
    image: Image["yx"], smoothing: float = 1.0, min_distance: int = 7, min_area: int = 20
) -> Image["yx"]:
    """Label the nuclei of a 2D fluorescence image (int32, same shape)."""
    import numpy as np
    from scipy import ndimage
    from skimage.feature import peak_local_max
    from skimage.filters import threshold_otsu
    from skimage.morphology import remove_small_objects
    from skimage.segmentation import watershed

    data = np.asarray(image)
    if data.dtype == object or not np.issubdtype(data.dtype, np.number):
        raise ValueError(f"otsu-watershed needs a numeric image, got dtype {data.dtype}")
    if data.ndim != 2 or data.size == 0:
        raise ValueError(f"otsu-watershed needs a non-empty 2D image (yx), got shape {data.shape}")
    data = data.astype(np.float32)
    if not np.isfinite(data).all():
        raise ValueError("the image contains NaN or infinite values")
    smooth = ndimage.gaussian_filter(data, smoothing) if smoothing > 0 else data
    if smooth.max() == smooth.min():
        return np.zeros(data.shape, dtype=np.int32)
    foreground = ndimage.binary_fill_holes(smooth > threshold_otsu(smooth))
    foreground = remove_small_objects(foreground, max_size=max(int(min_area) - 1, 0))
    distance = ndimage.distance_transform_edt(foreground)
    regions, _ = ndimage.label(foreground)
    peaks = peak_local_max(distance, min_distance=int(min_distance), labels=regions, exclude_border=False)
    markers = np.zeros(data.shape, dtype=np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    labels = watershed(-distance, markers, mask=foreground)
    return labels.astype(np.int32)
