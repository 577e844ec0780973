import { describe, expect, it } from "vitest";
import { formOf, uiPort } from "./imjoyUi";
import type { OpSpec, PluginManifest, UiField } from "./types";

const field = (over: Partial<UiField>): UiField => ({
  id: "x",
  label: "",
  type: "string",
  default: null,
  options: null,
  minimum: null,
  maximum: null,
  extra: {},
  ...over,
});

describe("an ImJoy ui form", () => {
  it("turns numbers, choices, checkboxes and text into typed inputs", () => {
    const sigma = uiPort(field({ id: "sigma", label: "Sigma<br>", type: "number", default: "2", minimum: 0, maximum: 10 }));
    expect(sigma.schema).toEqual({ type: "number", minimum: 0, maximum: 10 });
    expect(sigma.default).toBe(2); // ImJoy placeholders are often strings
    expect(sigma.description).toBe("Sigma");
    const method = uiPort(field({ id: "method", type: "choose", options: ["gaussian", "median"] }));
    expect(method.schema.enum).toEqual(["gaussian", "median"]);
    expect(method.default).toBe("gaussian"); // no placeholder: the first option, as ImJoy does
    expect(uiPort(field({ type: "checkbox", default: "true" })).default).toBe(true);
    expect(uiPort(field({ type: "number", default: "abc" })).default).toBeNull();
    expect(uiPort(field({ default: 3 })).default).toBe("3");
  });

  it("fills ctx.config of run, and leaves other ops alone", () => {
    const run: OpSpec = { name: "run", title: "Run", description: "", inputs: [{ name: "my", kind: "value", schema: {}, axes: null, dtype: null, description: "", default: null, required: false }], outputs: [] };
    const plugin = { ui_fields: [field({ id: "steps", type: "number", default: 3 })] } as unknown as PluginManifest;
    const form = formOf(plugin, run);
    expect(form?.op.inputs.map((p) => p.name)).toEqual(["steps"]);
    expect(form?.wrap({ steps: 5 })).toEqual({ my: { config: { steps: 5 }, data: {} } });
    expect(formOf(plugin, { ...run, name: "count" })).toBeNull();
    expect(formOf({ ui_fields: [] } as unknown as PluginManifest, run)).toBeNull();
  });
});
