// The painting tools of editable labels, in the labels card of the viewer's side strip: tools, the current
// label and its colour, brush size, undo/redo, delete a label, save. Every button says its key (napari's keys).

import { memo, useState } from "react";
import { labelColor } from "./render";
import type { Tool } from "./labels";

export const TOOLS: { tool: Tool; name: string; keys: string; what: string }[] = [
  { tool: "paint", name: "Paint", keys: "P", what: "Paint the current label with a round brush (keys 2 or P)" },
  { tool: "erase", name: "Erase", keys: "E", what: "Erase to 0, unlabelled (keys 1 or E)" },
  { tool: "fill", name: "Fill", keys: "F", what: "Fill the touching region of the clicked label with the current label, in this plane (keys 4 or F)" },
  { tool: "pick", name: "Pick", keys: "L", what: "Pick the label under the pointer as the current label (keys 5 or L)" },
  { tool: "pan", name: "Pan", keys: "Z", what: "Drag to move the image; hold Space to pan with any tool (keys 6 or Z)" },
];

export interface LabelToolsProps {
  tool: Tool;
  onTool(tool: Tool): void;
  label: number;
  onLabel(label: number): void;
  onNewLabel(): void;
  brush: number;
  onBrush(size: number): void;
  canUndo: boolean;
  canRedo: boolean;
  onUndo(): void;
  onRedo(): void;
  onDeleteLabel(): void;
  /** keep the labels; null when the app cannot */
  onSave: (() => Promise<string>) | null;
}

export const MAX_BRUSH = 200;

export const LabelTools = memo(function LabelTools(p: LabelToolsProps) {
  const [saving, setSaving] = useState<{ state: "saving" | "saved" | "error"; text: string } | null>(null);
  const rgb = labelColor(p.label);
  const save = () => {
    if (!p.onSave) return;
    setSaving({ state: "saving", text: "Saving…" });
    p.onSave().then(
      (text) => setSaving({ state: "saved", text }),
      (err) => setSaving({ state: "error", text: err instanceof Error ? err.message : String(err) }),
    );
  };
  return (
    <div className="sf-viewer-tools" data-testid="label-tools">
      <div className="sf-viewer-toolrow" role="toolbar" aria-label="Label tools">
        {TOOLS.map((t) => (
          <button key={t.tool} type="button" data-testid={`label-tool-${t.tool}`} title={t.what}
            className={p.tool === t.tool ? "sf-viewer-active" : undefined} aria-pressed={p.tool === t.tool}
            onClick={() => p.onTool(t.tool)}>
            {t.name} <kbd>{t.keys}</kbd>
          </button>
        ))}
      </div>
      <div className="sf-viewer-row">
        <span className="sf-viewer-key">Label</span>
        <i className="sf-viewer-swatch" data-testid="label-swatch" title={rgb ? `Colour of label ${p.label}` : "0 is unlabelled"}
          style={rgb ? { background: `rgb(${rgb.join(",")})` } : undefined} />
        <input type="number" className="sf-viewer-num" data-testid="label-value" min={0} step={1} value={p.label}
          title="The label painted and filled (- and = step it)"
          onChange={(e) => {
            const v = Math.floor(Number(e.target.value));
            if (Number.isFinite(v) && v >= 0 && v < 2 ** 31) p.onLabel(v);
          }} />
        <button type="button" data-testid="label-new" onClick={p.onNewLabel} title="A new object: the next unused label (key M)">
          New <kbd>M</kbd>
        </button>
      </div>
      <label className="sf-viewer-row" title="Brush diameter in image pixels ([ and ] change it)">
        <span className="sf-viewer-key">Brush</span>
        <input type="range" data-testid="label-brush" min={1} max={60} step={1} value={Math.min(60, p.brush)}
          onChange={(e) => p.onBrush(Number(e.target.value))} />
        <span className="sf-viewer-num">{p.brush} px</span>
      </label>
      <div className="sf-viewer-toolrow">
        <button type="button" data-testid="label-undo" disabled={!p.canUndo} onClick={p.onUndo} title="Undo the last stroke (Ctrl+Z)">
          Undo
        </button>
        <button type="button" data-testid="label-redo" disabled={!p.canRedo} onClick={p.onRedo} title="Redo (Ctrl+Shift+Z)">
          Redo
        </button>
        <button type="button" data-testid="label-delete" disabled={p.label === 0} onClick={p.onDeleteLabel}
          title={`Remove label ${p.label} from every plane (it becomes 0)`}>
          Delete {p.label}
        </button>
      </div>
      {p.onSave && (
        <div className="sf-viewer-toolrow">
          <button type="button" className="sf-viewer-save" data-testid="label-save" onClick={save}
            disabled={saving?.state === "saving"} title="Save these labels on the hub, beside their image (as TIFF)">
            Save labels
          </button>
          {saving && (
            <span className={`sf-viewer-savestate sf-viewer-${saving.state}`} data-testid="label-save-state" data-state={saving.state}>
              {saving.text}
            </span>
          )}
        </div>
      )}
    </div>
  );
});
