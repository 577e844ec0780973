// Install a plugin from a URL (also `/?plugin=URL`): preview what it is, install only on Install/Trust.

import { useEffect, useState } from "react";
import { errorText, installUrl, previewUrl } from "../actions";
import { useStore } from "../store";
import type { PluginManifest } from "../types";
import { Markdown } from "./Markdown";

/** Loopback and private-network addresses are fetched only after the user says so. */
export function isLocalAddress(url: string): boolean {
  try {
    const host = new URL(url).hostname.replace(/^\[|\]$/g, "");
    return (
      host === "localhost" ||
      host.endsWith(".local") ||
      /^127\./.test(host) ||
      /^10\./.test(host) ||
      /^192\.168\./.test(host) ||
      /^172\.(1[6-9]|2\d|3[01])\./.test(host) ||
      /^169\.254\./.test(host) ||
      host === "::1" ||
      /^f[cd]/i.test(host) ||
      host === "0.0.0.0"
    );
  } catch {
    return false;
  }
}

export function InstallDialog({ initialUrl, onClose }: { initialUrl: string; onClose: () => void }) {
  const [url, setUrl] = useState(initialUrl);
  const [manifest, setManifest] = useState<PluginManifest | null>(null);
  const [previewed, setPreviewed] = useState<{ url: string; publicOnly: boolean } | null>(null);
  const existing = useStore((s) => s.plugins.find((p) => p.id === manifest?.id));
  const [error, setError] = useState("");
  const [busy, setBusy] = useState("");
  const preview = async (target: string, publicOnly = false) => {
    setBusy("preview");
    setError("");
    setManifest(null);
    setPreviewed(null);
    try {
      setManifest(await previewUrl(target, publicOnly));
      setPreviewed({ url: target, publicOnly });
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy("");
    }
  };
  // a shared link previews at once, unless it points into the user's own network
  useEffect(() => {
    if (initialUrl && !isLocalAddress(initialUrl)) void preview(initialUrl, true);
  }, [initialUrl]);
  const install = async () => {
    if (!manifest || !previewed) return;
    setBusy("install");
    setError("");
    try {
      await installUrl(previewed.url, manifest.sha256, previewed.publicOnly); // exactly what was shown
      onClose();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy("");
    }
  };
  return (
    <div className="sf-modal" role="dialog" aria-label="Install a plugin" data-testid="install-dialog">
      <div className="sf-modal-box sf-wide">
        <h3>Install a plugin from a URL</h3>
        <form
          className="sf-url-row"
          onSubmit={(e) => {
            e.preventDefault();
            void preview(url);
          }}
        >
          <input value={url} onChange={(e) => setUrl(e.target.value)} placeholder="https://… (a .py or .imjoy.html file, GitHub and gist links work)" data-testid="install-url" />
          <button disabled={!url || busy !== ""} data-testid="install-preview">
            {busy === "preview" ? "Fetching…" : "Preview"}
          </button>
        </form>
        {initialUrl && isLocalAddress(initialUrl) && !manifest && !busy && (
          <div className="sf-warning">
            This link points to a computer on your own network ({new URL(initialUrl).host}). Press Preview to let the
            hub fetch it.
          </div>
        )}
        {error && <div className="sf-error" data-testid="install-error">{error}</div>}
        {manifest && (
          <div className="sf-preview" data-testid="install-preview-card">
            <div className="sf-plugin-title">
              <h2>{manifest.name}</h2>
              <span className="sf-muted">
                {manifest.version} · {manifest.type} · id <code>{manifest.id}</code>
              </span>
            </div>
            <p>{manifest.description}</p>
            {existing && (
              <div className="sf-warning" data-testid="install-replaces">
                This replaces the plugin <strong>{existing.name}</strong> {existing.version} (
                {existing.source_url ? `installed from ${existing.source_url}` : "built in"}), which has the same id:
                everything that uses <code>{manifest.id}</code> will run the new code.
              </div>
            )}
            <div className="sf-small">
              source:{" "}
              <a href={manifest.source_url || url} target="_blank" rel="noreferrer noopener">
                {manifest.source_url || url}
              </a>
            </div>
            <div className="sf-small">requirements: {manifest.requirements.length ? manifest.requirements.join(", ") : "none"}</div>
            <div className="sf-small">operations: {manifest.ops.map((o) => o.title || o.name).join(", ") || "none declared"}</div>
            <div className="sf-small sf-muted">sha256 {manifest.sha256}</div>
            {manifest.docs && (
              <details>
                <summary>Documentation</summary>
                <Markdown text={manifest.docs} />
              </details>
            )}
            <div className="sf-warning">
              Nothing from this file has run. Installing lets its code run on this computer with your permissions:
              install only plugins from people you trust.
            </div>
          </div>
        )}
        <div className="sf-actions">
          <button onClick={onClose}>Cancel</button>
          <button className="sf-primary" disabled={!manifest || !previewed || previewed.url !== url || busy !== ""} onClick={() => void install()} data-testid="install-confirm">
            {busy === "install" ? "Installing…" : "Install and trust"}
          </button>
        </div>
      </div>
    </div>
  );
}
