"""Measure: one row per labelled object (`skimage.measure.regionprops`).

Give a label image (int, 0 = background) and, optionally, the intensity image it was made from. The table has,
per label: `label`, `area` (pixels), `centroid_y`, `centroid_x`, `eccentricity` (0 = circle, → 1 = line),
`mean_intensity`, `min_intensity`, `max_intensity` (empty when no intensity image is given), `perimeter`,
`solidity`, `bbox` (min_y, min_x, max_y, max_x).

The table is a dict of equal-length columns, ready for a spreadsheet or `pandas.DataFrame(table)`.
"""

from scopeflow import Image, Table, op

PLUGIN = {
    "id": "measure",
    "name": "Measure objects",
    "version": "0.1.0",
    "description": "Region properties per label: area, intensity, centroid, eccentricity → a table.",
    "requirements": ["scikit-image"],
    "tags": ["measurement", "analysis", "classical"],
    "tests": [
        {
            "name": "nuclei-2d's hand-drawn labels: every nucleus and its area in pixels",
            "op": "regions",
            "inputs": {"labels": {"sample": "nuclei-2d-labels"}, "image": {"sample": "nuclei-2d"}},
            "expected": {"result": {"file": "verify/nuclei-2d-areas.json"}},
            "atol": 0,
            "rtol": 0,
        }
    ],
}


@op(title="Measure objects")
def regions(labels: Image["yx"], image: Image["yx"] | None = None) -> Table:
    """Region properties of every label, as a dict of columns."""
    import numpy as np
    from skimage.measure import regionprops

    lab = np.asarray(labels)
    if lab.ndim != 2 or lab.size == 0:
        raise ValueError(f"measure needs a non-empty 2D label image (yx), got shape {lab.shape}")
    integer = np.issubdtype(lab.dtype, np.integer) or lab.dtype == bool
    whole = np.issubdtype(lab.dtype, np.floating) and np.isfinite(lab).all() and not np.any(lab % 1)
    if not (integer or whole):
        raise ValueError(f"labels must be whole numbers, got dtype {lab.dtype}")
    if (lab < 0).any():
        raise ValueError("labels must not be negative")
    lab = lab.astype(np.int64)
    intensity = None
    if image is not None:
        intensity = np.asarray(image, dtype=np.float64)
        if intensity.shape != lab.shape:
            raise ValueError(f"image shape {intensity.shape} differs from the labels' {lab.shape}")
        if not np.isfinite(intensity).all():
            raise ValueError("the image contains NaN or infinite values")
    columns: dict[str, list] = {
        key: []
        for key in (
            "label",
            "area",
            "centroid_y",
            "centroid_x",
            "eccentricity",
            "mean_intensity",
            "min_intensity",
            "max_intensity",
            "perimeter",
            "solidity",
            "bbox",
        )
    }
    for region in regionprops(lab, intensity_image=intensity):
        columns["label"].append(int(region.label))
        columns["area"].append(int(region.area))
        columns["centroid_y"].append(float(region.centroid[0]))
        columns["centroid_x"].append(float(region.centroid[1]))
        columns["eccentricity"].append(float(region.eccentricity))
        for name, attr in (("mean", "intensity_mean"), ("min", "intensity_min"), ("max", "intensity_max")):
            columns[f"{name}_intensity"].append(
                float(getattr(region, attr)) if intensity is not None else None
            )
        columns["perimeter"].append(float(region.perimeter))
        columns["solidity"].append(float(region.solidity))
        columns["bbox"].append([int(v) for v in region.bbox])
    return columns
