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


@op
async def through_the_manager(image: Image) -> dict:
    """The array goes to the hub's workspace manager (api.echo) and back; as a handle?"""
    back = await api.echo(image)
    peers = api._server.rpc.array_peers
    return {"image": back, "manager_reads_handles": any(p.endswith("/workspace-manager") for p in peers)}
