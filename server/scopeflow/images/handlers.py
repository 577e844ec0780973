"""HTTP doors of images: the built-in samples, image files in and out, and annotations (label images painted
in the web app, kept as TIFF on the hub). Every one needs the token.

Pixels travel as raw little-endian C-order bytes described by the ``X-Shape``, ``X-Dtype`` and ``X-Axes``
headers.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
from jupyter_server.base.handlers import APIHandler
from tornado import web

from scopeflow._http import HubMixin
from scopeflow.images import formats as data
from scopeflow.images.annotations import AnnotationError, Annotations


class ArrayBody:
    """Arrays over HTTP: raw little-endian C-order bytes, described by X-Shape, X-Dtype and X-Axes."""

    set_header: Any
    finish: Any

    def finish_array(self, array: Any, axes: str, name: str = "") -> None:
        array = np.ascontiguousarray(array)
        if array.dtype.byteorder == ">":
            array = array.astype(array.dtype.newbyteorder("<"))
        self.set_header("X-Shape", ",".join(str(n) for n in array.shape))
        self.set_header("X-Dtype", str(array.dtype))
        self.set_header("X-Axes", axes)
        if name:
            self.set_header("X-Name", quote(name))
        self.finish(array.tobytes(), set_content_type="application/octet-stream")  # tornado writes bytes only


class SamplesHandler(HubMixin, APIHandler):
    """``GET /api/samples``: the built-in sample images, with their source and licence."""

    @web.authenticated
    def get(self) -> None:
        self.finish(json.dumps(data.list_samples()))


class SampleHandler(HubMixin, ArrayBody, APIHandler):
    """``GET /api/samples/ID``: one sample's pixels (see :class:`ArrayBody`)."""

    @web.authenticated
    def get(self, sample_id: str) -> None:
        try:
            array, axes = data.load_sample(sample_id)
        except KeyError as exc:
            raise web.HTTPError(404, str(exc.args[0])) from None
        self.finish_array(array, axes, data.SAMPLES[sample_id]["name"])


class ImageReadHandler(HubMixin, ArrayBody, APIHandler):
    """``POST /api/images/read?name=F``: an image file in the body (TIFF/OME-TIFF, PNG, JPEG) → its pixels."""

    @web.authenticated
    async def post(self) -> None:
        name = self.get_argument("name", "image")
        try:  # decoding runs off the event loop: every other client keeps its answers meanwhile
            array, axes = await asyncio.to_thread(data.read_image, self.request.body, name)
        except data.ImageError as exc:
            raise web.HTTPError(400, str(exc)) from None
        self.finish_array(array, axes, name)


# the only values of /api/images/write's ``format``: a str, which data.write_image never takes for a path
WRITE_FORMATS = {"tiff": "tiff", "png": "png"}


class ImageWriteHandler(HubMixin, APIHandler):
    """``POST /api/images/write?format=tiff|png&shape=..&dtype=..&axes=..``: pixels in the body → a file.

    The file comes back in the response and nowhere else: nothing in the request names a place to write,
    and ``format`` is one of two names (anything else, a path included, is a 400).
    """

    @web.authenticated
    async def post(self) -> None:
        fmt = self.get_argument("format", "tiff")
        if fmt not in WRITE_FORMATS:
            raise web.HTTPError(400, f"format must be {' or '.join(WRITE_FORMATS)}")
        try:
            shape = [int(n) for n in self.get_argument("shape").split(",") if n != ""]
            array = data.array_from_raw(self.request.body, shape, self.get_argument("dtype"))
            axes = self.get_argument("axes", None) or None
            file = await asyncio.to_thread(data.write_image, array, WRITE_FORMATS[fmt], axes=axes)
        except (ValueError, OverflowError, data.ImageError) as exc:
            raise web.HTTPError(400, str(exc)) from None
        assert file is not None  # a format's name gives bytes, never writes a file
        self.finish(file, set_content_type="image/png" if fmt == "png" else "image/tiff")


class AnnotationMixin(HubMixin):
    """The hub's annotations, under ``<data dir>/annotations``."""

    @property
    def annotations(self) -> Annotations:
        return Annotations(Path(self.hub.data_dir).expanduser() / "annotations")


class AnnotationsHandler(AnnotationMixin, APIHandler):
    """``GET /api/annotations[?image=KEY]``: the saved annotations (of one image), newest first."""

    @web.authenticated
    def get(self) -> None:
        try:
            self.finish_json(self.annotations.listing(self.get_argument("image", None)))
        except AnnotationError as exc:
            raise web.HTTPError(exc.status, str(exc)) from None


SHAPE = re.compile(r"^[0-9]{1,9}(,[0-9]{1,9}){0,5}$")


class AnnotationHandler(AnnotationMixin, APIHandler):
    """``GET|PUT|DELETE /api/annotations/KEY/NAME``: one annotation of the image whose key is KEY.

    PUT takes the labels as a TIFF file (int32, the image's shape without channels) and
    ``?image_shape=..&image_axes=..&image_name=..`` describing the image; GET gives the TIFF file back.
    """

    @web.authenticated
    def get(self, image: str, name: str) -> None:
        try:
            path = self.annotations.path(image, name)
            file = path.read_bytes()
        except AnnotationError as exc:
            raise web.HTTPError(exc.status, str(exc)) from None
        except (KeyError, FileNotFoundError) as exc:
            raise web.HTTPError(404, str(exc.args[0]) if exc.args else "no such annotation") from None
        self.set_header("Content-Disposition", f'attachment; filename="{name}.tif"')
        self.finish(file, set_content_type="image/tiff")

    @web.authenticated
    async def put(self, image: str, name: str) -> None:
        raw_shape = self.get_argument("image_shape", "")
        if not SHAPE.match(raw_shape):
            raise web.HTTPError(400, "image_shape: the image's sizes, comma-separated (512,512)")
        shape = [int(n) for n in raw_shape.split(",")]
        axes = self.get_argument("image_axes", "")
        try:
            entry, created = await asyncio.to_thread(
                self.annotations.save,
                image,
                name,
                self.request.body,
                self.get_argument("image_name", ""),
                shape,
                axes,
            )
        except AnnotationError as exc:
            raise web.HTTPError(exc.status, str(exc)) from None
        self.finish_json(entry, 201 if created else 200)

    @web.authenticated
    def delete(self, image: str, name: str) -> None:
        try:
            self.annotations.delete(image, name)
        except AnnotationError as exc:
            raise web.HTTPError(exc.status, str(exc)) from None
        except KeyError as exc:
            raise web.HTTPError(404, str(exc.args[0])) from None
        self.set_status(204)
        self.finish()


default_handlers: list[tuple[str, type]] = [
    (r"/api/samples", SamplesHandler),
    (r"/api/samples/(?P<sample_id>[A-Za-z0-9._-]{1,128})", SampleHandler),
    (r"/api/images/read", ImageReadHandler),
    (r"/api/images/write", ImageWriteHandler),
    (r"/api/annotations", AnnotationsHandler),
    (r"/api/annotations/(?P<image>[^/]+)/(?P<name>[^/]+)", AnnotationHandler),
]
