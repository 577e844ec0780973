// Data: built-in samples, files to open, the open images (view, overlay, paint labels, download), the labels
// saved for the image being viewed, and tables.

import { useEffect, useRef, useState } from "react";
import {
  createLabels, deleteAnnotation, downloadAnnotation, listAnnotations, openAnnotation, saveLabels, type AnnotationInfo,
} from "../annotations";
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
  const links = useStore((s) => s.annotationLinks);
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
  const failed = (what: string) => (err: unknown) =>
    addLog("error", "annotations", `${what}: ${err instanceof Error ? err.message : String(err)}`, undefined, true);
  const paint = (image: NdImage) => void createLabels(image).catch(failed("new labels"));
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
              {links[img.id]?.dirty && <span className="sf-badge sf-unsaved-badge" title="Painted since it was last saved">unsaved</span>}
            </button>
            <span className="sf-muted sf-small">
              {img.shape.join("×")} {img.dtype} {img.axes}
            </span>
            <span className="sf-row-actions">
              {img.kind === "image" && (
                <button className="sf-mini" data-testid="paint-labels" onClick={() => paint(img)}
                  title="Paint labels on this image: new empty labels of its size, one value per object">
                  paint labels
                </button>
              )}
              {links[img.id] && (
                <button className="sf-mini" data-testid="save-labels"
                  onClick={() => void saveLabels(img).then((text) => addLog("info", "annotations", text), failed("saving labels"))}
                  title={`Save on the hub beside ${links[img.id].imageName} as “${links[img.id].name}” (TIFF)`}>
                  save
                </button>
              )}
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
      {viewed && viewed.kind === "image" && <SavedLabels image={viewed} />}
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

/** The labels saved on the hub for the image being viewed: open (to see or go on painting), download, delete. */
function SavedLabels({ image }: { image: NdImage }) {
  const version = useStore((s) => s.annotationsVersion);
  const [saved, setSaved] = useState<AnnotationInfo[] | null>(null);
  useEffect(() => {
    let current = true;
    setSaved(null);
    listAnnotations(image).then((list) => current && setSaved(list), () => current && setSaved([]));
    return () => {
      current = false;
    };
  }, [image, version]);
  const failed = (what: string) => (err: unknown) =>
    addLog("error", "annotations", `${what}: ${err instanceof Error ? err.message : String(err)}`, undefined, true);
  if (!saved || saved.length === 0) return null;
  return (
    <>
      <h2>Saved labels of this image</h2>
      <ul className="sf-image-list" data-testid="saved-annotations">
        {saved.map((a) => (
          <li key={a.name} data-testid={`annotation-${a.name}`}>
            <button className="sf-link" data-testid="annotation-open" onClick={() => void openAnnotation(a, image).catch(failed(`opening ${a.name}`))}
              title="Open over the image, to see or go on painting">
              {a.name}
            </button>
            <span className="sf-muted sf-small">
              {a.shape.join("×")} int32 · saved {a.modified.replace("T", " ").replace("Z", " UTC")}
            </span>
            <span className="sf-row-actions">
              <button className="sf-mini" onClick={() => void downloadAnnotation(a).catch(failed("download"))} title="Download as TIFF (int32 labels)">
                TIFF
              </button>
              <button className="sf-mini" title="Delete from the hub"
                onClick={() => window.confirm(`Delete the saved labels “${a.name}” of ${a.image_name}?`) && void deleteAnnotation(a).catch(failed("delete"))}>
                ✕
              </button>
            </span>
          </li>
        ))}
      </ul>
    </>
  );
}
