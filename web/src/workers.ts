// Web-worker plugins (ImJoy `type: web-worker`): each runs in a real Web Worker, with no DOM, started from a
// blob: URL inside a hidden iframe on /window.html (sandbox="allow-scripts", no same-origin). The worker inherits
// that frame's opaque origin and Content-Security-Policy: it cannot reach the app, its storage, the token or the
// network. The frame relays imjoy-rpc's messages between the worker and the app (public/window.js), so the
// plugin's `api.*` calls reach the app and its exports are callable from the app and from other plugins.

import { errorText } from "./actions";
import { addLog, get, set } from "./store";
import type { PluginManifest } from "./types";
import { connectFrame, openWindowApi, pluginSource, reportOutside, windowParts } from "./windows";
import { explainWorkerError } from "./offline";

interface Running {
  api: Promise<any>;
  frame: HTMLIFrameElement;
  dispose: () => void;
}

const running = new Map<string, Running>();

function host(): HTMLElement {
  let box = document.getElementById("sf-worker-frames");
  if (!box) {
    box = document.createElement("div");
    box.id = "sf-worker-frames";
    box.hidden = true; // the worker's frame shows nothing: a worker has no page
    document.body.appendChild(box);
  }
  return box;
}

function setState(id: string, state: "starting" | "ready" | "crashed" | "stopped", error?: string) {
  set((s) => {
    const workers = { ...s.workers };
    if (state === "stopped") delete workers[id];
    else workers[id] = { state, error };
    return { workers };
  });
}

/** Start a web-worker plugin (once per tab: a running one is reused); resolves to its api after `setup`. */
export function startWorker(plugin: PluginManifest): Promise<any> {
  const known = running.get(plugin.id);
  if (known) return known.api;
  const frame = document.createElement("iframe");
  frame.setAttribute("sandbox", "allow-scripts");
  frame.setAttribute("title", `${plugin.name} (web worker)`);
  frame.className = "sf-worker-frame";
  frame.dataset.workerId = plugin.id;
  let dispose = () => {};
  const api = (async () => {
    const parts = await pluginSource(plugin);
    const { message, outside } = windowParts(plugin, parts, "worker");
    reportOutside(plugin, outside);
    const connected = connectFrame(plugin, frame, message, "web worker");
    dispose = connected.dispose;
    host().appendChild(frame);
    const remote = await connected.remote;
    if (typeof remote.setup === "function") await remote.setup();
    return remote;
  })();
  running.set(plugin.id, { api, frame, dispose: () => dispose() });
  setState(plugin.id, "starting");
  api.then(
    () => {
      if (running.get(plugin.id)?.api !== api) return;
      setState(plugin.id, "ready");
      addLog("info", plugin.id, `web worker ${plugin.name} is ready`);
    },
    (err) => {
      if (running.get(plugin.id)?.api !== api) return;
      const raw = errorText(err);
      const text = raw.startsWith(plugin.name) ? raw : explainWorkerError(plugin.name, raw);
      stopWorker(plugin.id);
      setState(plugin.id, "crashed", text);
      addLog("error", plugin.id, text, undefined, true);
    },
  );
  return api;
}

/** Stop a web-worker plugin: its frame goes, and the worker with it. */
export function stopWorker(id: string): void {
  const known = running.get(id);
  if (!known) return;
  running.delete(id);
  known.dispose();
  known.frame.remove();
  setState(id, "stopped");
}

/** `api.getPlugin(name)` for plugins that live in the browser: a web-worker plugin (started on first use) or
 * an open window plugin; null when the name is none of these (then the hub is asked). */
export async function browserPlugin(name: string): Promise<any | null> {
  const plugin = get().plugins.find((p) => p.name === name) ?? get().plugins.find((p) => p.id === name);
  if (!plugin) return null;
  if (plugin.type === "web-worker") return startWorker(plugin);
  if (plugin.type === "window" || plugin.type === "iframe") return openWindowApi(plugin.id) ?? null;
  return null;
}
