// The workflow editor: a palette, the canvas of nodes with typed ports, and a toolbar to run, undo, save,
// open, export, import and share. Loaded on demand: the app's first paint does not carry it.

import "@xyflow/react/dist/style.css";
import "./workflow.css";
import { Background, Controls, MiniMap, ReactFlow, ReactFlowProvider, useReactFlow, type Node } from "@xyflow/react";
import { useEffect, useRef, useState } from "react";
import { errorText } from "../actions";
import { isLocalAddress } from "../components/InstallDialog";
import { getJson } from "../hub";
import { saveBlob, type SampleInfo } from "../images";
import { addLog, ask, get as app, set as setApp, useStore } from "../store";
import { checkShape } from "./doc";
import {
  addInputNode,
  addOpNode,
  addOutputNode,
  clearGraph,
  commit,
  connect,
  copySelected,
  currentDoc,
  editor,
  loadDoc,
  notify,
  onEdgesChange,
  onNodesChange,
  paste,
  redo,
  removeSelected,
  undo,
  untangle,
  useEditor,
} from "./editor";
import type { FlowNode } from "./graph";
import { LibraryDialog } from "./LibraryDialog";
import { RESERVED, SAVE_NAME, checkPins, fetchLinked, save, updatePins, usePinned, type PinState } from "./library";
import { nodeTypes } from "./NodeViews";
import { DRAG_TYPE, Palette, type PaletteItem } from "./Palette";
import { cancelRun, runWorkflow, showNodeOutput } from "./runs";
import { forgetLink, linkedWorkflow, decodeDoc, shareLink } from "./share";

const editable = (target: EventTarget | null) =>
  target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));

/** The host of a URL from a document, or the text itself when it is not a URL. */
function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url.slice(0, 60);
  }
}

function slug(title: string): string {
  return title.toLowerCase().replace(/[^a-z0-9._-]+/g, "-").replace(/^[^a-z0-9]+|-+$/g, "").slice(0, 60) || "workflow";
}

// for the browser tests and curious users in the console, as window.__scopeflow
(window as unknown as { __scopeflowWorkflow: unknown }).__scopeflowWorkflow = { doc: currentDoc, state: () => editor.get() };

let linkTaken = false;

/** `#workflow=…` or `?workflow=URL` in the address: open it once, ask before fetching from the user's own network. */
async function openLinked(): Promise<void> {
  const link = linkedWorkflow();
  if (!link || linkTaken) return;
  linkTaken = true;
  try {
    if ("fragment" in link) {
      const doc = await decodeDoc(link.fragment);
      loadDoc(doc);
      forgetLink();
      notify(`Opened the shared workflow "${doc.title}"`);
      await checkPins(doc);
    } else {
      const local = isLocalAddress(link.url);
      if (local) {
        const ok = await ask("confirm", "Open a workflow from your own network?", `This link asks the hub to fetch ${link.url}, an address on your own network. Fetch it?`);
        if (!ok) return;
      }
      const doc = await fetchLinked(link.url, !local);
      loadDoc(doc);
      forgetLink();
      notify(`Opened the workflow "${doc.title}" from ${link.url}`);
      await checkPins(doc);
    }
  } catch (err) {
    notify(`The linked workflow could not be opened: ${errorText(err)}`, "error");
  } finally {
    forgetLink();
  }
}

function PinBanner() {
  const problems = useEditor((s) => s.pinProblems);
  const [busy, setBusy] = useState("");
  // a plugin installed or restored meanwhile (the install dialog, another tab): check again
  const installed = useStore((s) => s.plugins.map((p) => p.sha256).join());
  useEffect(() => {
    if (editor.get().pinProblems.length) void checkPins();
  }, [installed]);
  if (!problems.length) return null;
  const act = async (what: string, fn: () => Promise<void>) => {
    setBusy(what);
    try {
      await fn();
    } catch (err) {
      notify(`${what}: ${errorText(err)}`, "error");
    } finally {
      setBusy("");
    }
  };
  const describe = (p: PinState) =>
    p.state === "missing"
      ? `${p.plugin} ${p.pinned.version} is not installed on this hub`
      : p.state === "environment"
      ? `${p.plugin} is the same file, but runs with other packages here: ${(p.changes ?? []).join(", ")}`
      : `${p.plugin} changed: the workflow was made with ${p.pinned.version} (${p.pinned.sha256.slice(0, 10)}), this hub has ${p.current?.version ?? "?"} (${(p.current?.sha256 ?? "").slice(0, 10)})`;
  return (
    <div className="sf-warning sf-wf-pins" data-testid="wf-pins">
      <strong>Some plugins are not the versions this workflow was made with.</strong>
      <ul>
        {problems.map((p) => (
          <li key={p.plugin} data-testid={`wf-pin-${p.plugin}`} data-state={p.state}>
            {describe(p)}{" "}
            {p.state !== "environment" && (
              <button className="sf-mini" disabled={busy !== ""} onClick={() => void act(`use pinned ${p.plugin}`, () => usePinned(p))} data-testid="wf-pin-use">
                use pinned version
              </button>
            )}{" "}
            {p.pinned.url && (
              <button className="sf-mini" onClick={() => setApp({ installUrl: p.pinned.url })} data-testid="wf-pin-install">
                install from {hostOf(p.pinned.url)}…
              </button>
            )}
          </li>
        ))}
      </ul>
      {problems.some((p) => p.state === "changed" || p.state === "environment") && (
        <button className="sf-mini" disabled={busy !== ""} onClick={() => void act("update pins", updatePins)} data-testid="wf-pin-update">
          update pins to what is installed
        </button>
      )}
    </div>
  );
}

function Toolbar({ onOpen }: { onOpen: (tab: "gallery" | "saved") => void }) {
  const title = useEditor((s) => s.title);
  const description = useEditor((s) => s.description);
  const [about, setAbout] = useState(false);
  const run = useEditor((s) => s.run);
  const saved = useEditor((s) => s.saved);
  const canUndo = useEditor((s) => s.past.length > 0);
  const canRedo = useEditor((s) => s.future.length > 0);
  const selected = useEditor((s) => s.nodes.find((n) => n.selected && n.type === "op")?.id ?? null);
  const missing = useEditor((s) => s.pinProblems.some((p) => p.state === "missing"));
  const connected = useStore((s) => s.connection === "connected");
  const [link, setLink] = useState("");
  const file = useRef<HTMLInputElement>(null);
  const { fitView } = useReactFlow();
  const running = run?.state === "running" || run?.state === "starting";
  const doSave = async () => {
    const suggested = saved?.name ?? slug(title);
    const name = (await ask("prompt", "Save the workflow on the hub", "Name (letters, digits, . _ -); saving again under the same name keeps the earlier versions.", suggested)) as string | null;
    if (!name) return;
    if (RESERVED.has(name)) return notify(`"${name}" is a name the hub keeps for itself: choose another`, "error");
    if (!SAVE_NAME.test(name)) return notify(`"${name}" is not a usable name: letters, digits, ".", "_" and "-", starting with a letter or digit`, "error");
    try {
      await save(name);
    } catch (err) {
      notify(`Not saved: ${errorText(err)}`, "error");
    }
  };
  const doExport = () => {
    const doc = currentDoc();
    saveBlob(new Blob([JSON.stringify(doc, null, 2)], { type: "application/json" }), `${saved?.name ?? slug(doc.title)}.json`);
  };
  const doImport = async (f: File) => {
    try {
      const doc = checkShape(JSON.parse(await f.text()));
      loadDoc(doc);
      notify(`Imported "${doc.title}" from ${f.name}`);
      await checkPins(doc);
    } catch (err) {
      notify(`${f.name} could not be imported: ${err instanceof SyntaxError ? "it is not JSON" : errorText(err)}`, "error");
    }
  };
  const doShare = async () => {
    const url = await shareLink(currentDoc());
    setLink(url);
    try {
      await navigator.clipboard.writeText(url);
      notify(`Link copied (${Math.round(url.length / 100) / 10} k characters): whoever opens it gets this workflow`);
    } catch {
      notify("Copy the link from the box next to Share");
    }
  };
  const until = selected;
  return (
    <div className="sf-wf-toolbar">
      <input className="sf-wf-title" value={title} onChange={(e) => editor.set({ title: e.target.value })} aria-label="workflow title" data-testid="wf-title" />
      <button onClick={() => setAbout(!about)} aria-expanded={about} title="What this workflow does: shown with it in the gallery and in shared links" data-testid="wf-about">
        About
      </button>
      {about && (
        <textarea
          className="sf-wf-about"
          value={description}
          autoFocus
          placeholder="What does this workflow do, on which images, and what should one look at in its results? (Markdown)"
          onChange={(e) => editor.set({ description: e.target.value })}
          onBlur={() => setAbout(false)}
          aria-label="workflow description"
          data-testid="wf-description"
        />
      )}
      <button className="sf-primary" disabled={running || !connected || missing} onClick={() => void runWorkflow()} title={missing ? "Install the missing plugins first" : "Run the whole workflow"} data-testid="wf-run">
        ▶ Run
      </button>
      <button disabled={running || !connected || !until || missing} onClick={() => void runWorkflow(until)} title={until ? `Run ${until} and what it needs` : "Select a node first"} data-testid="wf-run-until">
        Run to selected
      </button>
      {running && (
        <button onClick={() => void cancelRun()} data-testid="wf-cancel">
          Cancel
        </button>
      )}
      {run && !running && (
        <span className={`sf-wf-runstate sf-wf-state-${run.state}`} data-testid="wf-run-state" data-state={run.state}>
          {run.state}
          {run.seconds !== null ? ` in ${run.seconds.toFixed(2)} s` : ""}
        </span>
      )}
      <span className="sf-wf-sep" />
      <button onClick={undo} disabled={!canUndo} title="Undo (Ctrl+Z)" data-testid="wf-undo">
        ↶
      </button>
      <button onClick={redo} disabled={!canRedo} title="Redo (Ctrl+Shift+Z or Ctrl+Y)" data-testid="wf-redo">
        ↷
      </button>
      <button onClick={() => void fitView({ padding: 0.2, duration: 200 })} title="Show the whole workflow" data-testid="wf-fit">
        Fit
      </button>
      <span className="sf-wf-sep" />
      <button onClick={() => void doSave()} data-testid="wf-save" title={saved ? `Saved as ${saved.name}${saved.version ? ` (version ${saved.version})` : ""}` : "Save on the hub"}>
        Save
      </button>
      <button onClick={() => onOpen("saved")} data-testid="wf-open">
        Open…
      </button>
      <button onClick={() => onOpen("gallery")} data-testid="wf-gallery">
        Examples
      </button>
      <button onClick={doExport} data-testid="wf-export" title="Download as a .json file">
        Export
      </button>
      <button onClick={() => file.current?.click()} data-testid="wf-import" title="Open a .json file">
        Import
      </button>
      <input ref={file} type="file" accept=".json,application/json" hidden onChange={(e) => e.target.files?.[0] && void doImport(e.target.files[0]).finally(() => (e.target.value = ""))} data-testid="wf-import-input" />
      <button onClick={() => void doShare()} data-testid="wf-share" data-link={link} title="Copy a link that holds the whole workflow">
        Share
      </button>
      <button onClick={clearGraph} title="Start an empty workflow (Undo brings it back)" data-testid="wf-new">
        New
      </button>
    </div>
  );
}

function Canvas() {
  const nodes = useEditor((s) => s.nodes);
  const edges = useEditor((s) => s.edges);
  const notice = useEditor((s) => s.notice);
  const plugins = useStore((s) => s.plugins);
  const [library, setLibrary] = useState<"gallery" | "saved" | null>(null);
  const flow = useReactFlow();
  const box = useRef<HTMLDivElement>(null);
  const loaded = useEditor((s) => s.loaded);
  useEffect(() => {
    if (plugins.length) void openLinked();
  }, [plugins.length]);
  useEffect(() => {
    if (!loaded) return;
    // once the nodes have their sizes: nothing may hide another, then all in view
    const timer = window.setTimeout(() => {
      untangle();
      window.setTimeout(() => void flow.fitView({ padding: 0.15, maxZoom: 1 }), 30);
    }, 120);
    return () => window.clearTimeout(timer);
  }, [loaded, flow]);
  useEffect(() => {
    const token = app().token;
    if (token && !editor.get().samples.length) {
      getJson<SampleInfo[]>(token, "/api/samples").then((samples) => editor.set({ samples }), () => undefined);
    }
  }, []);
  const add = (item: PaletteItem, position?: { x: number; y: number }) => {
    let at = position;
    if (!at) {
      const rect = box.current?.getBoundingClientRect();
      const centre = rect ? { x: rect.left + rect.width / 2, y: rect.top + rect.height / 3 } : { x: 400, y: 200 };
      at = flow.screenToFlowPosition(centre);
      const jitter = (editor.get().nodes.length % 5) * 24;
      at = { x: at.x - 110 + jitter, y: at.y + jitter };
    }
    if (item.type === "op") addOpNode(item.plugin, item.op, at);
    else if (item.type === "input") {
      const sample = editor.get().samples.find((s) => s.id === "nuclei-2d") ?? editor.get().samples.find((s) => s.kind !== "labels");
      addInputNode(item.kind, at, item.kind === "ndarray" && sample ? { id: sample.id, axes: sample.axes } : undefined);
    } else addOutputNode(at);
  };
  // keys work wherever the focus is in the app (not while typing, nor under a dialog)
  useEffect(() => {
    const onKeyDown = (e: KeyboardEvent) => {
      if (editable(e.target) || app().dialogs.length || document.querySelector(".sf-modal")) return;
      const mod = e.ctrlKey || e.metaKey;
      const key = e.key.toLowerCase();
      const selected = editor.get().nodes.some((n) => n.selected) || editor.get().edges.some((x) => x.selected);
      const textSelected = !(window.getSelection()?.isCollapsed ?? true);
      if (mod && key === "z" && !e.shiftKey) undo();
      else if ((mod && key === "z" && e.shiftKey) || (mod && key === "y")) redo();
      else if (mod && key === "c" && selected && !textSelected) {
        const n = copySelected();
        addLog("info", "workflow", `copied ${n} node${n === 1 ? "" : "s"}`);
      } else if (mod && key === "v") {
        if (!paste()) return;
      } else if (mod && key === "a") editor.set((s) => ({ nodes: s.nodes.map((n) => ({ ...n, selected: true })) }));
      else if ((e.key === "Delete" || e.key === "Backspace") && selected) removeSelected();
      else return;
      e.preventDefault();
    };
    window.addEventListener("keydown", onKeyDown);
    return () => window.removeEventListener("keydown", onKeyDown);
  }, []);
  const empty = nodes.length === 0;
  return (
    <div className="sf-wf-main">
      <Toolbar onOpen={setLibrary} />
      <PinBanner />
      {notice && (
        <div className={`sf-wf-notice sf-wf-notice-${notice.level}`} data-testid="wf-notice">
          {notice.text}
          <button className="sf-mini" onClick={() => editor.set({ notice: null })} aria-label="dismiss">
            ✕
          </button>
        </div>
      )}
      <div className="sf-wf-body-row">
        <Palette onAdd={(item) => add(item)} />
        <div
          className="sf-wf-canvas"
          ref={box}
          tabIndex={0}
          onDragOver={(e) => {
            if (e.dataTransfer.types.includes(DRAG_TYPE)) {
              e.preventDefault();
              e.dataTransfer.dropEffect = "copy";
            }
          }}
          onDrop={(e) => {
            const raw = e.dataTransfer.getData(DRAG_TYPE);
            if (!raw) return;
            e.preventDefault();
            e.stopPropagation();
            box.current?.focus();
            const at = flow.screenToFlowPosition({ x: e.clientX, y: e.clientY });
            add(JSON.parse(raw) as PaletteItem, { x: at.x - 20, y: at.y - 20 });
          }}
          data-testid="wf-canvas"
        >
          <ReactFlow<FlowNode>
            nodes={nodes}
            edges={edges}
            nodeTypes={nodeTypes}
            onNodesChange={onNodesChange}
            onEdgesChange={onEdgesChange}
            onConnect={(c) => void connect(c)}
            onNodeDragStart={() => commit()}
            onNodeClick={(_, node: Node) => {
              box.current?.focus();
              const n = node as FlowNode;
              const source = n.type === "output" ? editor.get().edges.find((e) => e.target === n.id)?.source : n.id;
              if (source) void showNodeOutput(source);
            }}
            onPaneClick={() => box.current?.focus()}
            deleteKeyCode={null}
            selectionKeyCode="Shift"
            multiSelectionKeyCode={["Control", "Meta"]}
            minZoom={0.2}
            maxZoom={2}
            onInit={(instance) => {
              if (editor.get().nodes.length) void instance.fitView({ padding: 0.2, maxZoom: 1 });
            }}
            proOptions={{ hideAttribution: true }}
            defaultEdgeOptions={{ style: { strokeWidth: 2 } }}
          >
            <Background gap={20} color="#3a404a" />
            <Controls showInteractive={false} />
            {!empty && <MiniMap pannable zoomable style={{ height: 90, width: 140 }} />}
          </ReactFlow>
          {empty && (
            <div className="sf-wf-empty" data-testid="wf-empty">
              <h2>Build a workflow</h2>
              <ol>
                <li>Drag an operation from the list on the left onto this canvas (or click it).</li>
                <li>Add an <strong>Image input</strong> and connect its dot to the operation's image port.</li>
                <li>Press <strong>▶ Run</strong>. Click a finished node to see its result.</li>
              </ol>
              <p>
                Or start from an example: <button className="sf-primary" onClick={() => setLibrary("gallery")} data-testid="wf-empty-gallery">Open an example</button>
              </p>
            </div>
          )}
        </div>
      </div>
      {library && <LibraryDialog initialTab={library} onClose={() => setLibrary(null)} />}
    </div>
  );
}

export default function WorkflowView() {
  return (
    <div className="sf-wf" data-testid="workflow-view">
      <ReactFlowProvider>
        <Canvas />
      </ReactFlowProvider>
    </div>
  );
}
