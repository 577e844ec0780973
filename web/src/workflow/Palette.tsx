// Every op of every Python plugin, searchable and grouped by plugin, plus workflow inputs and outputs:
// drag one onto the canvas, or click it to add it in the middle of the view.

import { useMemo, useState } from "react";
import { useStore } from "../store";

export const DRAG_TYPE = "application/x-scopeflow-node";

export type PaletteItem = { type: "op"; plugin: string; op: string } | { type: "input"; kind: "ndarray" | "value" } | { type: "output" };

function Item({ item, title, note, onAdd, testId }: { item: PaletteItem; title: string; note?: string; onAdd: (item: PaletteItem) => void; testId: string }) {
  return (
    <li>
      <button
        className="sf-wf-item"
        draggable
        onDragStart={(e) => {
          e.dataTransfer.setData(DRAG_TYPE, JSON.stringify(item));
          e.dataTransfer.effectAllowed = "copy";
        }}
        onClick={() => onAdd(item)}
        title={note ? `${note}\n\nDrag onto the canvas, or click to add` : "Drag onto the canvas, or click to add"}
        data-testid={testId}
      >
        {title}
      </button>
    </li>
  );
}

export function Palette({ onAdd }: { onAdd: (item: PaletteItem) => void }) {
  const plugins = useStore((s) => s.plugins);
  const [query, setQuery] = useState("");
  const groups = useMemo(() => {
    const words = query.trim().toLowerCase().split(/\s+/).filter(Boolean);
    return plugins
      .filter((p) => p.lang === "python" && p.ops.length > 0)
      .map((p) => ({
        plugin: p,
        ops: p.ops.filter((op) => {
          const text = `${p.name} ${p.id} ${p.tags.join(" ")} ${op.name} ${op.title ?? ""} ${op.description}`.toLowerCase();
          return words.every((w) => text.includes(w));
        }),
      }))
      .filter((g) => g.ops.length > 0);
  }, [plugins, query]);
  return (
    <div className="sf-wf-palette" data-testid="wf-palette">
      <input className="sf-search" placeholder="Search operations" value={query} onChange={(e) => setQuery(e.target.value)} data-testid="wf-palette-search" />
      <h3>Workflow</h3>
      <ul>
        <Item item={{ type: "input", kind: "ndarray" }} title="Image input" note="An image the workflow starts from (a sample by default)" onAdd={onAdd} testId="wf-add-image-input" />
        <Item item={{ type: "input", kind: "value" }} title="Value input" note="A number or text given to the workflow" onAdd={onAdd} testId="wf-add-value-input" />
        <Item item={{ type: "output" }} title="Output" note="A named result of the workflow" onAdd={onAdd} testId="wf-add-output" />
      </ul>
      {groups.map(({ plugin, ops }) => (
        <div key={plugin.id} className="sf-wf-group">
          <h3 title={plugin.description}>{plugin.name}</h3>
          <ul>
            {ops.map((op) => (
              <Item
                key={op.name}
                item={{ type: "op", plugin: plugin.id, op: op.name }}
                title={op.title || op.name}
                note={op.description}
                onAdd={onAdd}
                testId={`wf-palette-${plugin.id}-${op.name}`}
              />
            ))}
          </ul>
        </div>
      ))}
      {groups.length === 0 && <div className="sf-hint">No operation matches “{query}”.</div>}
    </div>
  );
}
