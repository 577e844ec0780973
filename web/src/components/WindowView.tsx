// Tabs over the centre (viewer, tables, windows) and window plugins' iframes.

import { useEffect, useRef } from "react";
import { set, useStore } from "../store";
import { closeWindow, windowFrame } from "../frames";
import { Markdown } from "./Markdown";

export function WindowTabs() {
  const view = useStore((s) => s.view);
  const windows = useStore((s) => s.windows);
  const table = useStore((s) => s.tables.find((t) => t.id === s.activeTable));
  return (
    <nav className="sf-tabs">
      <button className={view === "viewer" ? "sf-tab sf-selected" : "sf-tab"} onClick={() => set({ view: "viewer" })} data-testid="tab-viewer">
        Viewer
      </button>
      <button className={view === "workflow" ? "sf-tab sf-selected" : "sf-tab"} onClick={() => set({ view: "workflow" })} data-testid="tab-workflow">
        Workflow
      </button>
      {table && (
        <button className={view === "table" ? "sf-tab sf-selected" : "sf-tab"} onClick={() => set({ view: "table" })} data-testid="tab-table">
          Table
        </button>
      )}
      {windows.map((w) => (
        <span key={w.id} className={view === w.id ? "sf-tab sf-selected" : "sf-tab"}>
          <button className="sf-link" onClick={() => set({ view: w.id })} data-testid={`tab-window-${w.pluginId}`}>
            {w.name}
          </button>
          <button
            className="sf-mini"
            title="Close the window"
            onClick={() => {
              closeWindow(w.id);
              set((s) => ({ view: s.view === w.id ? "viewer" : s.view }));
            }}
          >
            ✕
          </button>
        </span>
      ))}
    </nav>
  );
}

export function WindowView({ id, visible }: { id: string; visible: boolean }) {
  const host = useRef<HTMLDivElement>(null);
  const win = useStore((s) => s.windows.find((w) => w.id === id));
  useEffect(() => {
    const frame = windowFrame(id);
    if (frame && host.current && frame.parentElement !== host.current) host.current.appendChild(frame);
  }, [id]);
  const kind = win?.kind ?? "frame";
  return (
    <div className="sf-window-box" style={{ display: visible ? "flex" : "none" }} data-testid={`window-box-${kind}`}>
      {win?.notes?.map((note) => (
        <div key={note} className="sf-window-note" data-testid="window-note">
          {note}
        </div>
      ))}
      {kind === "frame" && <div ref={host} className="sf-window" data-testid="window" />}
      {kind === "markdown" && (
        <div className="sf-window sf-window-markdown">
          <Markdown text={win?.text ?? ""} />
        </div>
      )}
      {kind === "note" && (
        <div className="sf-window sf-window-offline">
          <div className="sf-window-note" data-testid="window-note">
            <strong>This window cannot open.</strong> {win?.text}
          </div>
        </div>
      )}
    </div>
  );
}
