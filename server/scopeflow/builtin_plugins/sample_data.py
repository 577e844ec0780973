"""Sample data: the hub's built-in images, with where they come from and their licence.

- `list_samples()` → one row per sample: id, name, description, axes, shape, dtype, source, licence.
- `load(sample_id)` → the image (a copy: change it freely).

The real nuclei images (`nuclei-2d` with its hand-drawn labels `nuclei-2d-labels`, and the 3D stack
`nuclei-3d`) come from the 2018 Data Science Bowl through the StarDist 0.9.2 wheel, BSD-3-Clause (the licence
ships beside them in `scopeflow/samples/`). The synthetic ones are generated, CC0.
"""

from scopeflow import Image, Table, op

PLUGIN = {
    "id": "sample-data",
    "name": "Sample data",
    "version": "0.1.0",
    "description": "Built-in sample images (real fluorescence nuclei with labels, synthetic cells).",
    "requirements": ["tifffile"],
    "tags": ["data", "samples"],
    "tests": [
        {
            "name": "nuclei-2d loads with its exact pixels",
            "op": "load",
            "inputs": {"sample_id": "nuclei-2d"},
            "expected": {"result": {"sample": "nuclei-2d"}},
            "atol": 0,
            "rtol": 0,
        }
    ],
}


@op(title="List the sample images")
def list_samples() -> Table:
    """Every sample with its source and licence, as a list of rows."""
    from scopeflow.images import formats as data

    return data.list_samples()


@op(title="Load a sample image")
def load(sample_id: str = "nuclei-2d") -> Image:
    """The sample `sample_id` (see `list_samples`), as a writable copy."""
    import numpy as np

    from scopeflow.images import formats as data

    try:
        array, _ = data.load_sample(sample_id)
    except KeyError as exc:
        raise ValueError(str(exc.args[0])) from None
    return np.array(array)
