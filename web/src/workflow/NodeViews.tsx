// The canvas's nodes: an op with typed ports and a compact parameter form, workflow inputs and outputs.

import { Handle, Position, type NodeProps } from "@xyflow/react";
import { useState } from "react";
import { kindOf } from "../components/OpForm";
import { useStore } from "../store";
import type { PortSpec } from "../types";
import { NAME_PATTERN, dtypes, findOp } from "./doc";
import { patchNode, setParam, useEditor, type NodeRun } from "./editor";
import { IO_HANDLE, type InputNode, type OpNode, type OutputNode } from "./graph";

const KIND_WORD: Record<string, string> = { ndarray: "image", table: "table", value: "value" };

function portNote(p: { kind: string; axes?: string | null; dtype?: unknown }): string {
  const d = dtypes(p.dtype);
  return [KIND_WORD[p.kind] ?? p.kind, p.axes, d?.join("/")].filter(Boolean).join(" · ");
}

function summary(s: NonNullable<NodeRun["outputs"]>[string] | undefined): string {
  if (!s) return "";
  if (s.kind === "ndarray") return `${(s.shape ?? []).join("×")} ${s.dtype ?? ""}`;
  if (s.kind === "table") return `${s.rows ?? 0} rows`;
  const text = JSON.stringify(s.value);
  return text === undefined ? "" : text.length > 24 ? `${text.slice(0, 24)}…` : text;
}

const STATE_WORD: Record<string, string> = {
  queued: "queued",
  running: "running",
  cached: "cached",
  done: "done",
  error: "error",
  cancelled: "cancelled",
};

function RunBadge({ run }: { run: NodeRun | undefined }) {
  if (!run) return null;
  return (
    <span className={`sf-wf-state sf-wf-state-${run.state}`} data-testid="wf-node-state">
      {STATE_WORD[run.state] ?? run.state}
      {run.state === "running" && run.progress !== null && run.progress > 0 ? ` ${Math.round(run.progress * 100)}%` : ""}
      {run.seconds !== null && (run.state === "done" || run.state === "error") ? ` ${run.seconds.toFixed(1)} s` : ""}
    </span>
  );
}

/** A parameter, compact: numbers with their bounds, choices, switches, text. */
function Param({ nodeId, port, value }: { nodeId: string; port: PortSpec; value: unknown }) {
  const kind = kindOf(port);
  const [draft, setDraft] = useState<string | null>(null);
  const [problem, setProblem] = useState("");
  const id = `wf-${nodeId}-${port.name}`;
  const { minimum, maximum } = port.schema ?? {};
  const shown = value === undefined ? port.default : value;
  let input;
  if (kind === "boolean") {
    input = <input id={id} className="nodrag" type="checkbox" checked={Boolean(shown)} onChange={(e) => setParam(nodeId, port.name, e.target.checked)} data-testid={`wf-param-${port.name}`} />;
  } else if (kind === "enum") {
    input = (
      <select id={id} className="nodrag" value={String(shown)} onChange={(e) => setParam(nodeId, port.name, port.schema.enum.find((o: unknown) => String(o) === e.target.value))} data-testid={`wf-param-${port.name}`}>
        {port.schema.enum.map((o: unknown) => (
          <option key={String(o)} value={String(o)}>
            {String(o)}
          </option>
        ))}
      </select>
    );
  } else {
    const numeric = kind === "number" || kind === "integer";
    const text = draft ?? (shown === undefined || shown === null ? "" : kind === "json" ? JSON.stringify(shown) : String(shown));
    const change = (raw: string) => {
      setDraft(raw);
      if (raw.trim() === "") {
        setProblem(port.required ? "needed" : "");
        setParam(nodeId, port.name, undefined);
        return;
      }
      if (numeric) {
        const n = Number(raw);
        const why = !Number.isFinite(n)
          ? "not a number"
          : kind === "integer" && !Number.isInteger(n)
            ? "a whole number"
            : typeof minimum === "number" && n < minimum
              ? `at least ${minimum}`
              : typeof maximum === "number" && n > maximum
                ? `at most ${maximum}`
                : "";
        setProblem(why);
        if (!why) setParam(nodeId, port.name, n);
        return;
      }
      setProblem("");
      if (kind === "json") {
        try {
          setParam(nodeId, port.name, JSON.parse(raw));
        } catch {
          setParam(nodeId, port.name, raw);
        }
      } else setParam(nodeId, port.name, raw);
    };
    input = (
      <input
        id={id}
        className={`nodrag${problem ? " sf-wf-bad" : ""}`}
        type={numeric ? "number" : "text"}
        min={minimum}
        max={maximum}
        step={kind === "integer" ? 1 : "any"}
        value={text}
        placeholder={port.required ? "needed" : ""}
        onChange={(e) => change(e.target.value)}
        onBlur={() => problem === "" && setDraft(null)}
        title={[port.description, typeof minimum === "number" || typeof maximum === "number" ? `${minimum ?? "…"} to ${maximum ?? "…"}` : ""].filter(Boolean).join(" — ")}
        data-testid={`wf-param-${port.name}`}
      />
    );
  }
  return (
    <>
      {input}
      {problem && <span className="sf-wf-problem">{problem}</span>}
    </>
  );
}

/** A node's title; a double click renames it (an empty name goes back to the op's title). */
function NodeTitle({ id, label, fallback }: { id: string; label?: string; fallback: string }) {
  const [draft, setDraft] = useState<string | null>(null);
  if (draft === null) {
    return (
      <strong title="double-click to rename" onDoubleClick={() => setDraft(label || fallback)} data-testid="wf-node-title">
        {label || fallback}
      </strong>
    );
  }
  const finish = (keep: boolean) => {
    const name = draft.trim();
    if (keep && name !== (label || fallback)) patchNode(id, { label: name && name !== fallback ? name : undefined }, "label");
    setDraft(null);
  };
  return (
    <input
      className="nodrag sf-wf-rename"
      autoFocus
      value={draft}
      maxLength={80}
      aria-label="node name"
      data-testid="wf-node-rename"
      onChange={(e) => setDraft(e.target.value)}
      onBlur={() => finish(true)}
      onKeyDown={(e) => {
        if (e.key === "Enter") finish(true);
        if (e.key === "Escape") finish(false);
        e.stopPropagation(); // Delete and Ctrl+Z edit the text, not the graph
      }}
    />
  );
}

export function OpNodeView({ id, data, selected }: NodeProps<OpNode>) {
  const plugins = useStore((s) => s.plugins);
  const edges = useEditor((s) => s.edges);
  const run = useEditor((s) => s.nodeRuns[id]);
  const problems = useEditor((s) => s.problems[id]);
  const found = findOp(plugins, data.plugin, data.op);
  if (!found) {
    return (
      <div className={`sf-wf-node sf-wf-missing${selected ? " sf-wf-selected" : ""}`} data-testid={`wf-node-${id}`}>
        <div className="sf-wf-head">
          <strong>{data.label || data.op}</strong>
          <span className="sf-muted">{data.plugin}</span>
        </div>
        <div className="sf-wf-body sf-small">The plugin {data.plugin} has no op {data.op} here: install or pin it.</div>
      </div>
    );
  }
  const { plugin, op } = found;
  const fed = new Set(edges.filter((e) => e.target === id).map((e) => e.targetHandle));
  return (
    <div className={`sf-wf-node${selected ? " sf-wf-selected" : ""}${run ? ` sf-wf-run-${run.state}` : ""}`} data-testid={`wf-node-${id}`} data-state={run?.state ?? ""}>
      <div className="sf-wf-head" title={op.description}>
        <NodeTitle id={id} label={data.label} fallback={op.title || op.name} />
        {plugin.name !== (data.label || op.title || op.name) && <span className="sf-muted sf-small">{plugin.name}</span>}
        <RunBadge run={run} />
      </div>
      {run?.state === "running" && <progress className="sf-wf-progress" value={run.progress ?? undefined} max={1} data-testid="wf-progress-bar" />}
      <div className="sf-wf-body">
        {op.inputs.map((port) => (
          <div key={port.name} className={`sf-wf-port sf-wf-in${port.kind === "value" ? " sf-wf-param" : ""}`}>
            <Handle type="target" position={Position.Left} id={port.name} className={`sf-handle sf-handle-${port.kind}`} data-testid={`wf-in-${id}-${port.name}`} />
            <label htmlFor={`wf-${id}-${port.name}`} title={port.description}>
              {port.name}
              {port.required && port.kind !== "value" ? "" : ""}
            </label>
            {port.kind === "value" && !fed.has(port.name) ? (
              <Param nodeId={id} port={port} value={data.params[port.name]} />
            ) : (
              <span className="sf-wf-note">{fed.has(port.name) ? "connected" : `${portNote(port)}${port.required ? "" : " (optional)"}`}</span>
            )}
          </div>
        ))}
        {op.outputs.map((port) => (
          <div key={port.name} className="sf-wf-port sf-wf-out">
            <span className="sf-wf-note">{run?.outputs?.[port.name] ? summary(run.outputs[port.name]) : portNote(port)}</span>
            <span>{port.name}</span>
            <Handle type="source" position={Position.Right} id={port.name} className={`sf-handle sf-handle-${port.kind}`} data-testid={`wf-out-${id}-${port.name}`} />
          </div>
        ))}
      </div>
      {problems && problems.length > 0 && (
        <ul className="sf-wf-problems" data-testid="wf-node-problems">
          {problems.map((p) => (
            <li key={p}>{p.replace(`node ${id}: `, "")}</li>
          ))}
        </ul>
      )}
      {run?.state === "error" && (
        <details className="sf-wf-error nodrag" data-testid="wf-node-error">
          <summary>{(run.error || "failed").split("\n")[0]}</summary>
          <pre>{run.traceback || run.error}</pre>
        </details>
      )}
      {(run?.state === "done" || run?.state === "cached") && <div className="sf-wf-hint">click to view the result</div>}
    </div>
  );
}

function NameField({ id, name, taken }: { id: string; name: string; taken: string[] }) {
  const bad = !NAME_PATTERN.test(name) ? "letters, digits, _ and -" : taken.includes(name) ? "name in use" : "";
  return (
    <>
      <input type="text" className={`nodrag sf-wf-name${bad ? " sf-wf-bad" : ""}`} value={name} onChange={(e) => patchNode(id, { name: e.target.value }, "name")} aria-label="name" data-testid="wf-io-name" />
      {bad && <span className="sf-wf-problem">{bad}</span>}
    </>
  );
}

export function InputNodeView({ id, data, selected }: NodeProps<InputNode>) {
  const samples = useEditor((s) => s.samples);
  const others = useEditor((s) => s.nodes.filter((n) => n.type === "input" && n.id !== id).map((n) => (n.data as { name: string }).name).join("\n"));
  return (
    <div className={`sf-wf-node sf-wf-io${selected ? " sf-wf-selected" : ""}`} data-testid={`wf-input-${data.name}`}>
      <div className="sf-wf-head">
        <strong>Input</strong>
        <span className="sf-muted sf-small">{KIND_WORD[data.kind]}</span>
      </div>
      <div className="sf-wf-body">
        <div className="sf-wf-row">
          <NameField id={id} name={data.name} taken={others ? others.split("\n") : []} />
        </div>
        {data.kind === "ndarray" && (
          <div className="sf-wf-row">
            <select
              className="nodrag"
              value={data.sample ?? ""}
              onChange={(e) => {
                const sample = samples.find((s) => s.id === e.target.value);
                patchNode(id, { sample: sample?.id, axes: sample?.axes ?? null });
              }}
              title="The image used when a run is given none"
              data-testid="wf-input-sample"
            >
              <option value="">— no default image —</option>
              {samples
                .filter((s) => s.kind !== "labels")
                .map((s) => (
                  <option key={s.id} value={s.id}>
                    {s.name}
                  </option>
                ))}
            </select>
          </div>
        )}
        {data.kind === "value" && (
          <div className="sf-wf-row">
            <input
              type="text"
              className="nodrag"
              defaultValue={data.value === undefined ? "" : JSON.stringify(data.value)}
              onChange={(e) => {
                let value: unknown = e.target.value;
                try {
                  value = JSON.parse(e.target.value);
                } catch {
                  /* plain words are text */
                }
                patchNode(id, { value }, "value");
              }}
              aria-label="value"
              data-testid="wf-input-value"
            />
          </div>
        )}
        <div className="sf-wf-port sf-wf-out">
          <span className="sf-wf-note">{portNote(data)}</span>
          <Handle type="source" position={Position.Right} id={IO_HANDLE} className={`sf-handle sf-handle-${data.kind}`} data-testid={`wf-out-input-${data.name}`} />
        </div>
      </div>
    </div>
  );
}

export function OutputNodeView({ id, data, selected }: NodeProps<OutputNode>) {
  const others = useEditor((s) => s.nodes.filter((n) => n.type === "output" && n.id !== id).map((n) => (n.data as { name: string }).name).join("\n"));
  const fed = useEditor((s) => s.edges.some((e) => e.target === id));
  return (
    <div className={`sf-wf-node sf-wf-io sf-wf-output${selected ? " sf-wf-selected" : ""}`} data-testid={`wf-output-${data.name}`}>
      <div className="sf-wf-head">
        <strong>Output</strong>
      </div>
      <div className="sf-wf-body">
        <div className="sf-wf-port sf-wf-in">
          <Handle type="target" position={Position.Left} id={IO_HANDLE} className="sf-handle sf-handle-any" data-testid={`wf-in-output-${data.name}`} />
          <NameField id={id} name={data.name} taken={others ? others.split("\n") : []} />
        </div>
        {!fed && <div className="sf-wf-hint">connect a result here</div>}
      </div>
    </div>
  );
}

export const nodeTypes = { op: OpNodeView, input: InputNodeView, output: OutputNodeView };
