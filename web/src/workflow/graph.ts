// The editor's graph (xyflow nodes and edges) and the workflow document: one becomes the other.

import type { Edge, Node } from "@xyflow/react";
import type { PluginManifest } from "../types";
import {
  FORMAT,
  dtypes,
  findOp,
  inputPortInfo,
  pinsFor,
  portInfo,
  type DocEdge,
  type DocInput,
  type DocNode,
  type DocOutput,
  type Pin,
  type PortInfo,
  type WorkflowDoc,
} from "./doc";

export type OpData = {
  plugin: string;
  op: string;
  params: Record<string, unknown>;
  label?: string;
};

export type InputData = {
  name: string;
  kind: "ndarray" | "table" | "value";
  /** ndarray inputs: the sample used when the run gives no image */
  sample?: string;
  /** value inputs: the default value */
  value?: unknown;
  axes?: string | null;
  dtype?: string[] | null;
  description?: string;
};

export type OutputData = { name: string };

export type OpNode = Node<OpData, "op">;
export type InputNode = Node<InputData, "input">;
export type OutputNode = Node<OutputData, "output">;
export type FlowNode = OpNode | InputNode | OutputNode;

/** Handle ids of the single port of input and output nodes. */
export const IO_HANDLE = "value";

export interface Graph {
  nodes: FlowNode[];
  edges: Edge[];
}

let counter = 0;
/** Ids of input/output nodes never clash with op ids (those cannot start with "$"). */
export const ioId = (side: "in" | "out") => `$${side}-${Date.now().toString(36)}-${(counter++).toString(36)}`;

export const edgeId = (source: string, sourceHandle: string, target: string, targetHandle: string) =>
  `${source}:${sourceHandle}->${target}:${targetHandle}`;

export function makeEdge(source: string, sourceHandle: string, target: string, targetHandle: string): Edge {
  return { id: edgeId(source, sourceHandle, target, targetHandle), source, sourceHandle, target, targetHandle };
}

/** The port a handle stands for, with what the editor needs to check a connection. */
export function handlePort(node: FlowNode | undefined, handle: string | null | undefined, side: "source" | "target", plugins: PluginManifest[]): PortInfo | null {
  if (!node) return null;
  if (node.type === "input") return inputPortInfo(node.data);
  if (node.type === "output") {
    return { name: IO_HANDLE, kind: "value", axes: null, dtype: null, schema: {}, required: true, owner: `output ${node.data.name}` };
  }
  const found = findOp(plugins, node.data.plugin, node.data.op);
  if (!found) return null;
  const ports = side === "source" ? found.op.outputs : found.op.inputs;
  const port = ports.find((p) => p.name === handle);
  return port ? portInfo(port, found.op.name) : null;
}

/** The graph as a workflow document (positions rounded; ports fed by an edge left out of params). */
export function toDoc(graph: Graph, meta: { title: string; description?: string }, plugins: PluginManifest[], pins: Record<string, Pin>): WorkflowDoc {
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const pos = (n: FlowNode) => ({ x: Math.round(n.position.x), y: Math.round(n.position.y) });
  const fed = new Set(graph.edges.map((e) => `${e.target}:${e.targetHandle}`));
  const from = (e: Edge): [string, string] | null => {
    const source = byId.get(e.source);
    if (!source) return null;
    if (source.type === "input") return ["$input", source.data.name];
    if (source.type === "op") return [source.id, e.sourceHandle ?? ""];
    return null;
  };
  const inputs: DocInput[] = [];
  const nodes: DocNode[] = [];
  const outputs: DocOutput[] = [];
  const edges: DocEdge[] = [];
  for (const n of graph.nodes) {
    if (n.type === "input") {
      const d = n.data;
      const input: DocInput = { name: d.name, kind: d.kind };
      if (d.axes) input.axes = d.axes;
      const dtype = dtypes(d.dtype);
      if (dtype) input.dtype = dtype;
      if (d.kind === "ndarray" && d.sample) input.default = { sample: d.sample };
      if (d.kind === "value" && d.value !== undefined) input.default = d.value;
      if (d.description) input.description = d.description;
      input.position = pos(n);
      inputs.push(input);
    } else if (n.type === "op") {
      const params = Object.fromEntries(Object.entries(n.data.params).filter(([k, v]) => !fed.has(`${n.id}:${k}`) && v !== undefined));
      const node: DocNode = { id: n.id, plugin: n.data.plugin, op: n.data.op, params, position: pos(n) };
      if (n.data.label) node.label = n.data.label;
      nodes.push(node);
    }
  }
  for (const e of graph.edges) {
    const target = byId.get(e.target);
    const source = from(e);
    if (!target || !source) continue;
    if (target.type === "op") edges.push({ from: source, to: [target.id, e.targetHandle ?? ""] });
  }
  for (const n of graph.nodes) {
    if (n.type !== "output") continue;
    const e = graph.edges.find((x) => x.target === n.id);
    const source = e && from(e);
    if (source) outputs.push({ name: n.data.name, from: source, position: pos(n) });
  }
  const used = nodes.map((n) => n.plugin);
  const current = pinsFor(plugins, used);
  const table: Record<string, Pin> = {};
  for (const id of Object.keys(current).concat(used.filter((u) => !(u in current) && u in pins)).sort()) {
    table[id] = pins[id] ?? current[id];
  }
  const doc: WorkflowDoc = { format: FORMAT, version: 1, title: meta.title || "Untitled workflow", inputs, nodes, edges, outputs, plugins: table };
  if (meta.description) doc.description = meta.description;
  return doc;
}

/** A document as the editor's graph; nodes without a position are laid out left to right. */
export function fromDoc(doc: WorkflowDoc): Graph {
  const nodes: FlowNode[] = [];
  const edges: Edge[] = [];
  const inputIds = new Map<string, string>();
  const column = (i: number, x: number) => ({ x, y: 40 + i * 150 });
  doc.inputs.forEach((input, i) => {
    const id = ioId("in");
    inputIds.set(input.name, id);
    const dflt = input.default as { sample?: unknown } | undefined;
    const data: InputData = {
      name: input.name,
      kind: input.kind,
      axes: input.axes ?? null,
      dtype: input.dtype ?? null,
      description: input.description,
    };
    if (input.kind === "ndarray" && dflt && typeof dflt.sample === "string") data.sample = dflt.sample;
    if (input.kind === "value" && "default" in input) data.value = input.default;
    nodes.push({ id, type: "input", position: input.position ?? column(i, 0), data });
  });
  doc.nodes.forEach((n, i) => {
    nodes.push({
      id: n.id,
      type: "op",
      position: n.position ?? column(i % 4, 280 * (1 + Math.floor(i / 4))),
      data: { plugin: n.plugin, op: n.op, params: { ...(n.params ?? {}) }, label: n.label ?? undefined },
    });
  });
  const sourceOf = (ref: [string, string]): [string, string] | null => {
    if (ref[0] === "$input") {
      const id = inputIds.get(ref[1]);
      return id ? [id, IO_HANDLE] : null;
    }
    return [ref[0], ref[1]];
  };
  for (const e of doc.edges) {
    const s = sourceOf(e.from);
    if (s) edges.push(makeEdge(s[0], s[1], e.to[0], e.to[1]));
  }
  const right = Math.max(0, ...nodes.map((n) => n.position.x)) + 300;
  doc.outputs.forEach((o, i) => {
    const id = ioId("out");
    nodes.push({ id, type: "output", position: o.position ?? column(i, right), data: { name: o.name } });
    const s = sourceOf(o.from);
    if (s) edges.push(makeEdge(s[0], s[1], id, IO_HANDLE));
  });
  return { nodes, edges };
}

/** The ops' default values of their value inputs: a new node starts with them, visible and editable. */
export function defaultParams(plugins: PluginManifest[], plugin: string, op: string): Record<string, unknown> {
  const found = findOp(plugins, plugin, op);
  const params: Record<string, unknown> = {};
  for (const port of found?.op.inputs ?? []) {
    if (port.kind === "value" && port.default !== null && port.default !== undefined) params[port.name] = port.default;
  }
  return params;
}
