// What the user does: refresh plugins, start/stop them, run an op, install from a URL.

import { HubError, getJson, postJson, request } from "./hub";
import { addImage, addLog, addTable, get, set } from "./store";
import { asTable, fromNdarray, isNdarray, toNdarray } from "./images";
import type { OpSpec, PluginManifest, PluginStatus, PortSpec } from "./types";

let server: any = null;
export function setRpc(s: any) {
  server = s;
}
export const rpc = (): any => {
  if (!server) throw new Error("not connected to the hub: wait until it is back (top bar), then try again");
  return server;
};

const token = () => get().token || "";

export async function refreshPlugins(): Promise<void> {
  const body = await getJson<{ plugins: PluginManifest[]; errors: { path: string; error: string }[] }>(
    token(),
    "/api/plugins",
  );
  set((s) => ({
    plugins: body.plugins,
    pluginErrors: body.errors,
    selectedPlugin: s.selectedPlugin ?? body.plugins.find((p) => p.ops.length > 0)?.id ?? null,
  }));
}

export async function pluginAction(plugin: PluginManifest, action: "start" | "stop" | "restart"): Promise<void> {
  patchStatus(plugin.id, { state: action === "stop" ? "stopped" : "starting", error: null });
  try {
    const status = await postJson<PluginStatus>(token(), `/api/plugins/${plugin.id}/${action}`, {});
    patchStatus(plugin.id, status);
  } catch (err) {
    addLog("error", plugin.id, `${action} failed: ${String(err)}`, undefined, true);
  } finally {
    void refreshPlugins();
  }
}

function patchStatus(id: string, status: Partial<PluginStatus>) {
  set((s) => ({
    plugins: s.plugins.map((p) => (p.id === id ? { ...p, status: { ...p.status, ...status } } : p)),
  }));
}

export const runKey = (plugin: string, op: string) => `${plugin}.${op}`;

/** The value an input sends: images as ndarrays, tables as columns, the rest as typed in. */
function argument(port: PortSpec, value: unknown): unknown {
  if ((port.kind === "ndarray" || port.kind === "table") && !port.required && (value === null || value === "")) {
    return null; // an optional image or table left out
  }
  if (port.kind === "ndarray") {
    const image = get().images.find((i) => i.id === value);
    if (!image) throw new Error(`choose an image for "${port.name}"`);
    return toNdarray(image);
  }
  if (port.kind === "table") {
    const table = get().tables.find((t) => t.id === value);
    if (!table) throw new Error(`choose a table for "${port.name}"`);
    return Object.fromEntries(table.columns.map((c, i) => [c, table.rows.map((r) => r[i])]));
  }
  return value;
}

/** Run one op of a plugin with the form's values; results go to the viewer, tables or the log. */
export async function runOp(plugin: PluginManifest, op: OpSpec, values: Record<string, unknown>): Promise<void> {
  const key = runKey(plugin.id, op.name);
  const started = performance.now();
  set((s) => ({
    runs: { ...s.runs, [key]: { state: "running", progress: null, started: Date.now() } },
    progress: { ...s.progress, [plugin.id]: 0 },
  }));
  try {
    // null as an argument: imjoy-rpc's JS client reads `arg._rintf` of every argument and a null makes the call
    // hang, never settling (hypha-rpc-websocket.js, imjoy-rpc 0.5.x); undefined travels as None as well
    const args = op.inputs.map((port) => argument(port, values[port.name]) ?? undefined);
    let service: any;
    if (plugin.type === "web-worker") {
      service = await (await import("./workers")).startWorker(plugin); // runs in this tab, not on the hub
    } else {
      if (plugin.status.state !== "ready") patchStatus(plugin.id, { state: "starting" });
      service = await rpc().getPlugin(plugin.id);
      patchStatus(plugin.id, { state: "ready", error: null });
    }
    if (typeof service[op.name] !== "function") throw new Error(`${plugin.name} has no function ${op.name}`);
    const result = await service[op.name](...args);
    const seconds = (performance.now() - started) / 1000;
    const summary = showResult(plugin, op, result, values);
    set((s) => ({ runs: { ...s.runs, [key]: { state: "done", progress: 1, started: s.runs[key]?.started ?? 0, seconds, result: summary } } }));
    addLog("info", plugin.id, `${op.title || op.name} finished in ${seconds.toFixed(2)} s: ${summary}`);
  } catch (err) {
    const message = errorText(err);
    set((s) => ({ runs: { ...s.runs, [key]: { state: "error", progress: null, started: s.runs[key]?.started ?? 0, error: message } } }));
    addLog("error", plugin.id, `${op.title || op.name} failed`, message);
    void refreshPlugins();
  } finally {
    set((s) => {
      const progress = { ...s.progress };
      delete progress[plugin.id];
      // a status the plugin set while it ran is over with the run
      return { progress, status: s.status.startsWith(`${plugin.id}: `) ? "" : s.status };
    });
  }
}

/** imjoy-rpc's remote errors read "RemoteError:message\ntraceback": keep both, readable. */
export function errorText(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.replace(/^(Error: )?RemoteError:/, "").trim();
}

/** "Gaussian blur σ… of Nuclei": results say what made them, so runs can be told apart. */
function resultName(plugin: PluginManifest, op: OpSpec, values: Record<string, unknown>): string {
  const title = op.title || op.name;
  const params = op.inputs
    .filter((p) => p.kind === "value" && values[p.name] !== undefined && values[p.name] !== null && values[p.name] !== "")
    .filter((p) => JSON.stringify(values[p.name]) !== JSON.stringify(p.default)) // only what was changed
    .slice(0, 3)
    .map((p) => `${p.name}=${typeof values[p.name] === "object" ? "…" : String(values[p.name])}`);
  const source = op.inputs
    .filter((p) => p.kind === "ndarray")
    .map((p) => get().images.find((i) => i.id === values[p.name])?.name)
    .find(Boolean);
  const words = (text: string) => new Set(text.toLowerCase().match(/[a-z0-9]+/g) ?? []);
  const shared = [...words(title)].some((w) => w.length > 3 && words(plugin.name).has(w));
  const base = title === plugin.name || shared ? title : `${title} (${plugin.name})`;
  return `${base}${params.length ? ` ${params.join(" ")}` : ""}${source ? ` of ${source}` : ""}`;
}

function showResult(plugin: PluginManifest, op: OpSpec, result: unknown, values: Record<string, unknown>): string {
  const outputs = op.outputs;
  const shown: string[] = [];
  const name = resultName(plugin, op, values);
  const place = (value: unknown, port: PortSpec | undefined, label: string) => {
    if (isNdarray(value)) {
      const labels = /label|mask|segment/i.test(`${port?.name} ${op.name}`) && /int|uint/.test(value._rdtype);
      const image = fromNdarray(value, label, { axes: port?.axes, kind: labels ? "labels" : "image", source: `${plugin.id}.${op.name}` });
      addImage(image);
      shown.push(`image ${image.shape.join("×")} ${image.dtype}`);
      return;
    }
    // several outputs come back as a list (a Python tuple): one value per declared output
    if (Array.isArray(value) && outputs.length > 1 && value.length === outputs.length && port === outputs[0]) {
      value.forEach((v, i) => place(v, outputs[i], `${label} ${outputs[i].name}`));
      return;
    }
    const table = port?.kind === "table" || !containsArrays(value) ? asTable(value, label, plugin.id) : null;
    if (table) {
      addTable(table);
      shown.push(`table of ${table.rows.length} rows`);
      return;
    }
    if (value && typeof value === "object" && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (isNdarray(v) || (v && typeof v === "object")) place(v, outputs.find((o) => o.name === k), `${label} ${k}`);
        else shown.push(`${k}: ${JSON.stringify(v)}`);
      }
      return;
    }
    shown.push(value === undefined || value === null ? "done" : JSON.stringify(value).slice(0, 200));
  };
  place(result, outputs[0], name);
  return shown.join(", ");
}

/** Does a result hold n-d arrays (other than 1-d columns)? Then it is images, not a table. */
function containsArrays(value: unknown): boolean {
  if (isNdarray(value)) return value._rshape.length !== 1;
  if (Array.isArray(value)) return value.some(containsArrays);
  if (value && typeof value === "object") return Object.values(value).some(containsArrays);
  return false;
}

export interface Preview {
  manifest: PluginManifest;
  url: string;
}

/** `publicOnly`: for previews the user did not ask for (a shared link): the hub refuses local addresses. */
/** `tag`: one of an ImJoy plugin's `tags`; its fields keyed by tag (requirements, ...) are read for it. */
export async function previewUrl(url: string, publicOnly = false, tag?: string): Promise<PluginManifest> {
  return postJson<PluginManifest>(token(), "/api/plugins", { url, preview: true, public_only: publicOnly, tag });
}

export async function installUrl(url: string, sha256: string, publicOnly = false, tag?: string): Promise<PluginManifest> {
  const manifest = await postJson<PluginManifest>(token(), "/api/plugins", { url, sha256, public_only: publicOnly, tag });
  await refreshPlugins();
  set({ selectedPlugin: manifest.id });
  addLog("info", manifest.id, `installed ${manifest.name} ${manifest.version} from ${url}`, undefined, true);
  return manifest;
}

/** Install a plugin another one lists in its `dependencies`, exactly as previewed (`sha256`); unlike
 * `installUrl` it leaves the selected plugin alone (the one the user installed stays selected). */
export async function installDependencyUrl(
  url: string,
  sha256: string,
  publicOnly: boolean,
  neededBy: string,
): Promise<PluginManifest> {
  const manifest = await postJson<PluginManifest>(token(), "/api/plugins", { url, sha256, public_only: publicOnly });
  await refreshPlugins();
  addLog("info", manifest.id, `installed ${manifest.name} ${manifest.version} from ${url} (a dependency of ${neededBy})`);
  return manifest;
}

/** Use another of an ImJoy plugin's `tags` (its kernel stops; the next run starts it with that tag). */
export async function choosePluginTag(plugin: PluginManifest, tag: string): Promise<void> {
  try {
    await postJson<PluginManifest>(token(), `/api/plugins/${plugin.id}/tag`, { tag });
    addLog("info", plugin.id, `${plugin.name} now uses the tag ${tag}`, undefined, true);
  } catch (err) {
    addLog("error", plugin.id, `could not use the tag ${tag}: ${errorText(err)}`, undefined, true);
  } finally {
    await refreshPlugins();
  }
}

export async function removePlugin(plugin: PluginManifest): Promise<void> {
  await request(token(), `/api/plugins/${plugin.id}`, { method: "DELETE" });
  await refreshPlugins();
}

/** The link that shares a plugin: this app with `?plugin=` its source URL. */
export function shareLink(plugin: PluginManifest): string | null {
  if (!plugin.source_url) return null;
  const url = new URL(window.location.origin + window.location.pathname);
  url.searchParams.set("plugin", plugin.source_url);
  return url.href;
}

export { HubError };
