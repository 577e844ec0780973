// Open a workflow: the examples of the gallery, or one saved on the hub (any of its versions).

import { useEffect, useState } from "react";
import { errorText } from "../actions";
import { Markdown } from "../components/Markdown";
import { listGallery, listSaved, listVersions, openGallery, openSaved, type GalleryItem, type Saved, type Version } from "./library";

function when(value: string | number | null): string {
  if (value === null || value === undefined) return "";
  const date = typeof value === "number" ? new Date(value < 1e12 ? value * 1000 : value) : new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}

function SavedRow({ item, onOpen }: { item: Saved; onOpen: (name: string, version: string | number | null) => void }) {
  const [versions, setVersions] = useState<Version[] | null>(null);
  const [error, setError] = useState("");
  const toggle = () => {
    if (versions) return setVersions(null);
    listVersions(item.name).then(setVersions, (err) => setError(errorText(err)));
  };
  return (
    <li className="sf-wf-lib-row" data-testid={`wf-saved-${item.name}`}>
      <div className="sf-wf-lib-line">
        <button className="sf-link" onClick={() => onOpen(item.name, null)} data-testid="wf-saved-open">
          {item.title || item.name}
        </button>
        <span className="sf-muted sf-small">
          {item.name} · {item.versions} version{item.versions === 1 ? "" : "s"} · {when(item.updated)}
        </span>
        <button className="sf-mini" onClick={toggle} data-testid="wf-saved-versions">
          {versions ? "hide versions" : "versions"}
        </button>
      </div>
      {error && <div className="sf-error">{error}</div>}
      {versions && (
        <ul className="sf-wf-versions">
          {[...versions].reverse().map((v) => (
            <li key={String(v.version)}>
              <button className="sf-mini" onClick={() => onOpen(item.name, v.version)} data-testid={`wf-version-${v.version}`}>
                open version {String(v.version)}
              </button>{" "}
              <span className="sf-muted sf-small">
                {when(v.saved)} · {v.size} bytes · {v.sha256.slice(0, 10)}
              </span>
            </li>
          ))}
        </ul>
      )}
    </li>
  );
}

export function LibraryDialog({ initialTab, onClose }: { initialTab: "gallery" | "saved"; onClose: () => void }) {
  const [tab, setTab] = useState(initialTab);
  const [saved, setSaved] = useState<Saved[] | null>(null);
  const [gallery, setGallery] = useState<GalleryItem[] | null>(null);
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    listSaved().then(setSaved, (err) => setError(`saved workflows: ${errorText(err)}`));
    listGallery().then(setGallery, (err) => setError(`gallery: ${errorText(err)}`));
  }, []);
  const open = async (load: () => Promise<void>) => {
    setBusy(true);
    setError("");
    try {
      await load();
      onClose();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="sf-modal" role="dialog" aria-label="Open a workflow" data-testid="wf-library" onKeyDown={(e) => e.key === "Escape" && onClose()}>
      <div className="sf-modal-box sf-wide">
        <h3>Open a workflow</h3>
        <nav className="sf-wf-lib-tabs">
          <button className={tab === "gallery" ? "sf-selected" : ""} onClick={() => setTab("gallery")} data-testid="wf-tab-gallery">
            Examples
          </button>
          <button className={tab === "saved" ? "sf-selected" : ""} onClick={() => setTab("saved")} data-testid="wf-tab-saved">
            Saved on this hub
          </button>
        </nav>
        {error && <div className="sf-error">{error}</div>}
        {tab === "gallery" && (
          <ul className="sf-wf-lib">
            {gallery === null && <li className="sf-muted">loading…</li>}
            {gallery?.length === 0 && <li className="sf-muted">No examples on this hub.</li>}
            {gallery?.map((g) => (
              <li key={g.name} className="sf-wf-lib-row" data-testid={`wf-gallery-${g.name}`}>
                <div className="sf-wf-lib-line">
                  <strong>{g.title || g.name}</strong>
                  <button className="sf-primary sf-mini" disabled={busy} onClick={() => void open(() => openGallery(g.name))} data-testid="wf-gallery-open">
                    Open
                  </button>
                </div>
                {g.description && <Markdown text={g.description} />}
              </li>
            ))}
          </ul>
        )}
        {tab === "saved" && (
          <ul className="sf-wf-lib">
            {saved === null && <li className="sf-muted">loading…</li>}
            {saved?.length === 0 && <li className="sf-muted">Nothing saved yet: build a workflow and press Save.</li>}
            {saved?.map((s) => (
              <SavedRow key={s.name} item={s} onOpen={(name, version) => void open(() => openSaved(name, version))} />
            ))}
          </ul>
        )}
        <div className="sf-actions">
          <button onClick={onClose}>Close</button>
        </div>
      </div>
    </div>
  );
}
