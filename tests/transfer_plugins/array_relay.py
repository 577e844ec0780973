"""Test plugin: hands arrays to another plugin, with code written as if arrays were local."""

import numpy as np

from scopeflow import Image, api, op

PLUGIN = {"id": "array-relay", "name": "Array relay", "version": "1.0.0", "description": "relays arrays"}


@op
async def relay(image: Image) -> Image:
    echo = await api.getPlugin("array-echo")
    back = await echo.echo({"image": image, "scaled": image * 2})
    assert np.array_equal(back["scaled"], image * 2)
    return back["image"]
