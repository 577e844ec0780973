// The workflow document (docs/workflows.md, format version 1) and the rules the editor shares with the hub:
// which ports may be connected, and how the editor's graph becomes a document and back.

import type { PluginPin as Pin, WorkflowDoc as Generated } from "../generated/workflow";
import type { OpSpec, PluginManifest, PortSpec } from "../types";

export type PortRef = [string, string];

// The document's shapes are generated from the hub's model (server/scopeflow/workflows/document.py, through
// workflow.schema.json) by `npm run gen-types`: change them there, never here.
export type {
  Edge as DocEdge,
  Node as DocNode,
  PluginPin as Pin,
  Position,
  WorkflowInput as DocInput,
  WorkflowOutput as DocOutput,
} from "../generated/workflow";

/** A workflow document as the editor holds it: every list and table present (as checkShape makes it, and as
 * the hub writes it); the generated type is what a file may hold, where these may be left out. */
export type WorkflowDoc = Generated & Required<Pick<Generated, "title" | "inputs" | "nodes" | "edges" | "outputs" | "plugins">>;

export interface PinState {
  plugin: string;
  /** environment: the same file, but its requirements resolve to other package versions on this hub */
  state: "ok" | "changed" | "missing" | "environment";
  pinned: Pin;
  current: Partial<Pin> | null;
  changes?: string[];
}

export const FORMAT = "scopeflow.workflow";
export const NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;

/** A port as the editor knows it: what the hub declares, or a workflow input's own declaration. */
export interface PortInfo {
  name: string;
  kind: "ndarray" | "table" | "value";
  axes: string | null;
  dtype: string[] | null;
  schema: Record<string, unknown>;
  required: boolean;
  /** what to call its node in messages ("blur", "input image") */
  owner: string;
  /** a workflow input: it gives what it declares, never "anything" (even a value input has a kind) */
  workflowInput?: boolean;
}

export function dtypes(value: unknown): string[] | null {
  if (Array.isArray(value)) return value.length ? value.map(String) : null;
  if (typeof value === "string" && value) return value.split(/[,\s|]+/).filter(Boolean);
  return null;
}

export function portInfo(port: PortSpec, owner: string): PortInfo {
  return {
    name: port.name,
    kind: port.kind,
    axes: port.axes || null,
    dtype: dtypes(port.dtype),
    schema: port.schema || {},
    required: port.required,
    owner,
  };
}

/** A workflow input as the source of an edge (its messages call it "input <name>"). */
export function inputPortInfo(input: { name: string; kind: PortInfo["kind"]; axes?: string | null; dtype?: unknown }): PortInfo {
  return {
    name: input.name,
    kind: input.kind,
    axes: input.axes || null,
    dtype: dtypes(input.dtype),
    schema: {},
    required: true,
    owner: `input ${input.name}`,
    workflowInput: true,
  };
}

/** An op's value port without a schema takes and gives anything (a workflow input never does). */
export function isAny(port: PortInfo): boolean {
  return !port.workflowInput && port.kind === "value" && Object.keys(port.schema).length === 0;
}

/** Why `source` cannot feed `target`, or null when it can: the rule of the hub's validator (compatible() in
 * server/scopeflow/workflows/document.py); both run the cases of tests/contracts/port-cases.json. */
export function incompatibility(source: PortInfo, target: PortInfo): string | null {
  if (isAny(source) || isAny(target)) return null;
  if (source.kind !== target.kind) {
    return `${source.owner} gives ${kindWord(source.kind)}, ${target.owner} expects ${kindWord(target.kind)}`;
  }
  if (source.axes && target.axes && source.axes !== target.axes) {
    return `${source.owner} gives ${source.axes}, ${target.owner} expects ${target.axes}`;
  }
  if (source.dtype && target.dtype) {
    const foreign = source.dtype.filter((d) => !target.dtype!.includes(d));
    if (foreign.length) {
      return `${source.owner} gives ${foreign.join(", ")}, ${target.owner} expects ${target.dtype.join(" or ")}`;
    }
  }
  return null;
}

function kindWord(kind: string): string {
  return kind === "ndarray" ? "an array" : kind === "table" ? "a table" : "a value";
}

export function findOp(plugins: PluginManifest[], plugin: string, op: string): { plugin: PluginManifest; op: OpSpec } | null {
  const p = plugins.find((x) => x.id === plugin);
  const o = p?.ops.find((x) => x.name === op);
  return p && o ? { plugin: p, op: o } : null;
}

/** The pins of every plugin a list of nodes uses, from what the hub has installed. */
export function pinsFor(plugins: PluginManifest[], used: string[]): Record<string, Pin> {
  const pins: Record<string, Pin> = {};
  for (const id of [...new Set(used)].sort()) {
    const p = plugins.find((x) => x.id === id);
    if (!p) continue;
    pins[id] = { version: p.version, sha256: p.sha256, builtin: p.builtin, url: p.source_url ?? null };
    const environment = p.status?.environment?.packages;
    if (environment && Object.keys(environment).length) pins[id].environment = environment;
  }
  return pins;
}


/** A node id, unique among `taken`, made from a name ("blur", "blur-2"). */
export function uniqueId(base: string, taken: Set<string>): string {
  let stem = base.replace(/[^A-Za-z0-9_-]+/g, "-").replace(/^[^A-Za-z_]+/, "") || "node";
  stem = stem.slice(0, 56);
  if (!taken.has(stem)) return stem;
  for (let i = 2; ; i++) if (!taken.has(`${stem}-${i}`)) return `${stem}-${i}`;
}

/** Is this what the hub reads as a workflow? (A readable message for what is not.) */
export function checkShape(value: unknown): WorkflowDoc {
  if (!value || typeof value !== "object") throw new Error("not a workflow: the file holds no JSON object");
  const doc = value as Partial<WorkflowDoc>;
  if (doc.format !== FORMAT) throw new Error(`not a workflow: "format" is ${JSON.stringify(doc.format)}, not "${FORMAT}"`);
  if (typeof doc.version !== "number" || doc.version > 1) {
    throw new Error(`this workflow has format version ${String(doc.version)}; this app reads version 1: update scopeflow`);
  }
  for (const key of ["nodes", "edges", "inputs", "outputs"] as const) {
    if (doc[key] !== undefined && !Array.isArray(doc[key])) throw new Error(`not a workflow: "${key}" is not a list`);
  }
  return {
    format: FORMAT,
    version: 1,
    title: typeof doc.title === "string" ? doc.title : "Untitled workflow",
    description: typeof doc.description === "string" ? doc.description : undefined,
    inputs: doc.inputs ?? [],
    nodes: doc.nodes ?? [],
    edges: doc.edges ?? [],
    outputs: doc.outputs ?? [],
    plugins: doc.plugins ?? {},
  };
}
