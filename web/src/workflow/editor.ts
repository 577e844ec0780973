// The editor's state: the graph, its undo history, the clipboard, the document's name and pins, and the
// state of every node in the latest run. It lives outside the component, so switching tabs loses nothing.

import { applyEdgeChanges, applyNodeChanges, type Connection, type Edge, type EdgeChange, type NodeChange } from "@xyflow/react";
import { create } from "zustand";
import { addLog, get as app } from "../store";
import type { SampleInfo } from "../images";
import type { Pin, PinState, WorkflowDoc } from "./doc";
import { incompatibility, uniqueId } from "./doc";
import { IO_HANDLE, defaultParams, fromDoc, handlePort, ioId, makeEdge, toDoc, type FlowNode, type Graph, type InputData } from "./graph";

export interface NodeRun {
  state: "queued" | "running" | "cached" | "done" | "error" | "cancelled";
  progress: number | null;
  seconds: number | null;
  key: string | null;
  outputs: Record<string, { kind: string; shape?: number[]; dtype?: string; columns?: string[]; rows?: number; value?: unknown }> | null;
  error: string | null;
  traceback: string | null;
}

export interface RunInfo {
  id: string | null;
  state: "starting" | "running" | "done" | "error" | "cancelled";
  seconds: number | null;
  error?: string;
}

interface EditorState extends Graph {
  title: string;
  description: string;
  /** the name it was saved under or loaded from on the hub, and which version */
  saved: { name: string; version: string | null } | null;
  pins: Record<string, Pin>;
  past: Graph[];
  future: Graph[];
  run: RunInfo | null;
  nodeRuns: Record<string, NodeRun>;
  /** the latest refusal or problem, shown in the toolbar */
  notice: { text: string; level: "info" | "error" } | null;
  /** set when a node's parameter is being typed: further keystrokes join the same undo step */
  lastEdit: string;
  /** plugins that are not the pinned ones, until the user decides */
  pinProblems: PinState[];
  /** the hub's samples, the default images of inputs */
  samples: SampleInfo[];
  /** counts documents opened, so the canvas fits each one in view */
  loaded: number;
  /** what the hub's validator found, by node id ("" for the workflow as a whole) */
  problems: Record<string, string[]>;
}

export const useEditor = create<EditorState>(() => ({
  nodes: [],
  edges: [],
  title: "Untitled workflow",
  description: "",
  saved: null,
  pins: {},
  past: [],
  future: [],
  run: null,
  nodeRuns: {},
  notice: null,
  lastEdit: "",
  pinProblems: [],
  samples: [],
  loaded: 0,
  problems: {},
}));

const set = useEditor.setState;
const get = useEditor.getState;

const plain = (g: Graph): Graph => ({
  nodes: g.nodes.map((n) => ({ ...n, selected: false, dragging: false })),
  edges: g.edges.map((e) => ({ ...e, selected: false })),
});

/** Remember the graph as it is, before a change (one undo step). */
export function commit(edit = "") {
  const s = get();
  if (edit && edit === s.lastEdit) return;
  set({ past: [...s.past.slice(-99), plain(s)], future: [], lastEdit: edit });
}

export function undo() {
  const s = get();
  const last = s.past[s.past.length - 1];
  if (!last) return;
  set({ past: s.past.slice(0, -1), future: [plain(s), ...s.future], nodes: last.nodes, edges: last.edges, lastEdit: "" });
}

export function redo() {
  const s = get();
  const next = s.future[0];
  if (!next) return;
  set({ past: [...s.past, plain(s)], future: s.future.slice(1), nodes: next.nodes, edges: next.edges, lastEdit: "" });
}

/** Say something above the canvas (and in the log); `toast` also pops it up in the corner. */
export function notify(text: string, level: "info" | "error" = "info", toast = true) {
  set({ notice: { text, level } });
  addLog(level, "workflow", text, undefined, toast);
}

export function onNodesChange(changes: NodeChange<FlowNode>[]) {
  const removing = changes.some((c) => c.type === "remove");
  if (removing) commit();
  set((s) => {
    const nodes = applyNodeChanges(changes, s.nodes);
    const ids = new Set(nodes.map((n) => n.id));
    return { nodes, edges: removing ? s.edges.filter((e) => ids.has(e.source) && ids.has(e.target)) : s.edges };
  });
}

export function onEdgesChange(changes: EdgeChange[]) {
  if (changes.some((c) => c.type === "remove")) commit();
  set((s) => ({ edges: applyEdgeChanges(changes, s.edges) }));
}

/** Why this connection is refused, or null. */
export function refusal(c: Connection | Edge): string | null {
  const { nodes } = get();
  const plugins = app().plugins;
  const source = nodes.find((n) => n.id === c.source);
  const target = nodes.find((n) => n.id === c.target);
  if (!source || !target) return "that node is gone";
  if (c.source === c.target) return "a node cannot feed itself";
  if (source.type === "input" && target.type === "output") return "an output takes the result of an operation, not an input";
  const from = handlePort(source, c.sourceHandle, "source", plugins);
  const to = handlePort(target, c.targetHandle, "target", plugins);
  if (!from || !to) return "that port is not declared by the plugin (is it installed?)";
  const why = incompatibility(from, to);
  if (why) return why;
  if (reaches(c.target, c.source)) return "that would make a loop: a workflow runs one way";
  return null;
}

function reaches(start: string, goal: string): boolean {
  const { edges } = get();
  const seen = new Set<string>();
  const stack = [start];
  while (stack.length) {
    const id = stack.pop()!;
    if (id === goal) return true;
    if (seen.has(id)) continue;
    seen.add(id);
    for (const e of edges) if (e.source === id) stack.push(e.target);
  }
  return false;
}

/** Connect two ports, or say why not; a target port takes one edge, so a new one replaces the old. */
export function connect(c: Connection): boolean {
  const why = refusal(c);
  if (why) {
    notify(`Not connected: ${why}`, "error", false);
    return false;
  }
  commit();
  const edge = makeEdge(c.source, c.sourceHandle ?? IO_HANDLE, c.target, c.targetHandle ?? IO_HANDLE);
  const same = (e: Edge) => e.target === c.target && (e.targetHandle ?? IO_HANDLE) === (c.targetHandle ?? IO_HANDLE);
  const replaced = get().edges.some(same);
  set((s) => ({ edges: [...s.edges.filter((e) => !same(e)), edge], notice: null }));
  if (replaced) notify("A port takes one connection: the new one replaced the earlier one (Ctrl+Z brings it back)", "info", false);
  return true;
}

function takenIds(): Set<string> {
  return new Set(get().nodes.map((n) => n.id));
}

function takenNames(type: "input" | "output"): Set<string> {
  return new Set(get().nodes.flatMap((n) => (n.type === type ? [n.data.name] : [])));
}

export function addOpNode(plugin: string, op: string, position: { x: number; y: number }): string {
  commit();
  const id = uniqueId(op, takenIds());
  const node: FlowNode = { id, type: "op", position, data: { plugin, op, params: defaultParams(app().plugins, plugin, op) } };
  set((s) => ({ nodes: [...s.nodes.map((n) => ({ ...n, selected: false })), { ...node, selected: true }] }));
  return id;
}

export function addInputNode(kind: "ndarray" | "value", position: { x: number; y: number }, sample?: { id: string; axes: string }): string {
  commit();
  const name = uniqueId(kind === "ndarray" ? "image" : "value", takenNames("input"));
  const data: InputData = kind === "ndarray" ? { name, kind, sample: sample?.id, axes: sample?.axes ?? null } : { name, kind, value: 1 };
  const id = ioId("in");
  set((s) => ({ nodes: [...s.nodes, { id, type: "input", position, data }] }));
  return id;
}

export function addOutputNode(position: { x: number; y: number }): string {
  commit();
  const name = uniqueId("result", takenNames("output"));
  const id = ioId("out");
  set((s) => ({ nodes: [...s.nodes, { id, type: "output", position, data: { name } }] }));
  return id;
}

/** Change a node's data; `edit` names a field being typed in, so its keystrokes are one undo step. */
export function patchNode(id: string, patch: Record<string, unknown>, edit = "") {
  commit(edit ? `${id}.${edit}` : "");
  set((s) => ({ nodes: s.nodes.map((n) => (n.id === id ? ({ ...n, data: { ...n.data, ...patch } } as FlowNode) : n)) }));
}

export function setParam(id: string, port: string, value: unknown) {
  const node = get().nodes.find((n) => n.id === id);
  if (!node || node.type !== "op") return;
  const params = { ...node.data.params };
  if (value === undefined) delete params[port];
  else params[port] = value;
  patchNode(id, { params }, `param.${port}`);
}

export function removeSelected() {
  const s = get();
  const gone = new Set(s.nodes.filter((n) => n.selected).map((n) => n.id));
  const edgesGone = s.edges.filter((e) => e.selected || gone.has(e.source) || gone.has(e.target));
  if (!gone.size && !edgesGone.length) return;
  commit();
  const dropped = new Set(edgesGone.map((e) => e.id));
  set({ nodes: s.nodes.filter((n) => !gone.has(n.id)), edges: s.edges.filter((e) => !dropped.has(e.id)) });
}

let clipboard: Graph | null = null;

export function copySelected(): number {
  const s = get();
  const nodes = s.nodes.filter((n) => n.selected);
  const ids = new Set(nodes.map((n) => n.id));
  clipboard = plain({ nodes, edges: s.edges.filter((e) => ids.has(e.source) && ids.has(e.target)) });
  return nodes.length;
}

/** Paste the copied nodes (new ids and names, moved a little) with the edges between them. */
export function paste(): number {
  if (!clipboard?.nodes.length) return 0;
  commit();
  const ids = takenIds();
  const names = { input: takenNames("input"), output: takenNames("output") };
  const renamed = new Map<string, string>();
  const nodes = clipboard.nodes.map((n) => {
    let copy: FlowNode;
    if (n.type === "op") {
      const id = uniqueId(n.id, ids);
      copy = { ...n, id, data: { ...n.data, params: { ...n.data.params } } };
    } else {
      const name = uniqueId(n.data.name, names[n.type]);
      names[n.type].add(name);
      copy = { ...n, id: ioId(n.type === "input" ? "in" : "out"), data: { ...n.data, name } } as FlowNode;
    }
    ids.add(copy.id);
    renamed.set(n.id, copy.id);
    return { ...copy, position: { x: n.position.x + 40, y: n.position.y + 40 }, selected: true };
  });
  const edges = clipboard.edges.map((e) => makeEdge(renamed.get(e.source)!, e.sourceHandle ?? IO_HANDLE, renamed.get(e.target)!, e.targetHandle ?? IO_HANDLE));
  // a second paste lands a little further on
  clipboard = { nodes: clipboard.nodes.map((n) => ({ ...n, position: { x: n.position.x + 40, y: n.position.y + 40 } })), edges: clipboard.edges };
  set((s) => ({ nodes: [...s.nodes.map((n) => ({ ...n, selected: false })), ...nodes], edges: [...s.edges, ...edges] }));
  return nodes.length;
}

export function currentDoc(): WorkflowDoc {
  const s = get();
  return toDoc(s, { title: s.title, description: s.description }, app().plugins, s.pins);
}

/** Open a document in the editor (its history starts anew). */
export function loadDoc(doc: WorkflowDoc, saved: EditorState["saved"] = null) {
  const graph = fromDoc(doc);
  set((s) => ({ loaded: s.loaded + 1 }));
  set({ ...graph, title: doc.title, description: doc.description ?? "", pins: { ...doc.plugins }, saved, past: [], future: [], run: null, nodeRuns: {}, notice: null, lastEdit: "", pinProblems: [], problems: {} });
}

/**
 * Move nodes down until none covers another (documents written by hand or by other tools place nodes
 * without knowing their size here). Returns whether anything moved; not an undo step.
 */
export function untangle(): boolean {
  const margin = 14;
  const placed: { x: number; y: number; w: number; h: number }[] = [];
  let moved = false;
  const nodes = [...get().nodes].sort((a, b) => a.position.y - b.position.y || a.position.x - b.position.x);
  const positions = new Map<string, { x: number; y: number }>();
  for (const n of nodes) {
    const w = n.measured?.width ?? 0;
    const h = n.measured?.height ?? 0;
    const box = { x: n.position.x, y: n.position.y, w, h };
    for (let again = true; again; ) {
      again = false;
      for (const p of placed) {
        const across = box.x < p.x + p.w + margin && p.x < box.x + box.w + margin;
        const down = box.y < p.y + p.h + margin && p.y < box.y + box.h + margin;
        if (across && down) {
          box.y = p.y + p.h + margin;
          again = moved = true;
        }
      }
    }
    placed.push(box);
    positions.set(n.id, { x: box.x, y: box.y });
  }
  if (moved) set((s) => ({ nodes: s.nodes.map((n) => ({ ...n, position: positions.get(n.id) ?? n.position })) }));
  return moved;
}

export function clearGraph() {
  commit();
  set({ nodes: [], edges: [], nodeRuns: {}, run: null, saved: null, title: "Untitled workflow", description: "", pins: {} });
}

export const editor = { set, get };
