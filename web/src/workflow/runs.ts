// Running the editor's workflow on the hub's `workflows` service: events update each node's state,
// a done node's results open in the viewer or the table view.

import { errorText, rpc } from "../actions";
import { asTable, fromNdarray, isNdarray } from "../images";
import { addImage, addLog, addTable, get as app, set as setApp } from "../store";
import { findOp } from "./doc";
import { currentDoc, editor, notify, type NodeRun, type RunInfo } from "./editor";

let service: any = null;
let serviceOf: any = null;

async function workflows(): Promise<any> {
  const server = rpc();
  if (!service || serviceOf !== server) {
    service = await server.get_service("workflows");
    serviceOf = server;
  }
  return service;
}

const FINISHED = new Set(["done", "error", "cancelled"]);

function applyEvent(event: any) {
  const { run } = editor.get();
  if (!event || !run || (run.id && event.run && event.run !== run.id)) return;
  if (event.type === "run") {
    editor.set({ run: { ...run, state: event.state, seconds: event.seconds ?? null } });
    return;
  }
  if (event.type !== "node" || !event.node) return;
  editor.set((s) => {
    const before = s.nodeRuns[event.node];
    const next: NodeRun = {
      state: event.state,
      progress: event.progress ?? (event.state === "running" ? (before?.progress ?? null) : null),
      seconds: event.seconds ?? before?.seconds ?? null,
      key: event.key ?? before?.key ?? null,
      outputs: event.outputs ?? before?.outputs ?? null,
      error: event.error ?? null,
      traceback: event.traceback ?? null,
    };
    return { nodeRuns: { ...s.nodeRuns, [event.node]: next } };
  });
}

/** The run record is the truth: it fills in whatever events were missed. */
function applyRecord(record: any) {
  if (!record || typeof record !== "object") return;
  const nodeRuns: Record<string, NodeRun> = { ...editor.get().nodeRuns };
  for (const [id, n] of Object.entries<any>(record.nodes ?? {})) {
    const before = nodeRuns[id];
    const state = n.cached && n.state === "done" ? "cached" : n.state;
    if (before && !FINISHED.has(state) && before.state === "running") continue; // events carry progress
    nodeRuns[id] = {
      state,
      progress: before?.progress ?? null,
      seconds: n.seconds ?? null,
      key: n.key ?? null,
      outputs: n.outputs ?? null,
      error: n.error ?? null,
      traceback: n.traceback ?? null,
    };
  }
  const run = editor.get().run;
  editor.set({ nodeRuns, run: run ? { ...run, state: record.state, seconds: record.seconds ?? null } : run });
}

let polling = 0;

/** Run the workflow (or only what `until` needs) and follow it until it ends. */
export async function runWorkflow(until: string | null = null): Promise<void> {
  const doc = currentDoc();
  if (!doc.nodes.length) {
    notify("Nothing to run: drag an operation onto the canvas first.", "error");
    return;
  }
  editor.set({ run: { id: null, state: "starting", seconds: null }, nodeRuns: {}, notice: null, problems: {} });
  try {
    const svc = await workflows();
    // problems are shown on the nodes they concern, all at once, before anything runs
    const check = await svc.validate(doc);
    if (check && check.ok === false) {
      const problems: Record<string, string[]> = {};
      for (const e of check.errors ?? []) (problems[e.node ?? ""] ??= []).push(e.message);
      const count = (check.errors ?? []).length;
      editor.set({ run: null, problems });
      notify(`Not run: ${count} problem${count === 1 ? "" : "s"} to fix first. ${(check.errors ?? [])[0]?.message ?? ""}`, "error", false);
      return;
    }
    // wrapped with `_rintf`: imjoy-rpc would otherwise forget the callback once `start` has returned
    const options: Record<string, unknown> = until ? { until } : {};
    const onEvent = { _rintf: true, on_event: (event: unknown) => applyEvent(event) };
    const id: string = await svc.start(doc, {}, options, onEvent);
    const run = editor.get().run;
    editor.set({ run: { ...(run as RunInfo), id, state: run?.state === "starting" ? "running" : (run as RunInfo).state } });
    await follow(id);
  } catch (err) {
    const text = errorText(err);
    editor.set({ run: { id: editor.get().run?.id ?? null, state: "error", seconds: null, error: text } });
    notify(`The workflow did not run: ${text.split("\n")[0]}`, "error");
  }
}

async function follow(id: string) {
  const mine = ++polling;
  const svc = await workflows();
  for (;;) {
    await new Promise((r) => window.setTimeout(r, 700));
    if (mine !== polling || editor.get().run?.id !== id) return;
    const record = await svc.get_run(id);
    applyRecord(record);
    if (FINISHED.has(record?.state)) {
      const counts = Object.values<any>(record.nodes ?? {}).reduce<Record<string, number>>((acc, n) => {
        const state = n.cached && n.state === "done" ? "cached" : n.state;
        acc[state] = (acc[state] ?? 0) + 1;
        return acc;
      }, {});
      const parts = Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(", ");
      const level = record.state === "done" ? "info" : "error";
      addLog(level, "workflow", `${record.title || "workflow"} ${record.state} in ${Number(record.seconds ?? 0).toFixed(2)} s (${parts})`);
      return;
    }
  }
}

export async function cancelRun(): Promise<void> {
  const run = editor.get().run;
  if (!run?.id) return;
  try {
    await (await workflows()).cancel(run.id);
  } catch (err) {
    notify(`Cancel failed: ${errorText(err)}`, "error");
  }
}

/** Show what a finished node made: images in the viewer (labels as labels), tables in the table view. */
export async function showNodeOutput(nodeId: string): Promise<void> {
  const run = editor.get().nodeRuns[nodeId];
  const node = editor.get().nodes.find((n) => n.id === nodeId);
  if (!run || !run.key || !node || node.type !== "op" || (run.state !== "done" && run.state !== "cached")) return;
  const found = findOp(app().plugins, node.data.plugin, node.data.op);
  const ports = found?.op.outputs.length ? found.op.outputs.map((p) => p.name) : Object.keys(run.outputs ?? {});
  const svc = await workflows();
  const name = node.data.label || found?.op.title || node.data.op;
  for (const port of ports) {
    try {
      const value = await svc.output(run.key, port);
      const spec = found?.op.outputs.find((p) => p.name === port);
      const label = `${name} (${nodeId}${ports.length > 1 ? ` ${port}` : ""})`;
      if (isNdarray(value)) {
        const labels = /label|mask|segment/i.test(`${port} ${node.data.op}`) && /int|uint/.test(value._rdtype);
        addImage(fromNdarray(value, label, { axes: spec?.axes, kind: labels ? "labels" : "image", source: `workflow:${nodeId}` }));
      } else {
        const table = asTable(value, label, node.data.plugin);
        if (table && (spec?.kind === "table" || table.rows.length > 1)) addTable(table);
        else addLog("info", "workflow", `${label}: ${JSON.stringify(value)?.slice(0, 300)}`, undefined, true);
      }
    } catch (err) {
      notify(`The result of ${nodeId} could not be read: ${errorText(err)}`, "error");
      setApp({ view: "workflow" });
    }
  }
}
