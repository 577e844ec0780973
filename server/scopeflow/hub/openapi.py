"""The hub's REST API as an OpenAPI 3.0 document (``GET /api/openapi.json``).

Written here beside the handlers it describes; ``tests/hub/test_openapi.py`` fuzzes every operation from
it with schemathesis, so a door that answers a 5xx to any input it allows fails the build. Every door takes
the token (``Authorization: token ...``); the websocket ``/ws`` and the pages are not part of it.
"""

from __future__ import annotations

from typing import Any

from scopeflow import __version__
from scopeflow._util import ID

__all__ = ["openapi_document"]

_JSON = {"application/json": {"schema": {"type": "object"}}}
_ANY_JSON: dict[str, Any] = {"application/json": {"schema": {}}}
_BYTES = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
_TIFF = {"image/tiff": {"schema": {"type": "string", "format": "binary"}}}


def _answers(ok: int = 200, *more: int, body: dict[str, Any] | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {str(ok): {"description": "done", **({"content": body} if body else {})}}
    why = {
        400: "the input is malformed: the message says which part and why",
        403: "no token, or a wrong one",
        404: "no such thing",
        409: "it changed since it was previewed",
        413: "larger than the hub accepts",
        507: "the disk (or the memory) is full: the message says where",
    }
    for code in (400, 403, 404, *more, 507):  # 404 too: a path parameter the routes do not take
        found[str(code)] = {"description": why.get(code, "refused"), "content": _JSON}
    return found


def _id(name: str, pattern: str = ID, where: str = "path") -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "schema": {"type": "string", "pattern": f"^{pattern}$"},
    }


def _query(name: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema}


def _body(schema: dict[str, Any], media: str = "application/json") -> dict[str, Any]:
    return {"required": True, "content": {media: {"schema": schema}}}


PLUGIN_ID = _id("plugin_id")
WORKFLOW = _id("name")
BLOB = _id("name", "sf-[0-9a-f-]{1,120}")
SHAPE = "^[0-9]{1,9}(,[0-9]{1,9}){0,5}$"
ANY_OBJECT: dict[str, Any] = {"type": "object"}


def openapi_document() -> dict[str, Any]:
    """The document; plain data, built anew on every call."""
    paths: dict[str, Any] = {
        "/api/hub": {
            "get": {"summary": "Version, workspace, clients, kernels", "responses": _answers(body=_JSON)}
        },
        "/api/plugins": {
            "get": {"summary": "Every plugin with its status", "responses": _answers(body=_JSON)},
            "post": {
                "summary": "Preview or install a plugin from a URL (or install one from source)",
                "requestBody": _body(
                    {
                        "type": "object",
                        "properties": {
                            "url": {"type": "string"},
                            "preview": {"type": "boolean"},
                            "sha256": {"type": "string"},
                            "public_only": {"type": "boolean"},
                            "tag": {"type": "string"},
                            "source": {"type": "string"},
                            "filename": {"type": "string"},
                        },
                    }
                ),
                "responses": _answers(201, 409, body=_JSON) | {"200": {"description": "previewed"}},
            },
        },
        "/api/models/preview": {
            "post": {
                "summary": "Preview a bioimage.io model package: its zip as the body, or the URL of one",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                        "application/json": {
                            "schema": {"type": "object", "properties": {"url": {"type": "string"}}}
                        },
                    },
                },
                "responses": _answers(200, 413, body=_JSON),
            }
        },
        "/api/models/install": {
            "post": {
                "summary": "Install the previewed model package of this sha256 as a plugin",
                "requestBody": _body(
                    {
                        "type": "object",
                        "properties": {"sha256": {"type": "string"}, "source_url": {"type": "string"}},
                    }
                ),
                "responses": _answers(201, 404, body=_JSON),
            }
        },
        "/api/plugins/{plugin_id}": {
            "parameters": [PLUGIN_ID],
            "get": {
                "summary": "A plugin's manifest, status and source",
                "responses": _answers(200, 404, body=_JSON),
            },
            "delete": {"summary": "Remove an installed plugin", "responses": _answers(204, 404)},
        },
        "/api/plugins/{plugin_id}/{action}": {
            "parameters": [
                PLUGIN_ID,
                {
                    "name": "action",
                    "in": "path",
                    "required": True,
                    "schema": {"enum": ["start", "stop", "restart"]},
                },
            ],
            "post": {
                "summary": "Start, stop or restart a plugin's kernel",
                "responses": _answers(200, 404, 500, body=_JSON),
            },
        },
        "/api/plugins/{plugin_id}/logs": {
            "parameters": [PLUGIN_ID],
            "get": {"summary": "A plugin's recent output", "responses": _answers(200, 404, body=_JSON)},
        },
        "/api/plugins/{plugin_id}/tag": {
            "parameters": [PLUGIN_ID],
            "post": {
                "summary": "Use another of an ImJoy plugin's tags",
                "requestBody": _body({"type": "object", "properties": {"tag": {"type": "string"}}}),
                "responses": _answers(200, 404, body=_JSON),
            },
        },
        "/api/plugins/{plugin_id}/verify": {
            "parameters": [PLUGIN_ID],
            "post": {
                "summary": "Run the plugin's declared test cases in its kernel: pass or fail per case",
                "responses": _answers(200, 404, body=_JSON),
            },
        },
        "/api/samples": {"get": {"summary": "The sample images", "responses": _answers(body=_ANY_JSON)}},
        "/api/samples/{sample_id}": {
            "parameters": [_id("sample_id", "[A-Za-z0-9._-]{1,128}")],
            "get": {
                "summary": "A sample's pixels (X-Shape, X-Dtype, X-Axes)",
                "responses": _answers(200, 404, body=_BYTES),
            },
        },
        "/api/images/read": {
            "post": {
                "summary": "Decode an image file (TIFF, OME-TIFF, PNG) sent as the body",
                "parameters": [_query("name", {"type": "string"})],
                "requestBody": _body({"type": "string", "format": "binary"}, "application/octet-stream"),
                "responses": _answers(200, 413, body=_BYTES),
            }
        },
        "/api/images/write": {
            "post": {
                "summary": "Encode raw pixels (the body) as a TIFF or PNG file",
                "parameters": [
                    _query("format", {"enum": ["tiff", "png"]}),
                    _query("shape", {"type": "string", "pattern": SHAPE}, True),
                    _query("dtype", {"type": "string"}, True),
                    _query("axes", {"type": "string"}),
                ],
                "requestBody": _body({"type": "string", "format": "binary"}, "application/octet-stream"),
                "responses": _answers(200, 413, body=_BYTES),
            }
        },
        "/api/annotations": {
            "get": {
                "summary": "Saved annotations (label images), of one image with ``image``",
                "parameters": [_query("image", {"type": "string", "pattern": "^[0-9a-f]{64}$"})],
                "responses": _answers(body=_ANY_JSON),
            }
        },
        "/api/annotations/{image}/{name}": {
            "parameters": [_id("image", "[0-9a-f]{64}"), _id("name")],
            "get": {"summary": "An annotation as a TIFF file", "responses": _answers(200, 404, body=_TIFF)},
            "put": {
                "summary": "Save an annotation: an int32 TIFF of the image's shape without channels",
                "parameters": [
                    _query("image_shape", {"type": "string", "pattern": SHAPE}, True),
                    _query("image_axes", {"type": "string", "pattern": "^[tczyx]{2,5}$"}, True),
                    _query("image_name", {"type": "string"}),
                ],
                "requestBody": _body({"type": "string", "format": "binary"}, "application/octet-stream"),
                "responses": _answers(200, 201, 409, 413, body=_JSON),
            },
            "delete": {"summary": "Delete an annotation", "responses": _answers(204, 404)},
        },
        "/api/transfer": {
            "get": {
                "summary": "Arrays in flight the hub holds",
                "parameters": [_query("client_id", {"type": "string"})],
                "responses": _answers(body=_JSON),
            }
        },
        "/api/transfer/{name}": {
            "parameters": [BLOB],
            "put": {
                "summary": "Upload an array's bytes",
                "requestBody": _body({"type": "string", "format": "binary"}, "application/octet-stream"),
                "responses": _answers(201, 404, 409, 413),
            },
            "get": {
                "summary": "Download an array's bytes (once)",
                "responses": _answers(200, 404, body=_BYTES),
            },
            "delete": {"summary": "Drop an array", "responses": _answers(204, 404)},
        },
        "/api/workflows": {"get": {"summary": "Saved workflows", "responses": _answers(body=_ANY_JSON)}},
        "/api/workflows/check": {
            "post": {
                "summary": "Validate a workflow document",
                "requestBody": _body(ANY_OBJECT),
                "responses": _answers(body=_JSON),
            }
        },
        "/api/workflows/fetch": {
            "post": {
                "summary": "Fetch a shared workflow document from a URL",
                "requestBody": _body(
                    {
                        "type": "object",
                        "properties": {"url": {"type": "string"}, "public_only": {"type": "boolean"}},
                    }
                ),
                "responses": _answers(200, body=_JSON),
            }
        },
        "/api/workflows/pin": {
            "post": {
                "summary": "Put back the kept version of a plugin a workflow pins",
                "requestBody": _body(
                    {
                        "type": "object",
                        "properties": {"plugin": {"type": "string"}, "sha256": {"type": "string"}},
                    }
                ),
                "responses": _answers(200, 404, 409, body=_JSON),
            }
        },
        "/api/workflows/{name}": {
            "parameters": [WORKFLOW],
            "get": {
                "summary": "A saved workflow (``version``: an earlier one)",
                "parameters": [_query("version", {"type": "string"})],
                "responses": _answers(200, 404, body=_JSON),
            },
            "put": {
                "summary": "Save a workflow (a new version)",
                "requestBody": _body(ANY_OBJECT),
                "responses": _answers(200, body=_JSON),
            },
            "delete": {"summary": "Delete a workflow (its versions stay)", "responses": _answers(204, 404)},
        },
        "/api/workflows/{name}/versions": {
            "parameters": [WORKFLOW],
            "get": {"summary": "A workflow's versions", "responses": _answers(200, 404, body=_ANY_JSON)},
        },
        "/api/gallery": {
            "get": {"summary": "The gallery of workflows", "responses": _answers(body=_ANY_JSON)}
        },
        "/api/gallery/{name}": {
            "parameters": [WORKFLOW],
            "get": {"summary": "A gallery workflow", "responses": _answers(200, 404, body=_JSON)},
        },
        "/api/workflow-schema": {
            "get": {"summary": "The workflow document's JSON schema", "responses": _answers(body=_JSON)}
        },
        "/api/openapi.json": {"get": {"summary": "This document", "responses": _answers(body=_JSON)}},
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "scopeflow hub", "version": __version__},
        "components": {
            "securitySchemes": {"token": {"type": "apiKey", "in": "header", "name": "Authorization"}}
        },
        "security": [{"token": []}],
        "paths": paths,
    }
