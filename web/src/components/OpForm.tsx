// One op as a form generated from its ports' schemas, with its run state, progress and errors.

import { useEffect, useMemo, useState } from "react";
import { runKey, runOp } from "../actions";
import { formOf } from "../imjoyUi";
import { get, useStore } from "../store";
import type { OpSpec, PluginManifest, PortSpec } from "../types";

type Values = Record<string, unknown>;

export function kindOf(port: PortSpec): "image" | "table" | "number" | "integer" | "boolean" | "enum" | "string" | "json" {
  if (port.kind === "ndarray") return "image";
  if (port.kind === "table") return "table";
  const s = port.schema || {};
  if (Array.isArray(s.enum)) return "enum";
  if (s.type === "integer") return "integer";
  if (s.type === "number") return "number";
  if (s.type === "boolean") return "boolean";
  if (s.type === "string") return "string";
  if (typeof port.default === "number") return "number";
  if (typeof port.default === "boolean") return "boolean";
  if (typeof port.default === "string") return "string";
  return "json";
}

function initial(port: PortSpec, activeImage: string | null): unknown {
  const kind = kindOf(port);
  if (kind === "image") return port.required ? (activeImage ?? "") : ""; // optional images: none until picked
  if (port.default !== null && port.default !== undefined) return kind === "json" ? JSON.stringify(port.default) : port.default;
  if (kind === "boolean") return false;
  if (kind === "enum") return port.schema.enum[0];
  return "";
}

/** Form values → call arguments, or the first problem found (named after the field). */
function parse(op: OpSpec, values: Values): { args: Values } | { problem: string } {
  const args: Values = {};
  for (const port of op.inputs) {
    const kind = kindOf(port);
    const raw = values[port.name];
    const label = port.name;
    if (kind === "number" || kind === "integer") {
      if (raw === "" || raw === null || raw === undefined) {
        if (port.required) return { problem: `${label}: a number is needed` };
        args[port.name] = port.default;
        continue;
      }
      const n = Number(raw);
      if (!Number.isFinite(n)) return { problem: `${label}: "${raw}" is not a number` };
      if (kind === "integer" && !Number.isInteger(n)) return { problem: `${label}: a whole number is needed` };
      const { minimum, maximum } = port.schema;
      if (typeof minimum === "number" && n < minimum) return { problem: `${label}: at least ${minimum}` };
      if (typeof maximum === "number" && n > maximum) return { problem: `${label}: at most ${maximum}` };
      args[port.name] = n;
    } else if (kind === "json") {
      const text = String(raw ?? "").trim();
      if (text === "") {
        if (port.required) return { problem: `${label}: a value is needed` };
        args[port.name] = port.default ?? null;
        continue;
      }
      try {
        args[port.name] = JSON.parse(text);
      } catch {
        args[port.name] = text; // plain words are strings
      }
    } else if ((kind === "image" || kind === "table") && !raw) {
      if (!port.required) {
        args[port.name] = port.default ?? null; // an optional image or table left out
        continue;
      }
      return { problem: `${label}: open ${kind === "image" ? "an image" : "a table"} first (Data panel)` };
    } else {
      args[port.name] = raw;
    }
  }
  return { args };
}

function Field({ port, value, onChange }: { port: PortSpec; value: unknown; onChange: (v: unknown) => void }) {
  const images = useStore((s) => s.images);
  const tables = useStore((s) => s.tables);
  const kind = kindOf(port);
  const id = `field-${port.name}`;
  const hint =
    port.description ||
    (port.axes ? `image with axes ${port.axes}` : kind === "json" ? "a number, text, or JSON ([1, 2], {\"a\": 1})" : "");
  let input;
  if (kind === "image") {
    input = (
      <select id={id} value={String(value ?? "")} onChange={(e) => onChange(e.target.value)} data-testid={`input-${port.name}`}>
        <option value="">{port.required ? "— choose an image —" : "— none —"}</option>
        {images.map((img) => (
          <option key={img.id} value={img.id}>
            {img.name} ({img.shape.join("×")} {img.dtype})
          </option>
        ))}
      </select>
    );
  } else if (kind === "table") {
    input = (
      <select id={id} value={String(value ?? "")} onChange={(e) => onChange(e.target.value)} data-testid={`input-${port.name}`}>
        <option value="">— choose a table —</option>
        {tables.map((t) => (
          <option key={t.id} value={t.id}>
            {t.name}
          </option>
        ))}
      </select>
    );
  } else if (kind === "enum") {
    input = (
      <select id={id} value={String(value)} onChange={(e) => onChange(port.schema.enum.find((o: unknown) => String(o) === e.target.value))} data-testid={`input-${port.name}`}>
        {port.schema.enum.map((o: unknown) => (
          <option key={String(o)} value={String(o)}>
            {String(o)}
          </option>
        ))}
      </select>
    );
  } else if (kind === "boolean") {
    input = <input id={id} type="checkbox" checked={Boolean(value)} onChange={(e) => onChange(e.target.checked)} data-testid={`input-${port.name}`} />;
  } else if (kind === "number" || kind === "integer") {
    const { minimum, maximum } = port.schema;
    const bounded = typeof minimum === "number" && typeof maximum === "number";
    input = (
      <span className="sf-number">
        {bounded && (
          <input
            type="range"
            min={minimum}
            max={maximum}
            step={kind === "integer" ? 1 : (maximum - minimum) / 200}
            value={Number(value) || 0}
            onChange={(e) => onChange(Number(e.target.value))}
            aria-label={`${port.name} slider`}
          />
        )}
        <input
          id={id}
          type="number"
          value={value === null || value === undefined ? "" : String(value)}
          min={minimum}
          max={maximum}
          step={kind === "integer" ? 1 : "any"}
          onChange={(e) => onChange(e.target.value)}
          data-testid={`input-${port.name}`}
        />
      </span>
    );
  } else {
    input = <input id={id} type="text" value={String(value ?? "")} onChange={(e) => onChange(e.target.value)} data-testid={`input-${port.name}`} />;
  }
  return (
    <div className="sf-field">
      <label htmlFor={id}>
        {port.name}
        {port.required && kind !== "image" && kind !== "table" ? " *" : ""}
      </label>
      {input}
      {hint && <div className="sf-hint">{hint}</div>}
    </div>
  );
}

export function OpForm({ plugin, op: called }: { plugin: PluginManifest; op: OpSpec }) {
  const form = useMemo(() => formOf(plugin, called), [plugin, called]); // an ImJoy `run` with a `ui`: its fields fill ctx.config
  const op = form?.op ?? called;
  const activeImage = useStore((s) => s.activeImage);
  const overlay = useStore((s) => s.overlay);
  const run = useStore((s) => s.runs[runKey(plugin.id, op.name)]);
  const progress = useStore((s) => s.progress[plugin.id]);
  const [values, setValues] = useState<Values>(() => Object.fromEntries(op.inputs.map((p) => [p.name, initial(p, activeImage)])));
  const [problem, setProblem] = useState("");
  const [picked, setPicked] = useState<Record<string, boolean>>({});
  // image inputs follow what is in view (a labels input: the overlay) until the user picks one
  useEffect(() => {
    setValues((v) => {
      const next = { ...v };
      for (const p of op.inputs) {
        if (p.kind !== "ndarray" || !p.required || picked[p.name]) continue; // optional ones: the user picks
        const wanted = /label|mask/i.test(p.name) ? (overlay ?? activeImage) : activeImage;
        // not this op's own result: tuning a parameter and pressing Run again must redo the same input
        if (wanted && get().images.find((i) => i.id === wanted)?.source !== `${plugin.id}.${op.name}`) {
          next[p.name] = wanted;
        }
      }
      return next;
    });
  }, [activeImage, overlay, op.inputs, picked, plugin.id, op.name]);
  const running = run?.state === "running";
  const submit = (e: React.FormEvent) => {
    e.preventDefault();
    const parsed = parse(op, values);
    if ("problem" in parsed) {
      setProblem(parsed.problem);
      return;
    }
    setProblem("");
    void runOp(plugin, called, form ? form.wrap(parsed.args) : parsed.args);
  };
  return (
    <form className="sf-op" onSubmit={submit} data-testid={`op-${op.name}`}>
      <div className="sf-op-head">
        <strong>{op.title || op.name}</strong>
        <span className="sf-muted">{op.description}</span>
      </div>
      {op.inputs.map((port) => (
        <Field
          key={port.name}
          port={port}
          value={values[port.name]}
          onChange={(v) => {
            setValues((s) => ({ ...s, [port.name]: v }));
            if (port.kind === "ndarray") setPicked((s) => ({ ...s, [port.name]: true }));
          }}
        />
      ))}
      <div className="sf-op-actions">
        <button type="submit" className="sf-primary" disabled={running} data-testid={`run-${op.name}`}>
          {running ? "Running…" : "Run"}
        </button>
        {running && (
          <progress className="sf-progress" value={progress ?? undefined} max={1} data-testid="run-progress" />
        )}
        {run?.state === "done" && (
          <span className="sf-ok" data-testid="run-done">
            ✓ {run.seconds?.toFixed(2)} s — {run.result}
          </span>
        )}
      </div>
      {problem && <div className="sf-error">{problem}</div>}
      {run?.state === "error" && (
        <div className="sf-error" data-testid="run-error">
          <strong>{(run.error || "").split("\n")[0]}</strong>
          {(run.error || "").includes("\n") && (
            <details>
              <summary>traceback</summary>
              <pre>{run.error}</pre>
            </details>
          )}
        </div>
      )}
    </form>
  );
}
