// An ImJoy plugin's `ui` form: its fields become the inputs of the plugin's `run`, whose `ctx.config` they fill.

import type { OpSpec, PluginManifest, PortSpec, UiField } from "./types";

const NUMBER = new Set(["number", "float", "int", "integer", "range", "slider"]);
const BOOLEAN = new Set(["checkbox", "bool", "boolean", "toggle"]);

/** One form field as an input port: numbers with their bounds, choices as a list, the rest as text. */
export function uiPort(field: UiField): PortSpec {
  const type = field.type.toLowerCase();
  const schema: Record<string, unknown> = {};
  let value: unknown = field.default;
  if (type === "choose" && field.options?.length) {
    schema.enum = field.options;
    if (!field.options.some((o) => String(o) === String(value))) value = field.options[0];
  } else if (NUMBER.has(type)) {
    schema.type = type.startsWith("int") ? "integer" : "number";
    if (field.minimum !== null && field.minimum !== undefined) schema.minimum = field.minimum;
    if (field.maximum !== null && field.maximum !== undefined) schema.maximum = field.maximum;
    const n = Number(value);
    value = value === null || value === undefined || value === "" || !Number.isFinite(n) ? null : n;
  } else if (BOOLEAN.has(type)) {
    schema.type = "boolean";
    value = value === true || value === "true";
  } else {
    schema.type = "string";
    value = value === null || value === undefined ? "" : String(value);
  }
  const label = field.label.replace(/<[^>]*>/g, "").trim();
  return {
    name: field.id,
    kind: "value",
    schema,
    axes: null,
    dtype: null,
    description: label && label !== field.id ? label : "",
    default: value,
    required: false,
  };
}

/** The op the app shows for `op`: an ImJoy `run` with a `ui` gets the form's fields as its inputs. */
export function formOf(plugin: PluginManifest, op: OpSpec): { op: OpSpec; wrap: (values: Record<string, unknown>) => Record<string, unknown> } | null {
  if (op.name !== "run" || !plugin.ui_fields.length || !op.inputs.length) return null;
  const ctx = op.inputs[0].name;
  return {
    op: { ...op, inputs: plugin.ui_fields.map(uiPort) },
    wrap: (values) => ({ [ctx]: { config: values, data: {} } }),
  };
}
