"""Parsing plugin files into manifests, statically: ImJoy .imjoy.html and scopeflow .py plugins."""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from scopeflow._util import BUILTIN_PLUGINS
from scopeflow.plugins.manifest import (
    ManifestError,
    OpSpec,
    PluginManifest,
    PortSpec,
    is_plugin_file,
    parse_plugin,
    read_attachments,
)

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parents[1] / "fixtures" / "plugins"


def parse_fixture(name: str) -> PluginManifest:
    path = FIXTURES / name
    return parse_plugin(path.read_bytes(), name, path=str(path))


def port(op: OpSpec, name: str) -> PortSpec:
    return next(p for p in [*op.inputs, *op.outputs] if p.name == name)


def ops(manifest: PluginManifest) -> dict[str, OpSpec]:
    return {op.name: op for op in manifest.ops}


# --- ImJoy format -----------------------------------------------------------------------------------------


def test_imjoy_native_python_plugin() -> None:
    manifest = parse_fixture("image_tools.imjoy.html")
    assert manifest.id == "image-tools"  # derived from the name "Image Tools!"
    assert (manifest.name, manifest.version, manifest.type) == ("Image Tools!", "0.2.0", "native-python")
    assert (manifest.lang, manifest.format) == ("python", "imjoy-html")
    assert manifest.requirements == ["pip:scikit-image", "conda:numpy"]
    assert manifest.tags == ["math", "test"]
    assert manifest.icon == "extension"
    assert manifest.docs.startswith("# Image tools")
    assert manifest.config["api_version"] == "0.1.8" and manifest.config["env"] == ""
    assert manifest.path == str(FIXTURES / "image_tools.imjoy.html")
    # setup and _private are not ops; a staticmethod keeps its first parameter
    assert list(ops(manifest)) == ["add", "scale", "version"]


def test_imjoy_python_method_ports() -> None:
    add = ops(parse_fixture("image_tools.imjoy.html"))["add"]
    assert add.description == "Add two numbers."
    assert [(p.name, p.kind, p.schema_, p.required, p.default) for p in add.inputs] == [
        ("a", "value", {}, True, None),
        ("b", "value", {}, False, 1),
    ]
    assert [(p.name, p.kind, p.schema_) for p in add.outputs] == [("result", "value", {})]
    scale = ops(parse_fixture("image_tools.imjoy.html"))["scale"]
    assert port(scale, "image").kind == "ndarray"  # a quoted "np.ndarray" annotation
    assert port(scale, "factor").schema_ == {"type": "number"} and port(scale, "factor").default == 2.0
    assert port(scale, "mode").default == "fast" and not port(scale, "mode").required  # keyword-only


def test_script_may_contain_closing_tags_and_comparisons() -> None:
    source = (FIXTURES / "image_tools.imjoy.html").read_text()
    assert '"</script>"' in source and "a < b" in source
    assert "add" in ops(parse_plugin(source, "image_tools.imjoy.html"))


def test_imjoy_window_plugin_with_javascript_ops() -> None:
    manifest = parse_fixture("viewer.imjoy.html")
    assert (manifest.id, manifest.type, manifest.lang) == ("viewer", "window", "javascript")
    assert manifest.requirements == ["https://cdn.example.org/lib.min.js"]
    assert manifest.config["inputs"] is None
    found = ops(manifest)
    assert list(found) == ["show", "run"]  # not constructor, setup, nor if/for blocks inside methods
    show = found["show"]
    assert [(p.name, p.required, p.default) for p in show.inputs] == [
        ("image", True, None),
        ("title", False, "image"),
        ("opacity", False, 0.5),
    ]


def test_imjoy_yaml_config() -> None:
    manifest = parse_fixture("worker.imjoy.html")
    assert (manifest.id, manifest.name, manifest.type) == ("yaml-worker", "YAML Worker", "web-worker")
    assert manifest.lang == "javascript"  # a <script> without lang is JavaScript
    assert manifest.version == "0.3"  # YAML reads 0.3 as a number
    assert manifest.requirements == ["https://cdn.example.org/worker-lib.js"]  # one string is allowed
    assert manifest.ops == []  # an object literal is exported: best effort finds nothing


def test_imjoy_errors_name_file_and_field() -> None:
    with pytest.raises(ManifestError, match=r"^missing_name\.imjoy\.html: config\.name: required"):
        parse_fixture("missing_name.imjoy.html")
    with pytest.raises(
        ManifestError, match=r"^bad_json\.imjoy\.html: config: invalid JSON at line 5 column 1"
    ):
        parse_fixture("bad_json.imjoy.html")
    with pytest.raises(ManifestError, match=r"^python_syntax_error\.imjoy\.html: line 7: SyntaxError"):
        parse_fixture("python_syntax_error.imjoy.html")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("<script>api.log(1)</script>", "x.imjoy.html: config: no <config> block"),
        ('<config lang="json">{"name": "A"}</config>', "x.imjoy.html: config.type: required"),
        ('<config lang="json">[1, 2]</config>', "x.imjoy.html: config: must be an object"),
        ('<config lang="toml">name = "a"</config>', 'x.imjoy.html: config: lang="toml" is not supported'),
        ('<config lang="yaml">name: [a</config>', "x.imjoy.html: config: invalid YAML at line 1"),
        (
            '<config lang="json">{"name": "A", "type": "window"}',
            "x.imjoy.html: <config>: no closing </config>",
        ),
        ('<config>{"name": "A", "type": "window", "id": "a b"}</config>', "x.imjoy.html: config.id: String"),
        (
            '<config>{"name": "A", "type": "window", "tags": [1]}</config>',
            "x.imjoy.html: config.tags.0: Input",
        ),
        (
            '<config>{"name": "***", "type": "window"}</config>',
            "x.imjoy.html: config.name: cannot derive an id",
        ),
    ],
)
def test_imjoy_config_errors(source: str, message: str) -> None:
    with pytest.raises(ManifestError) as info:
        parse_plugin(source, "x.imjoy.html")
    assert str(info.value).startswith(message)


def test_imjoy_type_decides_language() -> None:
    def lang(plugin_type: str, script_lang: str) -> str:
        source = (
            f'<config>{{"name": "A", "type": "{plugin_type}"}}</config><script lang="{script_lang}"></script>'
        )
        return parse_plugin(source, "a.html").lang

    assert lang("web-python", "python") == "python"
    assert lang("iframe", "javascript") == "javascript"
    assert lang("web-python-window", "python") == "python"  # unknown type: the script's language


def test_imjoy_requirements_keyed_by_tag() -> None:
    manifest = parse_fixture("tagged_requirements.imjoy.html")
    assert (manifest.tags, manifest.tag) == (["CPU", "GPU"], "CPU")  # ImJoy's default: the first tag
    assert manifest.requirements == [
        "repo:https://example.org/denoise.git",
        "conda: -c pytorch numpy pytorch=1.0",
    ]
    assert manifest.config["requirements"]["GPU"][1].endswith("cudatoolkit=9.0 pytorch=1.0")  # kept whole
    assert manifest.config["env"]["GPU"].startswith("conda create")
    assert manifest.dependencies == ["someone/Plugins:Dashboard"]
    assert (manifest.api_version, manifest.inputs, manifest.outputs, manifest.runnable) == (
        "0.1.2",
        None,
        None,
        True,
    )
    assert manifest.attachments == ["weights.json", "notes"]
    assert list(ops(manifest)) == ["run"]
    assert not manifest.ops[0].inputs[0].required  # run(my) is given its ctx when called without one


def test_imjoy_ui_fields_and_their_defaults() -> None:
    (steps,) = parse_fixture("tagged_requirements.imjoy.html").ui_fields
    assert (steps.id, steps.label, steps.type, steps.default, steps.minimum) == (
        "steps",
        "training steps",
        "number",
        1000,
        1,
    )
    manifest = parse_fixture("legacy_pyworker.imjoy.html")
    fields = {field.id: field for field in manifest.ui_fields}
    assert list(fields) == ["threshold", "method", "invert", "label"]
    assert (fields["threshold"].default, fields["threshold"].maximum) == (128, 255)  # '128' of a number
    assert (fields["method"].default, fields["method"].options) == ("otsu", ["otsu", "mean"])
    assert fields["invert"].default is False and fields["invert"].label == "invert"
    assert (fields["label"].label, fields["label"].default) == ("and a name", "cells")
    assert manifest.ui == manifest.config["ui"]


def test_imjoy_legacy_modes_and_requirement_strings() -> None:
    manifest = parse_fixture("legacy_pyworker.imjoy.html")
    assert (manifest.type, manifest.lang) == ("native-python", "python")  # "mode": "pyworker"
    assert manifest.config["type"] == "demo/hello-world"
    assert manifest.requirements == ["pip:numpy", "pip:scipy"]  # "pip install -U numpy scipy"
    assert manifest.runnable is False and manifest.tag == "demo"
    assert manifest.inputs == {"type": "object", "properties": {"type": {"enum": ["image/grayscale"]}}}
    worker = parse_fixture("legacy_webworker.imjoy.html")
    assert (worker.id, worker.type, worker.lang) == ("legacy-worker", "web-worker", "javascript")
    assert worker.requirements == ["pip:numpy", "pip:scikit-image"]  # "pip: numpy scikit-image"
    assert worker.dependencies == ["a/b:Fast"]  # keyed by tag, no tags: the first
    assert (worker.tag, worker.ui_fields, worker.ui) == ("", [], "a plain sentence")


@pytest.mark.parametrize(
    ("requirements", "expected"),
    [
        ("numpy scipy", ["numpy", "scipy"]),
        ("conda install -y -c conda-forge tifffile", ["conda:tifffile"]),
        ("pip install numpy && pip install scipy>=1.0", ["pip:numpy", "pip:scipy>=1.0"]),
        ("repo:https://example.org/x.git", ["repo:https://example.org/x.git"]),
        ("", []),
        (None, []),
    ],
)
def test_imjoy_requirement_strings(requirements: str | None, expected: list[str]) -> None:
    config = {"name": "R", "type": "native-python", "requirements": requirements}
    source = f"<config>{json.dumps(config)}</config>"
    assert parse_plugin(source, "r.imjoy.html").requirements == expected


def test_imjoy_requirements_of_an_unknown_tag_or_form() -> None:
    config = {"name": "T", "type": "native-python", "tags": ["a", "b"], "requirements": {"b": ["x"]}}
    assert parse_plugin(f"<config>{json.dumps(config)}</config>", "t.imjoy.html").requirements == []
    config["requirements"] = 3
    with pytest.raises(ManifestError, match=r"^t\.imjoy\.html: config\.requirements: Input"):
        parse_plugin(f"<config>{json.dumps(config)}</config>", "t.imjoy.html")


def test_imjoy_attachments_are_read_by_name() -> None:
    source = (FIXTURES / "tagged_requirements.imjoy.html").read_text()
    assert read_attachments(source, "tagged_requirements.imjoy.html") == {
        "weights.json": '{"layers": [3, 3]}',
        "notes": "plain text",
    }
    assert read_attachments("x = 1", "x.py") == {}


def test_imjoy_ui_literals_that_are_not_fields() -> None:
    ui = [
        "no fields here",
        "broken {id: 'a', type: [}",
        "{type: 'number', placeholder: 3}",  # no id
        {"id": "direct", "type": "number", "placeholder": "2.5"},
        "dup: {id: 'direct', placeholder: 9}",  # the first of an id wins
        7,
    ]
    config = {"name": "U", "type": "native-python", "ui": ui}
    manifest = parse_plugin(f"<config>{json.dumps(config)}</config>", "u.imjoy.html")
    assert [(f.id, f.default) for f in manifest.ui_fields] == [("direct", 2.5)]
    alias = (
        "<config lang='yaml'>\nname: A\ntype: native-python\nui: \"x {id: a, v: &r [1], w: *r}\"\n</config>"
    )
    assert parse_plugin(alias, "a.imjoy.html").ui_fields == []  # YAML aliases are refused in ui too


# --- scopeflow .py format ---------------------------------------------------------------------------------


def test_python_plugin_metadata() -> None:
    manifest = parse_fixture("typed_ops.py")
    assert (manifest.id, manifest.name, manifest.version) == ("typed-ops", "Typed Ops", "1.2.3")
    assert (manifest.type, manifest.lang, manifest.format) == ("python", "python", "python")
    assert manifest.description == "Typed ops."  # the docstring's first line
    assert manifest.docs.startswith("Typed ops.\n\nA fixture")
    assert manifest.requirements == ["numpy", "scipy>=1.10"] and manifest.tags == ["test"]
    assert manifest.config == {}
    assert list(ops(manifest)) == ["smooth", "threshold", "measure", "count", "log"]  # helper is no op


def test_python_ports_from_type_hints() -> None:
    found = ops(parse_fixture("typed_ops.py"))
    smooth = found["smooth"]
    assert (smooth.title, smooth.description) == ("Smooth", "Smooth a volume.")
    image = port(smooth, "image")
    assert (image.kind, image.axes, image.required, image.schema_) == (
        "ndarray",
        "zyx",
        True,
        {"type": "object", "format": "ndarray"},
    )
    sigma = port(smooth, "sigma")
    assert sigma.schema_ == {"type": "number", "minimum": 0, "maximum": 50}
    assert (sigma.default, sigma.required, sigma.description) == (1.5, False, "kernel width")
    mode = port(smooth, "mode")
    assert mode.schema_ == {"enum": ["reflect", "nearest"], "type": "string"}
    assert mode.description == "how edges are handled" and mode.default == "reflect"
    assert port(smooth, "iterations").schema_ == {"type": "integer"}
    assert [(p.name, p.kind, p.axes) for p in smooth.outputs] == [("result", "ndarray", "zyx")]

    threshold = found["threshold"]
    assert threshold.title == "Threshold it"
    assert (port(threshold, "image").kind, port(threshold, "image").axes) == ("ndarray", None)
    level = threshold.inputs[1]
    assert (level.schema_, level.required, level.default) == ({"type": "number"}, False, None)
    assert (port(threshold, "invert").schema_, port(threshold, "invert").default) == (
        {"type": "boolean"},
        False,
    )
    assert [(p.name, p.kind, p.axes, p.schema_.get("type")) for p in threshold.outputs] == [
        ("mask", "ndarray", "yx", "object"),
        ("level", "value", None, "number"),
    ]


def test_python_ports_tables_arrays_and_defaults() -> None:
    found = ops(parse_fixture("typed_ops.py"))
    measure = found["measure"]
    labels = port(measure, "labels")
    assert (labels.kind, labels.dtype) == ("ndarray", ["uint16"])
    names = port(measure, "names")
    assert names.schema_ == {"type": "array", "items": {"type": "string"}} and not names.required  # X | None
    scale = port(measure, "scale")
    assert (scale.default, scale.required) == (None, False)  # a non-literal default
    assert [(p.name, p.kind) for p in measure.outputs] == [("result", "table")]

    count = found["count"]
    assert count.description == "Count things."
    assert port(count, "items").schema_ == {"type": "array"}
    assert port(count, "options").schema_ == {"type": "object"}
    assert (port(count, "anything").schema_, port(count, "anything").required) == ({}, False)
    assert port(count, "flag").schema_ == {"type": "boolean"}  # a quoted annotation
    assert port(count, "sizes").default == [1, 2]  # tuples become JSON lists
    result = count.outputs[0]
    assert (result.name, result.schema_, result.description) == (
        "count",
        {"type": "integer", "minimum": 0},
        "number of items",
    )
    assert found["log"].outputs == []  # -> None


def test_input_schema() -> None:
    smooth = ops(parse_fixture("typed_ops.py"))["smooth"]
    schema = smooth.input_schema()
    assert schema["type"] == "object" and schema["required"] == ["image"]
    assert schema["properties"]["image"] == {"type": "object", "format": "ndarray", "axes": "zyx"}
    assert schema["properties"]["sigma"] == {
        "type": "number",
        "minimum": 0,
        "maximum": 50,
        "description": "kernel width",
        "default": 1.5,
    }


def test_python_plugin_without_plugin_dict_is_named_after_its_file() -> None:
    manifest = parse_plugin(
        "from scopeflow import op\n\n@op\ndef ping() -> str:\n    return 'pong'\n", "pinger.py"
    )
    assert (manifest.id, manifest.name, manifest.description) == ("pinger", "pinger", "")
    long_name = parse_plugin(f'<config>{{"name": "{"Long " * 60}", "type": "window"}}</config>', "a.html")
    assert long_name.id == ("long-" * 26)[:128]
    assert [op.name for op in manifest.ops] == ["ping"]


def test_plugin_dict_without_ops() -> None:
    manifest = parse_plugin('"""Doc."""\nPLUGIN = {"id": "x1", "name": "X", "docs": "# X"}\n', "x.py")
    assert (manifest.id, manifest.ops, manifest.docs, manifest.description) == ("x1", [], "# X", "Doc.")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("import os\n\n\ndef f(:\n    pass\n", "bad.py: line 4: SyntaxError: "),
        ("def helper(x):\n    return x\n", "bad.py: no PLUGIN dict and no @op function"),
        ("PLUGIN = dict(name='a')\n", "bad.py: line 1: PLUGIN: must be a literal"),
        ("PLUGIN = ['a']\n", "bad.py: line 1: PLUGIN: must be a dict literal"),
        ("PLUGIN = {'version': '1'}\n", "bad.py: PLUGIN.name: required"),
        ("PLUGIN = {'name': 'a', 'colour': 'red'}\n", "bad.py: PLUGIN.colour: unknown key"),
        (
            "PLUGIN = {'name': 'a', 'tags': ['x', 2]}\n",
            "bad.py: PLUGIN.tags.1: Input should be a valid string",
        ),
        (
            "PLUGIN = {'name': 'a', 'version': [2]}\n",
            "bad.py: PLUGIN.version: Input should be a valid string",
        ),
        (
            "@op(inputs={'nope': {}})\ndef f(x):\n    pass\n",
            "bad.py: line 2: f: @op(inputs=...): 'nope' is not",
        ),
        (
            "@op(outputs=['a', 'b'])\ndef f() -> int:\n    pass\n",
            "bad.py: line 2: f: @op(outputs=...): 2 names",
        ),
        ("@op(outputs=3)\ndef f():\n    pass\n", "bad.py: line 2: f: @op(outputs=...): must be a list"),
        ("@op(title=TITLE)\ndef f():\n    pass\n", "bad.py: line 1: f: @op(title=...): must be a literal"),
        ("@op(colour='red')\ndef f():\n    pass\n", "bad.py: line 1: f: @op(colour=...): unknown argument"),
        ("@op(f)\ndef f():\n    pass\n", "bad.py: line 1: f: @op: takes keyword arguments only"),
        ("@op\ndef f():\n    pass\n@op\ndef f():\n    pass\n", "bad.py: line 5: f: op defined twice"),
        ("@op(title=3)\ndef f():\n    pass\n", "bad.py: ops.0.title: Input should be a valid string"),
    ],
)
def test_python_errors(source: str, message: str) -> None:
    with pytest.raises(ManifestError) as info:
        parse_plugin(source, "bad.py")
    assert str(info.value).startswith(message), str(info.value)


# --- input checks common to both formats ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "filename", "message"),
    [
        ("", "empty.py", "empty.py: empty file"),
        (b"  \n\t\n", "blank.imjoy.html", "blank.imjoy.html: empty file"),
        (b"PLUGIN = {'name': '\xff'}\n", "latin.py", "latin.py: not UTF-8 text"),
        ("PLUGIN = {}", "plugin.txt", "plugin.txt: unsupported file type"),
        ("#" * (2 * 1024 * 1024 + 1), "huge.py", "huge.py: file too large"),
        ("PLUGIN = {}", "some/dir/plugin.js", "plugin.js: unsupported file type"),
    ],
)
def test_rejected_input(source: str | bytes, filename: str, message: str) -> None:
    with pytest.raises(ManifestError) as info:
        parse_plugin(source, filename)
    assert str(info.value).startswith(message)


def test_sha256_of_the_source_bytes_and_str_and_bytes_agree() -> None:
    data = (FIXTURES / "typed_ops.py").read_bytes()
    from_bytes = parse_plugin(data, "typed_ops.py")
    from_text = parse_plugin(data.decode(), "dir/typed_ops.py", source_url="https://example.org/typed_ops.py")
    assert from_bytes.sha256 == from_text.sha256 == hashlib.sha256(data).hexdigest()
    assert from_text.source_url == "https://example.org/typed_ops.py"


def test_byte_order_mark_is_accepted() -> None:
    manifest = parse_plugin("\ufeffPLUGIN = {'name': 'Bom'}\n".encode(), "bom.py")
    assert manifest.id == "bom"


# --- models -----------------------------------------------------------------------------------------------


def test_json_uses_schema_alias_and_round_trips() -> None:
    manifest = parse_fixture("typed_ops.py")
    data = json.loads(manifest.model_dump_json(by_alias=True))
    assert data["ops"][0]["inputs"][1]["schema"] == {"type": "number", "minimum": 0, "maximum": 50}
    assert "schema_" not in data["ops"][0]["inputs"][1]
    assert PluginManifest.model_validate(data) == manifest


def test_models_forbid_extra_fields_and_describe_every_field() -> None:
    with pytest.raises(ValidationError):
        PortSpec.model_validate({"name": "a", "kind": "value", "required": True, "colour": "red"})
    with pytest.raises(ValidationError):
        PortSpec.model_validate({"name": "a", "kind": "matrix", "required": True})
    model: type[BaseModel]
    for model in (PortSpec, OpSpec, PluginManifest):
        for name, info in model.model_fields.items():
            assert info.description, f"{model.__name__}.{name} has no description"


# --- is_plugin_file ---------------------------------------------------------------------------------------


def test_is_plugin_file(tmp_path: Path) -> None:
    assert is_plugin_file(FIXTURES / "typed_ops.py")
    assert is_plugin_file(FIXTURES / "viewer.imjoy.html")
    assert is_plugin_file(FIXTURES / "bad_json.imjoy.html")  # a plugin, if a broken one
    assert not is_plugin_file(FIXTURES / "helper.py")
    (tmp_path / "page.html").write_text("<html><body>no plugin</body></html>")
    (tmp_path / "plugin.html").write_text('<config lang="json">{}</config>')
    (tmp_path / ".hidden.py").write_text("PLUGIN = {'name': 'h'}")
    (tmp_path / "notes.txt").write_text("PLUGIN = {'name': 'n'}")
    (tmp_path / "annotated.py").write_text("PLUGIN: dict = {'name': 'a'}")
    (tmp_path / "dir.py").mkdir()
    assert not is_plugin_file(tmp_path / "page.html")
    assert is_plugin_file(tmp_path / "plugin.html")
    assert not is_plugin_file(tmp_path / ".hidden.py")
    assert not is_plugin_file(tmp_path / "notes.txt")
    assert is_plugin_file(tmp_path / "annotated.py")
    assert not is_plugin_file(tmp_path / "dir.py")
    assert not is_plugin_file(tmp_path / "missing.py")


# --- the built-in plugins ---------------------------------------------------------------------------------


def test_builtin_hello_plugin() -> None:
    path = BUILTIN_PLUGINS / "hello.imjoy.html"
    manifest = parse_plugin(path.read_bytes(), path.name)
    assert (manifest.id, manifest.type, manifest.lang) == ("hello", "native-python", "python")
    assert manifest.docs.startswith("# Hello")
    found = ops(manifest)
    assert list(found) == ["hello", "add", "fail", "show"]
    assert [(p.name, p.default, p.required) for p in found["hello"].inputs] == [("name", "world", False)]
    assert [p.name for p in found["add"].inputs] == ["a", "b"]


def test_builtin_gaussian_plugin() -> None:
    path = BUILTIN_PLUGINS / "gaussian.py"
    manifest = parse_plugin(path.read_bytes(), path.name)
    assert (manifest.id, manifest.name, manifest.format) == ("gaussian", "Gaussian blur", "python")
    assert manifest.requirements == ["scipy"]
    (blur,) = manifest.ops
    assert (blur.name, blur.title) == ("blur", "Gaussian blur")
    image, sigma = blur.inputs
    assert (image.kind, image.axes, image.required) == ("ndarray", "yx", True)
    assert (sigma.schema_, sigma.default, sigma.required) == (
        {"type": "number", "minimum": 0, "maximum": 50},
        2.0,
        False,
    )
    assert [(p.kind, p.axes) for p in blur.outputs] == [("ndarray", "yx")]


def test_hostile_input_is_refused_cleanly() -> None:
    laughs = '<config lang="yaml">\na: &a ["x", "x"]\nb: &b [*a, *a]\nname: L\ntype: window\n</config>'
    with pytest.raises(ManifestError, match=r"^l\.imjoy\.html: config: YAML aliases are not supported"):
        parse_plugin(laughs, "l.imjoy.html")
    deep = '<config lang="json">' + "[" * 100_000 + "]" * 100_000 + "</config>"
    with pytest.raises(ManifestError, match=r"^d\.imjoy\.html: config: "):
        parse_plugin(deep, "d.imjoy.html")
    with pytest.raises(ManifestError, match=r"^n\.py: "):
        parse_plugin("PLUGIN = {'name': 'n'}\n\x00\n", "n.py")
    with pytest.raises(ManifestError, match=r"^p\.py: "):
        parse_plugin("PLUGIN = " + "(" * 300 + ")" * 300 + "\n", "p.py")


@pytest.mark.parametrize(
    ("filename", "text"),
    [
        ("a.imjoy.html", "<script a" * 200_000),
        (
            "b.imjoy.html",
            '<config lang="json">{"name": "x", "type": "window"}</config>\n<script>\n'
            "api.export(new A());\nclass A {\n" + "f(\n" * 200_000 + "}\n</script>",
        ),
        (
            "c.imjoy.html",
            '<config lang="json">{"name": "x", "type": "window"}</config>\n<script>\n'
            "api.export(new A());\n" + "class A " * 200_000 + "</script>",
        ),
        ("d.py", "PLUGIN" + " " * 1_000_000),
    ],
)
def test_pathological_files_parse_in_linear_time(filename, text):
    import time

    started = time.perf_counter()
    with contextlib.suppress(ManifestError):
        parse_plugin(text, filename)
    assert time.perf_counter() - started < 5, "parsing must not be quadratic in the file size"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("name: big\n" + "k: " + "x" * 70_000 + "\n", "more than 65536"),
        ("name: deep\nv: " + "[" * 5000 + "]" * 5000 + "\n", "nested more than 64"),
        ("name: deep\nv:\n  " + "- " * 500 + "x\n", "nested more than 64"),
        ('{"name": "deep", "v": ' + "[" * 5000 + "]" * 5000 + "}", "nested more than 64"),
    ],
)
def test_huge_or_deep_configs_are_refused_at_once(config: str, message: str) -> None:
    lang = "json" if config.startswith("{") else "yaml"
    text = f'<config lang="{lang}">\n{config}</config>\n<script lang="python">\npass\n</script>\n'
    started = time.monotonic()
    with pytest.raises(ManifestError, match=message):
        parse_plugin(text.encode(), "big.imjoy.html")
    assert time.monotonic() - started < 1  # was 16-79 s on the hub's event loop
