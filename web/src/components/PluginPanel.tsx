// The plugins: a list, and the selected plugin's status, actions, ops, plots, log and docs.

import { useMemo, useState } from "react";
import { choosePluginTag, pluginAction, removePlugin, shareLink } from "../actions";
import { addLog, set, useStore } from "../store";
import type { PluginManifest } from "../types";
import { EnvironmentInfo } from "./Environment";
import { Markdown } from "./Markdown";
import { OpForm } from "./OpForm";
import { PlotView } from "./PlotView";
import { VerifyButton } from "./Verify";

const STATE_LABEL: Record<string, string> = {
  stopped: "not started",
  starting: "starting…",
  ready: "ready",
  crashed: "crashed",
};

export function isWindow(plugin: PluginManifest): boolean {
  return plugin.type === "window" || plugin.type === "iframe";
}

/** A web-worker plugin: runs in a Web Worker of this tab (workers.ts), its ops callable like a kernel's. */
export function isWorker(plugin: PluginManifest): boolean {
  return plugin.type === "web-worker";
}

export function StatusBadge({ plugin }: { plugin: PluginManifest }) {
  const worker = useStore((s) => s.workers[plugin.id]);
  if (isWindow(plugin)) return <span className="sf-badge sf-state-window">browser</span>;
  const state = isWorker(plugin) ? (worker?.state ?? "stopped") : (plugin.status?.state ?? "stopped");
  return (
    <span className={`sf-badge sf-state-${state}`} data-testid={`status-${plugin.id}`}>
      {STATE_LABEL[state] ?? state}
    </span>
  );
}

export function PluginList({ onInstall }: { onInstall: () => void }) {
  const plugins = useStore((s) => s.plugins);
  const errors = useStore((s) => s.pluginErrors);
  const selected = useStore((s) => s.selectedPlugin);
  const [query, setQuery] = useState("");
  const shown = useMemo(() => {
    const q = query.trim().toLowerCase();
    return plugins.filter((p) => !q || `${p.name} ${p.id} ${p.description} ${p.tags.join(" ")}`.toLowerCase().includes(q));
  }, [plugins, query]);
  return (
    <div className="sf-plugin-list">
      <div className="sf-section-head">
        <h2>Plugins</h2>
        <button onClick={onInstall} data-testid="install-open">
          + Install
        </button>
      </div>
      <input className="sf-search" placeholder="Search plugins" value={query} onChange={(e) => setQuery(e.target.value)} />
      <ul>
        {shown.map((p) => (
          <li key={p.id}>
            <button
              className={`sf-plugin-item${p.id === selected ? " sf-selected" : ""}`}
              onClick={() => set({ selectedPlugin: p.id })}
              title={p.description}
              data-testid={`plugin-${p.id}`}
            >
              <span className="sf-plugin-name">{p.name}</span>
              <StatusBadge plugin={p} />
            </button>
          </li>
        ))}
      </ul>
      {errors.length > 0 && (
        <details className="sf-plugin-errors">
          <summary>{errors.length} plugin file(s) could not be read</summary>
          {errors.map((e) => (
            <div key={e.path}>
              <code>{e.path.split("/").pop()}</code>: {e.error}
            </div>
          ))}
        </details>
      )}
    </div>
  );
}

export function PluginPanel() {
  const plugin = useStore((s) => s.plugins.find((p) => p.id === s.selectedPlugin));
  const plots = useStore((s) => s.plots);
  const log = useStore((s) => s.log);
  const worker = useStore((s) => (plugin ? s.workers[plugin.id] : undefined));
  if (!plugin) return <div className="sf-empty">Choose a plugin on the left.</div>;
  const state = isWorker(plugin) ? (worker?.state ?? "stopped") : (plugin.status?.state ?? "stopped");
  const crash = isWorker(plugin) ? worker?.error : plugin.status?.error;
  const workers = () => import("../workers");
  const mine = log.filter((l) => l.source === plugin.id).slice(-8);
  const myPlots = Object.values(plots).filter((p) => p.source === plugin.id);
  const link = shareLink(plugin);
  const share = async () => {
    if (!link) return;
    try {
      await navigator.clipboard.writeText(link);
      addLog("info", plugin.id, `share link copied: ${link}`, undefined, true);
    } catch {
      window.prompt("Copy this link to share the plugin:", link);
    }
  };
  return (
    <div className="sf-plugin-panel" data-testid="plugin-panel">
      <div className="sf-plugin-title">
        <h2>{plugin.name}</h2>
        <span className="sf-muted">
          {plugin.version} · {plugin.type}
        </span>
        <StatusBadge plugin={plugin} />
      </div>
      <p>{plugin.description}</p>
      {plugin.tags.length > 1 && plugin.config?.tags && (
        <label className="sf-small" style={{ display: "flex", gap: 6, alignItems: "center", marginBottom: 6 }}>
          variant:
          <select style={{ width: "auto" }} value={plugin.tag} onChange={(e) => void choosePluginTag(plugin, e.target.value)} data-testid="plugin-tag">
            {plugin.tags.map((t) => (
              <option key={t}>{t}</option>
            ))}
          </select>
          <span className="sf-muted">(ImJoy tag: picks its requirements and options; changing it restarts the plugin)</span>
        </label>
      )}
      <div className="sf-actions">
        {isWindow(plugin) ? (
          plugin.runnable && <button className="sf-primary" onClick={() => void import("../windows").then((w) => w.openWindow(plugin)).catch(() => undefined)} data-testid="open-window">
            Open window
          </button>
        ) : isWorker(plugin) ? (
          <>
            {state !== "ready" && state !== "starting" && (
              <button onClick={() => void workers().then((w) => w.startWorker(plugin)).catch(() => undefined)} data-testid="plugin-start">
                Start
              </button>
            )}
            {(state === "ready" || state === "starting") && (
              <button onClick={() => void workers().then((w) => w.stopWorker(plugin.id))} data-testid="plugin-stop">
                Stop
              </button>
            )}
          </>
        ) : (
          <>
            {state !== "ready" && state !== "starting" && (
              <button onClick={() => void pluginAction(plugin, "start")} data-testid="plugin-start">
                Start
              </button>
            )}
            {(state === "ready" || state === "crashed") && (
              <button onClick={() => void pluginAction(plugin, "restart")} data-testid="plugin-restart">
                Restart
              </button>
            )}
            {state === "ready" && <button onClick={() => void pluginAction(plugin, "stop")}>Stop</button>}
          </>
        )}
        <button
          onClick={() => void share()}
          disabled={!link}
          title={link ? "Copy a link that installs this plugin" : "Built in or installed from a file: there is no URL to share"}
          data-testid="plugin-share"
          data-link={link ?? ""}
        >
          Share
        </button>
        {plugin.source_url && (
          <button onClick={() => void removePlugin(plugin).catch((e) => addLog("error", plugin.id, String(e), undefined, true))}>Remove</button>
        )}
      </div>
      {plugin.lang === "python" && <VerifyButton key={plugin.id} plugin={plugin} />}
      {state === "crashed" && crash && (
        <div className="sf-error" data-testid="plugin-crash">
          <strong>The plugin crashed.</strong> Fix the cause, then {isWorker(plugin) ? "Start" : "Restart"}.
          <pre>{crash}</pre>
        </div>
      )}
      {isWorker(plugin) && (
        <div className="sf-muted sf-small">runs in a Web Worker in this tab: no page, no network</div>
      )}
      {plugin.requirements.length > 0 && (
        <div className="sf-muted sf-small">requires: {plugin.requirements.join(", ")}</div>
      )}
      <EnvironmentInfo plugin={plugin} />
      {plugin.source_url && (
        <div className="sf-muted sf-small">
          source:{" "}
          <a href={plugin.source_url} target="_blank" rel="noreferrer noopener">
            {plugin.source_url}
          </a>
        </div>
      )}
      {!plugin.runnable && (
        <div className="sf-muted sf-small" data-testid="plugin-not-runnable">
          Not run by itself: other plugins and workflows call it.
        </div>
      )}
      {!isWindow(plugin) &&
        plugin.ops
          .filter((op) => plugin.runnable || op.name !== "run")
          .map((op) => <OpForm key={`${plugin.id}.${op.name}.${plugin.sha256}.${plugin.tag}`} plugin={plugin} op={op} />)}
      {myPlots.map((p) => (
        <PlotView key={p.name} plot={p} />
      ))}
      {mine.length > 0 && (
        <div className="sf-plugin-log">
          <h3>Recent messages</h3>
          {mine.map((l) => (
            <div key={l.id} className={`sf-log-${l.level}`}>
              {l.text}
            </div>
          ))}
        </div>
      )}
      {plugin.docs && (
        <details className="sf-docs" open={plugin.ops.length === 0}>
          <summary>Documentation</summary>
          <Markdown text={plugin.docs} />
        </details>
      )}
    </div>
  );
}
