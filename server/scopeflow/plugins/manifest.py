'''Plugin files → :class:`PluginManifest`, statically: plugin code is parsed, never imported or run.

**ImJoy** files (``*.imjoy.html``, ``*.html``) load unchanged: a ``<config lang="json">`` (or ``"yaml"``)
block with at least ``name`` and ``type``, a ``<script lang="python">`` (or ``"javascript"``) block, and
optional ``<window>``, ``<style>``, ``<docs>``, ``<attachment>`` blocks. The ops are the public methods (all
but ``setup``) of the class given to ``api.export(...)``.

**scopeflow Python** plugins (``*.py``) are plain modules::

    """Gaussian blur.

    The module docstring is the plugin's markdown documentation."""
    from scopeflow import op, Image

    PLUGIN = {"id": "gaussian", "name": "Gaussian blur", "version": "0.1.0", "requirements": ["scipy"]}

    @op(inputs={"sigma": {"minimum": 0, "maximum": 50, "description": "kernel width in pixels"}})
    def blur(image: Image["yx"], sigma: float = 2.0) -> Image["yx"]:
        """Smooth the image."""

- ``PLUGIN``: a dict literal with ``name`` (required), ``id`` (default: from the name), ``version``,
  ``description`` (default: the docstring's first line), ``tags``, ``requirements`` (pip names), ``icon`` and
  ``docs`` (default: the module docstring). Without it, a module with ops is named after its file.
- Ops: module-level functions (``def``/``async def``) decorated with ``@op``, ``@op(...)``, ``@scopeflow.op``
  or ``@scopeflow.op(...)``. Decorator arguments are literals: ``title``, ``description`` (default: the
  docstring), ``inputs`` (parameter → JSON-schema fragment merged over the annotation's; it may also hold
  ``description``, ``default``, ``axes``, ``dtype``), ``outputs`` (names, or name → fragment; default
  ``["result"]``).
- Parameters are the inputs; one with a default or annotated ``X | None`` is optional. ``int``, ``float``,
  ``str``, ``bool``, ``Literal[...]``, ``list[X]``, ``dict`` are JSON values; ``Image``, ``Image["yx"]`` (with
  axes), ``np.ndarray``, ``NDArray[np.uint8]`` are ``ndarray`` ports; ``Table`` is a ``table`` port; other
  annotations accept any value. ``-> tuple[A, B]`` declares two outputs, ``-> None`` none, others one.
'''

from __future__ import annotations

import ast
import hashlib
import json
import re
import textwrap
import threading
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scopeflow._util import ID
from scopeflow.plugins.cases import MAX_CASES, VerifyCase
from scopeflow.plugins.imjoy_config import UiField, imjoy_fields, legacy_type
from scopeflow.plugins.javascript_ops import javascript_ops, op_title
from scopeflow.plugins.ports import (
    PortError,
    dotted,
    literal_value,
    make_port,
    merge_fragment,
    output_ports,
    read_fragments,
    read_hint,
)

__all__ = [
    "ManifestError",
    "OpSpec",
    "PluginManifest",
    "PortSpec",
    "UiField",
    "is_plugin_file",
    "parse_plugin",
    "read_attachments",
]

MAX_BYTES = 2 * 1024 * 1024
ID_PATTERN = rf"^{ID}$"
PYTHON_TYPES = {"native-python", "web-python", "python"}
JAVASCRIPT_TYPES = {"window", "web-worker", "iframe"}


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class PortSpec(_Spec):
    """One input or output of an op."""

    name: str = Field(description="Parameter name of an input, or name of an output.")
    kind: Literal["value", "ndarray", "table"] = Field(description="JSON value, n-d array or table.")
    schema_: dict[str, Any] = Field(
        default_factory=dict, alias="schema", description="JSON schema ({}: any)."
    )
    axes: str | None = Field(default=None, description="Axes of an ndarray port, e.g. `yx`, `cyx`, `zyx`.")
    dtype: list[str] | None = Field(
        default=None, description="Allowed dtypes of an ndarray port (unset: any)."
    )
    description: str = Field(default="", description="Help text shown beside the port.")
    default: Any = Field(default=None, description="Value of an optional input when none is given.")
    required: bool = Field(description="Inputs: the caller must give it. Outputs: always produced.")

    def json_schema(self) -> dict[str, Any]:
        """This port as a property of a JSON-schema object, with its description and default."""
        tagged = {"type": "object", "format": self.kind} if self.kind != "value" else {}
        extra = {"axes": self.axes, "dtype": self.dtype, "description": self.description or None}
        extra["default"] = None if self.required else self.default
        return tagged | self.schema_ | {key: value for key, value in extra.items() if value is not None}


class OpSpec(_Spec):
    """An operation a plugin offers: a function or method with typed inputs and outputs."""

    name: str = Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="The function or method called over RPC."
    )
    title: str = Field(description="Human-readable name shown in the UI.")
    description: str = Field(default="", description="What the op does (markdown).")
    inputs: list[PortSpec] = Field(default_factory=list, description="Parameters, in call order.")
    outputs: list[PortSpec] = Field(default_factory=list, description="Returned values (several: a tuple).")

    def input_schema(self) -> dict[str, Any]:
        """A JSON-schema object of all inputs (ndarray and table ports as tagged objects)."""
        return {
            "type": "object",
            "properties": {port.name: port.json_schema() for port in self.inputs},
            "required": [port.name for port in self.inputs if port.required],
        }


class PluginManifest(_Spec):
    """Everything the hub knows about a plugin file without running it."""

    id: str = Field(pattern=ID_PATTERN, description="Unique id: the declared `id`, else derived from name.")
    name: str = Field(min_length=1, description="Display name.")
    version: str = Field(default="0.1.0", description="The plugin's version.")
    type: str = Field(description="ImJoy type (native-python, window, web-worker, ...) or python.")
    lang: Literal["python", "javascript"] = Field(description="Language of the plugin code.")
    format: Literal["imjoy-html", "python"] = Field(description="File format the manifest was read from.")
    description: str = Field(default="", description="One-line summary.")
    tags: list[str] = Field(default_factory=list, description="Keywords for search and grouping.")
    docs: str = Field(default="", description="Markdown docs: the <docs> block or the module docstring.")
    requirements: list[str] = Field(default_factory=list, description="Packages it needs, as written.")
    ops: list[OpSpec] = Field(default_factory=list, description="The operations the plugin exports.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="Hex sha256 of the source file's bytes.")
    source_url: str | None = Field(default=None, description="URL it was installed from, if any.")
    path: str | None = Field(default=None, description="Local file it was read from, if any.")
    icon: str | None = Field(default=None, description="An emoji, an icon name or an image URL.")
    config: dict[str, Any] = Field(default_factory=dict, description="The raw ImJoy config ({} for .py).")
    tag: str = Field(
        default="",
        description="The ImJoy tag in use (the user's choice, by default the first of `tags`; '' if none): "
        "fields keyed by tag use it.",
    )
    api_version: str | None = Field(default=None, description="ImJoy api version the plugin is written for.")
    ui: Any = Field(default=None, description="The ImJoy `ui` string (or list) of the plugin's form.")
    ui_fields: list[UiField] = Field(default_factory=list, description="The form fields read from `ui`.")
    inputs: Any = Field(default=None, description="ImJoy `inputs`: JSON schema of what `run` accepts.")
    outputs: Any = Field(default=None, description="ImJoy `outputs`: JSON schema of what `run` returns.")
    runnable: bool = Field(default=True, description="ImJoy `runnable`: whether the user may run it.")
    dependencies: list[str] = Field(
        default_factory=list, description="Other plugins it needs, as URLs or names (ImJoy `dependencies`)."
    )
    attachments: list[str] = Field(
        default_factory=list, description="Names of its <attachment> blocks (`api.getAttachment(name)`)."
    )
    tests: list[VerifyCase] = Field(
        default_factory=list, max_length=MAX_CASES, description="Test cases *Verify* runs (`tests`)."
    )


class ManifestError(ValueError):
    """Not a valid plugin file; the message starts with the file name and names the field."""


def parse_plugin(
    source: str | bytes,
    filename: str,
    *,
    source_url: str | None = None,
    path: str | None = None,
    tag: str | None = None,
) -> PluginManifest:
    """Parse a plugin file's content (the format follows the file name's suffix) into a manifest; an
    ImJoy plugin's fields keyed by tag are read for ``tag`` when it is one of its ``tags``."""
    name = PurePosixPath(filename.replace("\\", "/")).name or filename
    if not name.lower().endswith((".html", ".py")):
        raise ManifestError(f"{name}: unsupported file type (expected .imjoy.html, .html or .py)")
    try:
        data = source.encode("utf-8") if isinstance(source, str) else bytes(source)
        text = data.decode("utf-8")
    except UnicodeError as exc:
        raise ManifestError(f"{name}: not UTF-8 text ({exc})") from None
    if len(data) > MAX_BYTES:
        raise ManifestError(f"{name}: file too large ({len(data)} bytes; the limit is {MAX_BYTES})")
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise ManifestError(f"{name}: empty file")
    imjoy = name.lower().endswith(".html")
    try:
        fields = _parse_imjoy(text, name, tag) if imjoy else _parse_python(text, name)
    except PortError as exc:
        raise ManifestError(str(exc)) from None
    try:
        return PluginManifest(
            **fields, sha256=hashlib.sha256(data).hexdigest(), source_url=source_url, path=path
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = [str(part) for part in error["loc"]]
        section = ["config" if imjoy else "PLUGIN"] if loc and loc[0] != "ops" else []
        raise ManifestError(f"{name}: {'.'.join(section + loc)}: {error['msg']}") from None


_PY_DECLARATION = re.compile(
    r"^(?:PLUGIN[ \t]{0,80}(?::[^=\n]{0,500})?=\s{0,80}\{|@(?:scopeflow\.)?op\b)", re.M
)


def python_code(source: str, filename: str) -> str:
    """The Python a plugin kernel runs: the whole ``.py`` file, or the ``<script lang="python">`` block of an
    ``.imjoy.html`` file padded with blank lines so that tracebacks give the line numbers of the file."""
    if not filename.endswith(".html"):
        return source
    script = _blocks(source, filename).get("script")
    if script is None or script.attrs.get("lang", "").lower() != "python":
        raise ManifestError(f'{filename}: script: no <script lang="python"> block')
    return "\n" * (script.line - 1) + script.content


def is_plugin_file(path: str | Path) -> bool:
    """Cheap test for directory scans: a plugin suffix, and for ``.py``/``.html`` a plugin declaration."""
    file = Path(path)
    lower = file.name.lower()
    if file.name.startswith(".") or not lower.endswith((".html", ".py")) or not file.is_file():
        return False
    try:
        if lower.endswith(".imjoy.html") or file.stat().st_size > MAX_BYTES:
            return True  # parse_plugin reports what is wrong with it
        text = file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return "<config" in text if lower.endswith(".html") else bool(_PY_DECLARATION.search(text))


# Every pattern below bounds its repetitions, so that no input makes a search quadratic.
# --- ImJoy .imjoy.html -------------------------------------------------------------------------------------

_TAGS = "config|script|docs|window|style|attachment"
_OPEN = re.compile(rf"<({_TAGS})\b([^<>]{{0,2000}})>", re.I)
_OPEN_AT_LINE_START = re.compile(rf"^[ \t]{{0,200}}<(?:{_TAGS})\b[^<>]{{0,2000}}>", re.I | re.M)
_ATTR = re.compile(r"""([\w-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")


@dataclass
class _Block:
    attrs: dict[str, str]
    content: str
    line: int  # line of the file where the content starts


def _blocks(text: str, name: str) -> dict[str, _Block]:
    """The first top-level block of each tag. A block ends at the last closing tag before the next block
    that starts a line, so code may hold ``<`` or ``"</script>"`` and a ``<window>`` ``<script>`` tags."""
    blocks: dict[str, _Block] = {}
    pos = 0
    while opener := _OPEN.search(text, pos):
        tag, start = opener.group(1).lower(), opener.end()
        close = re.compile(rf"</{tag}\s*>", re.I)
        end = close.search(text, start)
        if end is None:
            raise ManifestError(f"{name}: <{tag}>: no closing </{tag}>")
        following = _OPEN_AT_LINE_START.search(text, end.end())
        later = list(close.finditer(text, end.end(), following.start() if following else len(text)))
        end = later[-1] if later else end
        attrs = {k.lower(): a or b or c for k, a, b, c in _ATTR.findall(opener.group(2))}
        key = f"attachment:{attrs.get('name', '')}" if tag == "attachment" else tag
        blocks.setdefault(key, _Block(attrs, text[start : end.start()], text.count("\n", 0, start) + 1))
        pos = end.end()
    return blocks


def read_attachments(text: str, filename: str) -> dict[str, str]:
    """The ``<attachment name="...">`` blocks of an ImJoy file: name → content (ImJoy's
    ``api.getAttachment``). The content is as written, without its first and last line breaks."""
    if not filename.lower().endswith(".html"):
        return {}
    return {
        key.removeprefix("attachment:"): re.sub(r"^\r?\n|\r?\n[ \t]*$", "", block.content)
        for key, block in _blocks(text, filename).items()
        if key.startswith("attachment:")
    }


def _parse_imjoy(text: str, name: str, tag: str | None = None) -> dict[str, Any]:
    blocks = _blocks(text, name)
    if "config" not in blocks:
        raise ManifestError(f"{name}: config: no <config> block")
    config = _load_config(blocks["config"], name)
    common = _common_fields(config, name, "config") | imjoy_fields(config, tag)
    common["attachments"] = [k.removeprefix("attachment:") for k in blocks if k.startswith("attachment:")]
    plugin_type = legacy_type(config)
    if not plugin_type:
        raise ManifestError(f"{name}: config.type: required (e.g. native-python, window, web-worker)")
    script, docs = blocks.get("script"), blocks.get("docs")
    if plugin_type in PYTHON_TYPES or plugin_type in JAVASCRIPT_TYPES:
        lang = "python" if plugin_type in PYTHON_TYPES else "javascript"
    else:  # other ImJoy types (web-python-window, rpc-worker, ...): the script's language decides
        lang = "python" if script and script.attrs.get("lang", "").lower() == "python" else "javascript"
    ops = []
    if script:
        ops = _imjoy_python_ops(script, name) if lang == "python" else javascript_ops(script.content)
    for op in ops:  # ImJoy's run(ctx) gets its ctx from the hub when none is given (ctx.config: the ui form)
        if op["name"] == "run" and op["inputs"]:
            op["inputs"][0] |= {"required": False, "description": "ImJoy context: config, data"}
    docs_text = textwrap.dedent(docs.content).strip() if docs else ""
    return common | {"type": plugin_type, "lang": lang, "format": "imjoy-html", "docs": docs_text, "ops": ops}


MAX_CONFIG = 64 * 1024  # characters of a <config> block: real ones are a few hundred
MAX_DEPTH = 64  # nesting of a config's lists and maps


def _too_deep(text: str) -> bool:
    """Whether brackets or YAML block lists nest past MAX_DEPTH (checked before any parser recurses)."""
    depth = 0
    for char in text:
        if char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif char in "]}":
            depth = max(0, depth - 1)
    return any(len(line) - len(line.lstrip(" -")) > 2 * MAX_DEPTH for line in text.splitlines())


def _load_config(block: _Block, name: str) -> dict[str, Any]:
    lang = block.attrs.get("lang", "json").lower()
    if len(block.content) > MAX_CONFIG:
        raise ManifestError(f"{name}: config: {len(block.content)} characters, more than {MAX_CONFIG}")
    if _too_deep(block.content):
        raise ManifestError(f"{name}: config: nested more than {MAX_DEPTH} levels deep")
    try:
        if lang in ("yaml", "yml"):
            loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's, when there: far faster
            events = yaml.parse(block.content, loader)
            if any(isinstance(event, yaml.AliasEvent) for event in events):
                raise ManifestError(f"{name}: config: YAML aliases are not supported")  # no billion laughs
            config = yaml.load(block.content, loader)
        elif lang == "json":
            config = json.loads(block.content)
        else:
            raise ManifestError(f'{name}: config: lang="{lang}" is not supported (json or yaml)')
    except json.JSONDecodeError as exc:
        where = f"line {block.line + exc.lineno - 1} column {exc.colno}"
        raise ManifestError(f"{name}: config: invalid JSON at {where}: {exc.msg}") from None
    except yaml.YAMLError as exc:
        error: Exception = exc
        try:
            yaml.safe_load(block.content)  # the pure-Python parser says where, as users know it
        except yaml.YAMLError as again:
            error = again
        mark = getattr(error, "problem_mark", None)
        where = f" at line {block.line + mark.line}" if mark is not None else ""
        raise ManifestError(f"{name}: config: invalid YAML{where}: {error}") from None
    except RecursionError:
        raise ManifestError(f"{name}: config: nested too deeply") from None
    if not isinstance(config, dict):
        raise ManifestError(f"{name}: config: must be an object, not {type(config).__name__}")
    return dict(json.loads(json.dumps(config, default=str)))  # YAML dates and the like become strings


def _imjoy_python_ops(script: _Block, name: str) -> list[dict[str, Any]]:
    tree = _parse_python_source(textwrap.dedent(script.content), name, script.line - 1)
    classes = {node.name: node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and dotted(node.func) == "api.export" and node.args:
            target = node.args[0]
            cls = classes.get(dotted(target.func if isinstance(target, ast.Call) else target) or "")
            if cls is not None:
                return [
                    _op(method, name, {}, is_method=True)
                    for method in cls.body
                    if isinstance(method, ast.FunctionDef | ast.AsyncFunctionDef)
                    and not method.name.startswith("_")
                    and method.name != "setup"
                ]
    return []


# --- scopeflow .py -----------------------------------------------------------------------------------------

_PLUGIN_KEYS = ("id", "name", "version", "description", "tags", "requirements", "icon", "docs", "tests")
_OP_ARGUMENTS = ("title", "description", "inputs", "outputs", "long_running")


def _parse_python(text: str, name: str) -> dict[str, Any]:
    tree = _parse_python_source(text, name)
    docstring = ast.get_docstring(tree) or ""
    plugin: Any = None
    ops: list[dict[str, Any]] = []
    for node in tree.body:
        if (isinstance(node, ast.Assign) and any(dotted(t) == "PLUGIN" for t in node.targets)) or (
            isinstance(node, ast.AnnAssign) and dotted(node.target) == "PLUGIN" and node.value
        ):
            assert node.value is not None
            plugin = literal_value(node.value, f"{name}: line {node.lineno}: PLUGIN")
            if not isinstance(plugin, dict):
                raise ManifestError(f"{name}: line {node.lineno}: PLUGIN: must be a dict literal")
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            arguments = _op_decorator(node, name)
            if arguments is not None and any(op["name"] == node.name for op in ops):
                raise ManifestError(f"{name}: line {node.lineno}: {node.name}: op defined twice")
            if arguments is not None:
                ops.append(_op(node, name, arguments, is_method=False))
    if plugin is None and not ops:
        raise ManifestError(f"{name}: no PLUGIN dict and no @op function")
    plugin = plugin if plugin is not None else {"name": name.removesuffix(".py")}
    for key in plugin:
        if key not in _PLUGIN_KEYS:
            raise ManifestError(f"{name}: PLUGIN.{key}: unknown key (known: {', '.join(_PLUGIN_KEYS)})")
    common = _common_fields(plugin, name, "PLUGIN") | {"config": {}}
    common["description"] = common["description"] or (docstring.strip().splitlines() or [""])[0].strip()
    docs = plugin.get("docs") or docstring
    return common | {"type": "python", "lang": "python", "format": "python", "docs": docs, "ops": ops}


def _op_decorator(function: ast.FunctionDef | ast.AsyncFunctionDef, name: str) -> dict[str, Any] | None:
    """The literal arguments of the function's ``@op`` decorator; None if it has none."""
    for decorator in function.decorator_list:
        call = decorator if isinstance(decorator, ast.Call) else None
        if dotted(call.func if call else decorator) not in ("op", "scopeflow.op"):
            continue
        where = f"{name}: line {decorator.lineno}: {function.name}: @op"
        if call and call.args:
            raise ManifestError(f"{where}: takes keyword arguments only")
        arguments: dict[str, Any] = {}
        for keyword in call.keywords if call else []:
            if keyword.arg not in _OP_ARGUMENTS:
                raise ManifestError(f"{where}({keyword.arg}=...): unknown argument")
            arguments[keyword.arg] = literal_value(keyword.value, f"{where}({keyword.arg}=...)")
        if not isinstance(arguments.get("long_running", False), bool):
            raise ManifestError(f"{where}(long_running=...): must be True or False")
        return arguments
    return None


# --- ops, ports and type hints (both formats) --------------------------------------------------------------


def _op(
    function: ast.FunctionDef | ast.AsyncFunctionDef, name: str, arguments: dict[str, Any], *, is_method: bool
) -> dict[str, Any]:
    where = f"{name}: line {function.lineno}: {function.name}"
    args = function.args
    positional = args.posonlyargs + args.args
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults))
    params = list(zip(positional, [*defaults, *args.defaults], strict=True))
    if is_method and not any(dotted(d) == "staticmethod" for d in function.decorator_list):
        params = params[1:]
    params += list(zip(args.kwonlyargs, args.kw_defaults, strict=True))
    overrides = read_fragments(arguments.get("inputs"), f"{where}: @op(inputs=...)")
    for unknown in sorted(set(overrides) - {arg.arg for arg, _ in params}):
        raise ManifestError(f"{where}: @op(inputs=...): {unknown!r} is not a parameter")
    inputs = []
    for arg, default in params:
        hint = read_hint(arg.annotation)
        value = None if default is None else literal_value(default, "", strict=False)
        inputs.append(
            merge_fragment(
                make_port(arg.arg, hint, value, default is None and not hint.optional), overrides.get(arg.arg)
            )
        )
    return {
        "name": function.name,
        "title": arguments.get("title") or op_title(function.name),
        "description": arguments.get("description") or ast.get_docstring(function) or "",
        "inputs": inputs,
        "outputs": output_ports(function.returns, arguments.get("outputs"), f"{where}: @op(outputs=...)"),
    }


# --- small helpers -----------------------------------------------------------------------------------------


# CPython 3.11-3.12 may fail ast.parse in two threads at once ("SystemError: AST constructor recursion
# depth mismatch", a CPython bug); scans run in worker threads, so parses take turns
_AST_LOCK = threading.Lock()


def _parse_python_source(code: str, name: str, line_offset: int = 0) -> ast.Module:
    try:
        with _AST_LOCK:
            return ast.parse(code)
    except SyntaxError as exc:
        raise ManifestError(
            f"{name}: line {(exc.lineno or 1) + line_offset}: SyntaxError: {exc.msg}"
        ) from None
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, absurd nesting
        raise ManifestError(f"{name}: SyntaxError: {exc or type(exc).__name__}") from None


def _common_fields(declared: dict[str, Any], name: str, section: str) -> dict[str, Any]:
    """Manifest fields from an ImJoy config or a PLUGIN dict; pydantic checks their types afterwards."""
    plugin_name, version = declared.get("name"), declared.get("version")
    if not isinstance(plugin_name, str) or not plugin_name.strip():
        raise ManifestError(f"{name}: {section}.name: required (a non-empty string)")
    plugin_id = declared.get("id")
    if plugin_id is None:  # derived from the name
        plugin_id = re.sub(r"\s+", "-", plugin_name.strip().lower())
        plugin_id = re.sub(r"[^a-z0-9._-]", "", plugin_id).lstrip("._-")[:128]
        if not plugin_id:
            raise ManifestError(f"{name}: {section}.name: cannot derive an id from {plugin_name!r}")
    fields = {"id": plugin_id, "name": plugin_name.strip(), "description": declared.get("description") or ""}
    fields["version"] = str(version) if isinstance(version, int | float) else (version or "0.1.0")
    for key in ("tags", "requirements"):  # ImJoy allows one string for a list of strings
        value = declared.get(key)
        fields[key] = ([value] if value.strip() else []) if isinstance(value, str) else (value or [])
    extra = {"icon": declared.get("icon") or None, "config": declared, "tests": declared.get("tests") or []}
    return fields | extra
