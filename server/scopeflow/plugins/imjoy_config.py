"""The forms of an ImJoy ``<config>`` that plugins written over the years use, read into plain values.

ImJoy accepted more than one spelling for several fields; :mod:`scopeflow.plugins.manifest` keeps the raw
config and stores what these functions make of it:

- **tags**: ``requirements``, ``dependencies``, ``env``, ``icon`` and ``ui`` may be dicts keyed by tag
  (``{"CPU": [...], "GPU": [...]}``); the user picks one of ``tags`` when installing, by default the first.
- **legacy modes**: before ``type`` named the kind of plugin, ``mode`` did (``"mode": "pyworker"``, while
  ``type`` named the kind of data it worked on).
- **requirements as one string**: a command (``"pip install numpy scipy"``), a prefixed list
  (``"pip: numpy scipy"``) or names separated by spaces.
- **ui**: a string or a list of strings and dicts, holding form fields as JavaScript object literals,
  ``"sigma: {id: 'sigma', type: 'number', min: 0, placeholder: 2}"``; ``placeholder`` is the default value
  the form starts with, which the plugin's ``run`` receives as ``ctx.config[id]``.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "LEGACY_MODES",
    "UiField",
    "choose_tag",
    "for_tag",
    "imjoy_fields",
    "legacy_type",
    "requirement_list",
    "ui_fields",
]

# ImJoy 0.x ``mode`` → today's ``type``
LEGACY_MODES = {
    "pyworker": "native-python",
    "python": "native-python",
    "native-python": "native-python",
    "webworker": "web-worker",
    "web-worker": "web-worker",
    "webpython": "web-python",
    "web-python": "web-python",
    "window": "window",
    "iframe": "iframe",
}
PLUGIN_TYPES = {*LEGACY_MODES.values(), "web-python-window", "rpc-window", "rpc-worker", "functional"}
MAX_UI_FIELDS = 500


class UiField(BaseModel):
    """One field of an ImJoy plugin's ``ui`` form, e.g. ``sigma: {id: 'sigma', type: 'number', min: 0,
    placeholder: 2}``."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Key of the value in `ctx.config` when the plugin's `run` is called.")
    label: str = Field(default="", description="The text before the field in the `ui` string.")
    type: str = Field(default="string", description="ImJoy field type: number, choose, string, ...")
    default: Any = Field(default=None, description="Its `placeholder`: the value the form starts with.")
    options: list[Any] | None = Field(default=None, description="The choices of a `choose` field.")
    minimum: float | None = Field(default=None, description="Its `min`, for a number.")
    maximum: float | None = Field(default=None, description="Its `max`, for a number.")
    extra: dict[str, Any] = Field(default_factory=dict, description="Its other keys, as written.")


def choose_tag(config: dict[str, Any], wanted: str | None = None) -> str:
    """``wanted`` when it is one of the config's ``tags``; else the tag ImJoy chooses when the user picks
    none: the first of ``tags``, else ``""``."""
    tags = config.get("tags")
    if not isinstance(tags, list) or not tags:
        return ""
    if wanted is not None and wanted in tags:
        return wanted
    return tags[0] if isinstance(tags[0], str) else ""


def for_tag(value: Any, tag: str, tags: Any, *, keyed: bool = False) -> Any:
    """``value`` for ``tag`` when it is a dict keyed by ``tags`` (None if it lacks that tag); otherwise
    ``value`` itself. ``keyed``: a dict is always keyed by tags (its first entry serves when none match)."""
    if not isinstance(value, dict) or not value:
        return value
    known = {t for t in tags if isinstance(t, str)} if isinstance(tags, list) else set()
    if known and set(value) <= known:
        return value.get(tag)
    if keyed:
        return value.get(tag, next(iter(value.values())))
    return value


def legacy_type(config: dict[str, Any]) -> str | None:
    """The plugin type of a config: ``type`` when it names a plugin type, else the legacy ``mode``'s."""
    declared, mode = config.get("type"), config.get("mode")
    if isinstance(declared, str) and declared in PLUGIN_TYPES:
        return declared
    if isinstance(mode, str) and mode.lower() in LEGACY_MODES:
        return LEGACY_MODES[mode.lower()]
    return declared if isinstance(declared, str) and declared else None


_INSTALL = re.compile(r"^(?:python3?\s+-m\s+)?(pip3?|conda|mamba)\s+install\b", re.I)
_PREFIXED = re.compile(r"^(pip|conda|repo|cmd|npm):\s*", re.I)


def requirement_list(value: Any) -> Any:
    """Requirements as a list of strings; a single string is read the ways ImJoy read it. Other types are
    returned unchanged (pydantic reports them)."""
    if value is None:
        return []
    if not isinstance(value, str):
        return value
    found: list[str] = []
    for command in re.split(r"&&|;|\n", value):
        command = command.strip()
        if not command:
            continue
        install, prefixed = _INSTALL.match(command), _PREFIXED.match(command)
        if install:
            tool = "conda" if install.group(1).lower() in ("conda", "mamba") else "pip"
            words = _words(command[install.end() :])
            skip_next = False
            for word in words:  # options and their values (-c channel) are not packages
                if skip_next:
                    skip_next = False
                elif word.startswith("-"):
                    skip_next = word in ("-c", "--channel", "-i", "--index-url", "-f", "--find-links")
                else:
                    found.append(f"{tool}:{word}")
        elif prefixed and prefixed.group(1).lower() in ("pip", "conda"):
            found += [f"{prefixed.group(1).lower()}:{w}" for w in _words(command[prefixed.end() :])]
        elif prefixed:
            found.append(command)
        else:
            found += _words(command)
    return found


def _words(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def imjoy_fields(config: dict[str, Any], tag: str | None = None) -> dict[str, Any]:
    """The manifest fields of an ImJoy config beyond those a PLUGIN dict has, with tag-keyed values read
    for ``tag`` (the user's choice; by default the first of ``tags``). The raw config keeps them whole."""
    tags, tag = config.get("tags"), choose_tag(config, tag)
    fields: dict[str, Any] = {"tag": tag}
    for key in ("requirements", "dependencies"):
        value = requirement_list(for_tag(config.get(key), tag, tags, keyed=True))
        fields[key] = [value] if isinstance(value, str) else value  # unknown forms: pydantic reports them
    icon = for_tag(config.get("icon"), tag, tags)
    fields["icon"] = icon or None
    ui = for_tag(config.get("ui"), tag, tags)
    fields["ui"] = ui
    fields["ui_fields"] = [_ui_field(spec) for spec in ui_fields(ui)]
    version = config.get("api_version")
    fields["api_version"] = str(version) if version is not None else None
    fields["inputs"], fields["outputs"] = config.get("inputs"), config.get("outputs")
    runnable = config.get("runnable", True)
    fields["runnable"] = runnable if isinstance(runnable, bool) else runnable not in (None, "false", 0)
    return fields


def _ui_field(spec: dict[str, Any]) -> dict[str, Any]:
    field = {key: spec.get(key) for key in ("id", "label", "type", "default")}
    options = spec.get("options")
    field["options"] = options if isinstance(options, list) else None
    for key, target in (("min", "minimum"), ("max", "maximum")):
        value = spec.get(key)
        field[target] = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    field["extra"] = {k: v for k, v in spec.items() if k not in (*field, "min", "max")}
    return field


# --- ui -----------------------------------------------------------------------------------------------------


def ui_fields(ui: Any) -> list[dict[str, Any]]:
    """The form fields of an ImJoy ``ui`` (a string, or a list of strings and dicts): one dict per field
    with an ``id``, holding ``label``, ``type``, ``default`` (its ``placeholder``) and the other keys."""
    items = ui if isinstance(ui, list) else [ui]
    fields: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, str):
            for label, literal in _literals(item):
                spec = _js_object(literal)
                if isinstance(spec, dict):
                    fields.extend(_field(spec, label))
        elif isinstance(item, dict):
            if "id" in item:
                fields.extend(_field(item, ""))
                continue
            for label, spec in item.items():
                spec = _js_object(spec) if isinstance(spec, str) else spec
                if isinstance(spec, dict):
                    fields.extend(_field(spec, str(label)))
        if len(fields) > MAX_UI_FIELDS:
            break
    unique: dict[str, dict[str, Any]] = {}
    for field in fields[:MAX_UI_FIELDS]:
        unique.setdefault(field["id"], field)
    return list(unique.values())


def _field(spec: dict[str, Any], label: str) -> list[dict[str, Any]]:
    field_id = spec.get("id")
    if not isinstance(field_id, str | int) or isinstance(field_id, bool) or str(field_id) == "":
        return []
    kind = str(spec.get("type") or "string").lower()
    default = spec.get("placeholder", spec.get("value"))
    options = spec.get("options")
    if kind == "number":
        default = _number(default)
    elif kind in ("choose", "select") and default is None and isinstance(options, list) and options:
        default = options[0]
    elif kind in ("checkbox", "boolean", "bool"):
        default = _boolean(default)
    label = re.sub(r"<[^<>]{0,200}>", " ", label)  # html the form showed, e.g. <br>
    label = re.sub(r"\s+", " ", label).strip().rstrip(":").strip()
    extra = {k: v for k, v in spec.items() if k not in ("id", "type", "placeholder", "value")}
    return [{"id": str(field_id), "label": label, "type": kind, "default": default, **extra}]


def _number(value: Any) -> Any:
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return value
        return int(number) if number.is_integer() and "." not in value else number
    return value


def _boolean(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value


def _literals(text: str) -> list[tuple[str, str]]:
    """The top-level ``{...}`` literals of a ui string, each with the text before it (its label)."""
    found: list[tuple[str, str]] = []
    depth, start, label_start, quote = 0, 0, 0, ""
    for i, char in enumerate(text):
        if quote:
            if char == quote and text[i - 1] != "\\":
                quote = ""
        elif char in "'\"" and depth:
            quote = char
        elif char == "{":
            if depth == 0:
                start = i
            depth += 1
        elif char == "}" and depth:
            depth -= 1
            if depth == 0:
                found.append((text[label_start:start], text[start : i + 1]))
                label_start = i + 1
    return found


def _js_object(literal: str) -> Any:
    """A JavaScript object literal (unquoted keys, single quotes) as a Python value; None if unreadable."""
    spaced = []
    quote = ""
    for i, char in enumerate(literal):  # ``{id:'a'}`` → ``{id: 'a'}``: YAML wants a space after the colon
        spaced.append(char)
        if quote:
            if char == quote and literal[i - 1] != "\\":
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == ":" and i + 1 < len(literal) and not literal[i + 1].isspace():
            spaced.append(" ")
    text = "".join(spaced)
    try:
        if any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(text, yaml.SafeLoader)):
            return None
        return yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError):
        return None
