// Data: built-in samples, files to open, the open images (view, overlay, download) and tables.

import { useEffect, useRef, useState } from "react";
import { getJson } from "../hub";
import { downloadImage, loadSample, openFile, type SampleInfo } from "../images";
import { addImage, addLog, get, set, useStore } from "../store";
import type { NdImage } from "../viewer/types";

export async function openFiles(files: FileList | File[]) {
  for (const file of Array.from(files)) {
    try {
      addImage(await openFile(get().token || "", file));
      addLog("info", "data", `opened ${file.name}`);
    } catch (err) {
      addLog("error", "data", `${file.name} could not be opened: ${err instanceof Error ? err.message : String(err)}`, undefined, true);
    }
  }
}

export function DataPanel() {
  const token = useStore((s) => s.token);
  const images = useStore((s) => s.images);
  const tables = useStore((s) => s.tables);
  const active = useStore((s) => s.activeImage);
  const overlay = useStore((s) => s.overlay);
  const activeTable = useStore((s) => s.activeTable);
  const view = useStore((s) => s.view);
  const [samples, setSamples] = useState<SampleInfo[]>([]);
  const [loading, setLoading] = useState("");
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => {
    if (!token) return;
    getJson<SampleInfo[]>(token, "/api/samples").then(setSamples, () => setSamples([]));
  }, [token]);
  const open = async (sample: SampleInfo) => {
    setLoading(sample.id);
    try {
      addImage(await loadSample(token || "", sample));
    } catch (err) {
      addLog("error", "data", `sample ${sample.name}: ${String(err)}`, undefined, true);
    } finally {
      setLoading("");
    }
  };
  const viewed = images.find((i) => i.id === active);
  const fits = (labels: NdImage) => !viewed || labels.shape.slice(-2).join() === viewed.shape.slice(-2).join();
  const save = (id: string, format: "tiff" | "png") => {
    const image = images.find((i) => i.id === id);
    if (image) downloadImage(token || "", image, format).catch((err) => addLog("error", "data", `download failed: ${String(err)}`, undefined, true));
  };
  return (
    <div className="sf-data">
      <div className="sf-section-head">
        <h2>Images</h2>
        <button onClick={() => input.current?.click()} data-testid="open-file">
          Open file…
        </button>
        <input ref={input} type="file" hidden multiple accept=".tif,.tiff,.png,.jpg,.jpeg" onChange={(e) => e.target.files && void openFiles(e.target.files)} data-testid="file-input" />
      </div>
      {images.length === 0 && <div className="sf-hint">Open a sample below, or drop TIFF/PNG files anywhere on the page.</div>}
      <ul className="sf-image-list" data-testid="image-list">
        {images.map((img) => (
          <li key={img.id} className={img.id === active && view === "viewer" ? "sf-selected" : img.id === overlay ? "sf-overlaid" : ""}>
            <button className="sf-link" onClick={() => set({ activeImage: img.id, overlay: img.id === overlay ? null : overlay, view: "viewer" })} title={img.source}>
              {img.name}
              {img.kind === "labels" && <span className="sf-badge sf-labels-badge">labels</span>}
            </button>
            <span className="sf-muted sf-small">
              {img.shape.join("×")} {img.dtype} {img.axes}
            </span>
            <span className="sf-row-actions">
              {img.kind === "labels" && img.id !== active && (
                <button
                  className="sf-mini"
                  onClick={() => set({ overlay: img.id === overlay ? null : img.id, view: "viewer" })}
                  disabled={!fits(img)}
                  title={fits(img) ? "Show as an overlay on the image being viewed" : "Not the size of the image being viewed"}
                >
                  {img.id === overlay ? "hide overlay" : "overlay"}
                </button>
              )}
              <button className="sf-mini" onClick={() => save(img.id, "tiff")} title="Download as TIFF (exact pixels)">
                TIFF
              </button>
              <button className="sf-mini" onClick={() => save(img.id, "png")} title="Download as PNG">
                PNG
              </button>
              <button className="sf-mini" onClick={() => set((s) => ({ images: s.images.filter((i) => i.id !== img.id), activeImage: s.activeImage === img.id ? null : s.activeImage, overlay: s.overlay === img.id ? null : s.overlay }))} title="Close">
                ✕
              </button>
            </span>
          </li>
        ))}
      </ul>
      {tables.length > 0 && (
        <>
          <h2>Tables</h2>
          <ul className="sf-image-list">
            {tables.map((t) => (
              <li key={t.id} className={t.id === activeTable && view === "table" ? "sf-selected" : ""}>
                <button className="sf-link" onClick={() => set({ activeTable: t.id, view: "table" })}>
                  {t.name}
                </button>
                <span className="sf-muted sf-small">{t.rows.length} rows</span>
                <span className="sf-row-actions">
                  <button className="sf-mini" title="Close" onClick={() => set((s) => ({ tables: s.tables.filter((x) => x.id !== t.id), activeTable: s.activeTable === t.id ? null : s.activeTable, view: s.view === "table" && s.activeTable === t.id ? "viewer" : s.view }))}>
                    ✕
                  </button>
                </span>
              </li>
            ))}
          </ul>
        </>
      )}
      <h2>Sample images</h2>
      <ul className="sf-samples">
        {samples.map((s) => (
          <li key={s.id}>
            <button className="sf-link" onClick={() => void open(s)} disabled={loading === s.id} data-testid={`sample-${s.id}`}>
              {s.name}
            </button>
            <div className="sf-muted sf-small" title={`${s.description}\nsource: ${s.source}\nlicence: ${s.licence}`}>
              {s.shape.join("×")} {s.dtype} · {s.licence.split(",")[0]}
            </div>
          </li>
        ))}
      </ul>
    </div>
  );
}
