// Install a plugin from a URL (also `/?plugin=URL`): preview what it is, install only on Install/Trust.

import { useEffect, useRef, useState } from "react";
import { errorText, installDependencyUrl, installUrl, previewUrl, refreshPlugins } from "../actions";
import { useStore } from "../store";
import { compareInstalled, fetchTarget, firstLook, isLocalAddress, parseDependencies, type Dependency } from "../dependencies";
import { get } from "../store";
import type { PluginManifest } from "../types";
import { Markdown } from "./Markdown";
import { installPackage, isPackageUrl, ModelPreviewCard, previewPackage, type ModelPreview } from "./ModelPackage";

export { isLocalAddress }; // (it lives in ../dependencies now; the workflow view imports it from here)

/** A `dependencies` entry of the plugin being previewed, as the dialog shows it. */
type DepRow = {
  dep: Dependency;
  state: "installed" | "unavailable" | "confirm" | "fetching" | "ready" | "failed" | "done";
  message?: string;
  installed?: { name: string; version?: string };
  manifest?: PluginManifest;
  publicOnly?: boolean;
  replaces?: { name: string; version?: string };
  checked?: boolean;
};

function DependencyRow({ row, index, onToggle, onFetch }: { row: DepRow; index: number; onToggle: () => void; onFetch: () => void }) {
  const { dep, manifest } = row;
  const where = dep.kind === "url" ? dep.url : dep.entry;
  return (
    <li className="sf-dep" style={{ margin: "6px 0", paddingLeft: 8, borderLeft: "3px solid var(--line)" }} data-testid={`dep-${index}`} data-state={row.state}>
      <label style={{ display: "flex", alignItems: "baseline", gap: 6, flexWrap: "wrap" }}>
        {row.state === "ready" && (
          <input type="checkbox" style={{ width: "auto", margin: 0 }} checked={!!row.checked} onChange={onToggle} data-testid="dep-check" />
        )}
        <strong>{manifest?.name ?? dep.name}</strong>
        {manifest && (
          <span className="sf-muted">
            {manifest.version} · {manifest.type} · id <code>{manifest.id}</code>
          </span>
        )}
        {row.state === "installed" && <span className="sf-muted">· installed{row.installed?.version ? ` (${row.installed.version})` : ""}</span>}
        {row.state === "done" && <span className="sf-muted">· installed now</span>}
        {row.state === "fetching" && <span className="sf-muted">· fetching…</span>}
      </label>
      {where !== dep.name && <div className="sf-small sf-muted">{where}</div>}
      {manifest && <div className="sf-small sf-muted">sha256 {manifest.sha256}</div>}
      {manifest && manifest.requirements.length > 0 && <div className="sf-small">requirements: {manifest.requirements.join(", ")}</div>}
      {row.replaces && (
        <div className="sf-small sf-warning">
          replaces the installed {row.replaces.name} {row.replaces.version}: left unticked
        </div>
      )}
      {row.state === "confirm" && (
        <div className="sf-small">
          On a computer in your own network ({new URL(where).host}).{" "}
          <button type="button" onClick={onFetch} data-testid="dep-fetch">
            Preview it
          </button>
        </div>
      )}
      {row.message && (
        <div className={row.state === "failed" ? "sf-small sf-error" : "sf-small sf-muted"} data-testid="dep-message">
          {row.message}
          {row.state === "failed" && row.publicOnly && isLocalAddress(where) === false && /private|loopback|confirm/i.test(row.message) && (
            <>
              {" "}
              <button type="button" onClick={onFetch} data-testid="dep-fetch">
                Fetch it anyway
              </button>
            </>
          )}
        </div>
      )}
    </li>
  );
}

export function InstallDialog({ initialUrl, onClose }: { initialUrl: string; onClose: () => void }) {
  const [url, setUrl] = useState(initialUrl);
  const [manifest, setManifest] = useState<PluginManifest | null>(null);
  const [previewed, setPreviewed] = useState<{ url: string; publicOnly: boolean } | null>(null);
  const existing = useStore((s) => s.plugins.find((p) => p.id === manifest?.id));
  const [error, setError] = useState("");
  const [busy, setBusy] = useState("");
  const [deps, setDeps] = useState<DepRow[]>([]);
  const [installedMain, setInstalledMain] = useState(false);
  const [model, setModel] = useState<ModelPreview | null>(null); // a bioimage.io model package instead
  const [modelSource, setModelSource] = useState<string>("");
  const replacesModel = useStore((s) => s.plugins.find((p) => p.id === model?.id));
  const generation = useRef(0); // a new preview makes the answers for an older one stale
  const patchDep = (gen: number, index: number, patch: Partial<DepRow>) => {
    if (gen === generation.current) setDeps((rows) => rows.map((r, i) => (i === index ? { ...r, ...patch } : r)));
  };
  // each dependency's file is previewed the same way as the plugin itself: fetched and parsed, nothing runs
  const fetchDep = async (gen: number, index: number, dep: Dependency, publicOnly: boolean) => {
    const target = fetchTarget(dep);
    if (target === null) return;
    patchDep(gen, index, { state: "fetching", message: undefined, publicOnly });
    try {
      const found = await previewUrl(target, publicOnly);
      const { same, replaces } = compareInstalled(found, get().plugins);
      if (same) patchDep(gen, index, { state: "installed", manifest: found, installed: same });
      else patchDep(gen, index, { state: "ready", manifest: found, replaces, checked: !replaces });
    } catch (err) {
      patchDep(gen, index, {
        state: "failed",
        message: `cannot be previewed, so it is not installed (the plugin still is): ${errorText(err)}`,
      });
    }
  };
  const previewModel = async (source: File | string) => {
    const gen = ++generation.current;
    setBusy("preview");
    setError("");
    setManifest(null);
    setModel(null);
    try {
      const found = await previewPackage(source);
      if (gen !== generation.current) return;
      setModel(found);
      setModelSource(typeof source === "string" ? source : `file:${source.name}`);
    } catch (err) {
      if (gen === generation.current) setError(errorText(err));
    } finally {
      if (gen === generation.current) setBusy("");
    }
  };
  const preview = async (target: string, publicOnly = false, tag?: string) => {
    if (isPackageUrl(target)) return previewModel(target);
    const gen = ++generation.current;
    setBusy("preview");
    setError("");
    setModel(null);
    setManifest(null);
    setPreviewed(null);
    setDeps([]);
    setInstalledMain(false);
    try {
      const found = await previewUrl(target, publicOnly, tag);
      if (gen !== generation.current) return;
      setManifest(found);
      setPreviewed({ url: target, publicOnly });
      const rows: DepRow[] = parseDependencies(found.dependencies).map((dep) => {
        const look = firstLook(dep, get().plugins, { url: target, publicOnly });
        if (look.state === "installed") return { dep, state: "installed", installed: look.plugin };
        if (look.state === "unavailable") return { dep, state: "unavailable", message: look.message };
        return { dep, state: look.publicOnly === null ? "confirm" : "fetching", publicOnly: look.publicOnly ?? undefined };
      });
      setDeps(rows);
      rows.forEach((row, i) => {
        if (row.state === "fetching") void fetchDep(gen, i, row.dep, row.publicOnly ?? true);
      });
    } catch (err) {
      if (gen === generation.current) setError(errorText(err));
    } finally {
      if (gen === generation.current) setBusy("");
    }
  };
  // a shared link previews at once, unless it points into the user's own network
  useEffect(() => {
    if (initialUrl && !isLocalAddress(initialUrl)) void preview(initialUrl, true);
  }, [initialUrl]);
  const install = async () => {
    if (model) {
      setBusy("install");
      setError("");
      try {
        await installPackage(model); // exactly the package previewed: the hub kept it by its sha256
        await refreshPlugins();
        onClose();
      } catch (err) {
        setError(errorText(err));
      } finally {
        setBusy("");
      }
      return;
    }
    if (!manifest || !previewed) return;
    setBusy("install");
    setError("");
    try {
      if (!installedMain) await installUrl(previewed.url, manifest.sha256, previewed.publicOnly, manifest.tag || undefined); // exactly what was shown
      setInstalledMain(true);
    } catch (err) {
      setError(errorText(err));
      setBusy("");
      return;
    }
    // then the dependencies the user left ticked, each as previewed; one that fails does not undo the others
    const gen = generation.current;
    const failed: string[] = [];
    for (const [i, row] of deps.entries()) {
      const target = fetchTarget(row.dep);
      if (row.state !== "ready" || !row.checked || !row.manifest || target === null) continue;
      try {
        await installDependencyUrl(target, row.manifest.sha256, row.publicOnly ?? true, manifest.name);
        patchDep(gen, i, { state: "done", checked: false });
      } catch (err) {
        failed.push(`${row.manifest.name}: ${errorText(err)}`);
        patchDep(gen, i, { state: "failed", checked: false, message: `not installed: ${errorText(err)}` });
      }
    }
    setBusy("");
    if (failed.length) setError(`${manifest.name} is installed; these dependencies are not: ${failed.join("; ")}`);
    else onClose();
  };
  const ticked = deps.filter((r) => r.state === "ready" && r.checked).length;
  return (
    <div className="sf-modal" role="dialog" aria-label="Install a plugin" data-testid="install-dialog">
      <div className="sf-modal-box sf-wide">
        <h3>Install a plugin or a model</h3>
        <form
          className="sf-url-row"
          onSubmit={(e) => {
            e.preventDefault();
            void preview(url);
          }}
        >
          <input value={url} onChange={(e) => setUrl(e.target.value)} placeholder="https://… (a .py or .imjoy.html file, GitHub and gist links work; a model package .zip)" data-testid="install-url" />
          <button disabled={!url || busy !== ""} data-testid="install-preview">
            {busy === "preview" ? "Fetching…" : "Preview"}
          </button>
        </form>
        <div className="sf-small">
          or a bioimage.io model package from this computer:{" "}
          <label className="sf-file-button">
            <input
              type="file"
              accept=".zip,application/zip"
              style={{ display: "none" }}
              data-testid="install-model-file"
              onChange={(e) => {
                const file = e.target.files?.[0];
                if (file) void previewModel(file);
                e.target.value = "";
              }}
            />
            <span className="sf-link">choose a .zip…</span>
          </label>
        </div>
        {initialUrl && isLocalAddress(initialUrl) && !manifest && !busy && (
          <div className="sf-warning">
            This link points to a computer on your own network ({new URL(initialUrl).host}). Press Preview to let the
            hub fetch it.
          </div>
        )}
        {error && <div className="sf-error" data-testid="install-error">{error}</div>}
        {model && (
          <ModelPreviewCard model={model} replaces={replacesModel ? `${replacesModel.name} ${replacesModel.version}` : undefined} />
        )}
        {manifest && (
          <div className="sf-preview" data-testid="install-preview-card">
            <div className="sf-plugin-title">
              <h2>{manifest.name}</h2>
              <span className="sf-muted">
                {manifest.version} · {manifest.type} · id <code>{manifest.id}</code>
              </span>
            </div>
            <p>{manifest.description}</p>
            {manifest.tags.length > 1 && manifest.config?.tags && (
              <label className="sf-small" style={{ display: "flex", gap: 6, alignItems: "center" }}>
                variant (ImJoy tag):
                <select
                  style={{ width: "auto" }}
                  value={manifest.tag}
                  disabled={busy !== "" || installedMain}
                  onChange={(e) => previewed && void preview(previewed.url, previewed.publicOnly, e.target.value)}
                  data-testid="install-tag"
                >
                  {manifest.tags.map((t) => (
                    <option key={t}>{t}</option>
                  ))}
                </select>
                <span className="sf-muted">its requirements and dependencies follow the choice</span>
              </label>
            )}
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
            {deps.length > 0 && (
              <div className="sf-deps" data-testid="install-deps">
                <div className="sf-small">
                  <strong>dependencies</strong> (other plugins it uses; ticked ones are installed and trusted with it):
                </div>
                <ul style={{ listStyle: "none", paddingLeft: 0, margin: "4px 0" }}>
                  {deps.map((row, i) => (
                    <DependencyRow
                      key={i}
                      row={row}
                      index={i}
                      onToggle={() => patchDep(generation.current, i, { checked: !row.checked })}
                      onFetch={() => void fetchDep(generation.current, i, row.dep, false)}
                    />
                  ))}
                </ul>
              </div>
            )}
            <div className="sf-warning">
              {deps.some((r) => r.manifest) ? "Nothing from these files has run." : "Nothing from this file has run."} Installing lets its code run on this computer with your permissions:
              install only plugins from people you trust.
            </div>
          </div>
        )}
        <div className="sf-actions">
          <button onClick={onClose}>{installedMain ? "Close" : "Cancel"}</button>
          <button className="sf-primary" disabled={model ? busy !== "" || (modelSource !== url && !modelSource.startsWith("file:")) : !manifest || !previewed || previewed.url !== url || busy !== "" || (installedMain && ticked === 0)} onClick={() => void install()} data-testid="install-confirm">
            {busy === "install" ? "Installing…" : installedMain ? "Install ticked dependencies" : ticked ? `Install and trust (${ticked + 1} plugins)` : "Install and trust"}
          </button>
        </div>
      </div>
    </div>
  );
}
