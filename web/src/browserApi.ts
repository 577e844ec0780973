// The api plugins call (`api.showMessage(...)` in a Python kernel or a window): registered as `imjoy-api`.

import { addImage, addLog, addTable, ask, get, set } from "./store";
import { pluginAccess } from "./pluginAccess";
import { request } from "./hub";
import { asTable, fromNdarray, isNdarray, openFile, typedFromBytes } from "./images";
import { decodeDataUrl, offlineMessage, whereIs } from "./offline";

type Caller = string;

function text(args: unknown[]): string {
  return args.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(" ");
}

/** Progress as a fraction: ImJoy plugins send 0–100, some send 0–1. */
export function progressFraction(value: unknown): number {
  const n = Number(value);
  if (!Number.isFinite(n)) return 0;
  return Math.max(0, Math.min(1, n > 1 ? n / 100 : n));
}

/** A list of numbers from a JSON list or a 1-d ndarray (numpy arrays arrive as ndarrays); else null. */
function numbersOf(value: unknown): number[] | null {
  if (isNdarray(value)) {
    const { data } = typedFromBytes(value._rvalue instanceof Uint8Array ? value._rvalue : new Uint8Array(value._rvalue), value._rdtype);
    return Array.from(data as ArrayLike<number>, Number);
  }
  if (Array.isArray(value)) return value.map((v) => (typeof v === "number" ? v : Number.NaN));
  return null;
}

const EXTENSIONS: Record<string, string> = {
  "image/png": ".png",
  "image/jpeg": ".jpg",
  "image/jpg": ".jpg",
  "image/tiff": ".tif",
  "image/tif": ".tif",
};

const pluginName = (caller: Caller): string => get().plugins.find((p) => p.id === caller)?.name ?? caller;

/** A window that is only a message, in a tab where the window would have been (and in the log). */
function noteWindow(caller: Caller, name: string, text: string): { id: string; error: string } {
  addLog("error", caller, text, undefined, true);
  const id = `note-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
  set((s) => ({ windows: [...s.windows, { id, pluginId: caller, name, kind: "note", text }], view: id }));
  return { id, error: text };
}

/** ImJoy's `imjoy/image` window: an image from `src` (a data: URL or a file of the hub's), shown in the viewer.
 * The hub reads the file (PNG, JPEG, TIFF) into pixels, as for a file the user opens. */
async function showImageSrc(caller: Caller, name: string, src: string): Promise<unknown> {
  const origin = window.location.origin;
  let blob: Blob;
  let filename = name;
  if (src.startsWith("data:")) {
    const decoded = decodeDataUrl(src);
    if (!decoded) throw new Error(`${name}: not a data: URL`);
    blob = new Blob([decoded.bytes as BlobPart], { type: decoded.type });
    const ext = EXTENSIONS[decoded.type.toLowerCase()];
    if (ext && !filename.toLowerCase().endsWith(ext)) filename += ext;
  } else if (whereIs(src, origin) === "hub") {
    const url = new URL(src, origin);
    blob = await (await request(get().token || "", url.pathname + url.search)).blob();
    const base = url.pathname.split("/").pop() || "image";
    if (!/\.(png|jpe?g|tiff?)$/i.test(filename)) filename = /\.(png|jpe?g|tiff?)$/i.test(base) ? base : filename + (EXTENSIONS[blob.type] ?? ".png");
  } else if (whereIs(src, origin) === "outside") {
    return noteWindow(caller, name, offlineMessage(`${pluginName(caller)}'s image window "${name}"`, [src]));
  } else {
    throw new Error(`${name}: an image src must be a data: URL or a file of the hub's, not ${src.slice(0, 80)}`);
  }
  const image = await openFile(get().token || "", new File([blob], filename, { type: blob.type }));
  image.name = name;
  image.source = caller;
  addImage(image);
  return { id: image.id };
}

/** `createWindow`/`showDialog`: plots, images and tables go to the app's own views; a window plugin opens. */
async function createWindow(caller: Caller, config: Record<string, any> = {}): Promise<unknown> {
  const type = String(config.type || "");
  const name = String(config.name || config.title || type || "window");
  const data = config.data ?? {};
  const src = typeof config.src === "string" ? config.src : typeof data?.src === "string" ? data.src : null;
  if (type === "imjoy/image" && src) return showImageSrc(caller, name, src);
  if (type === "imjoy/markdown") {
    const text = String(data?.source ?? data?.content ?? config.content ?? "");
    const id = `md-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
    set((s) => ({ windows: [...s.windows, { id, pluginId: caller, name, kind: "markdown", text }], view: id }));
    return { id };
  }
  if (src && (!type || type === "external" || type === "iframe")) {
    if (whereIs(src, window.location.origin) === "outside") {
      return noteWindow(caller, name, offlineMessage(`${pluginName(caller)}'s window "${name}"`, [src]));
    }
    if (/^data:image\//i.test(src) || /\.(png|jpe?g|tiff?)(\?|#|$)/i.test(src)) return showImageSrc(caller, name, src);
    throw new Error(`createWindow: a window of a page (src ${JSON.stringify(src.slice(0, 80))}) is not supported: use a window plugin`);
  }
  if (type === "scopeflow/plot") {
    const series: Record<string, number[]> = {};
    for (const [key, values] of Object.entries(data.series ?? {})) {
      const numbers = numbersOf(values);
      if (numbers) series[key] = numbers;
    }
    const plot = { name, source: caller, x: numbersOf(data.x) ?? [], series, xlabel: data.xlabel, ylabel: data.ylabel };
    set((s) => ({ plots: { ...s.plots, [name]: plot } }));
    return { id: name };
  }
  if (type === "scopeflow/table" || type === "imjoy/table") {
    const table = asTable(data.table ?? data, name, caller);
    if (!table) throw new Error(`${name}: the data is not a table (columns of equal length, or rows)`);
    addTable(table);
    return { id: table.id };
  }
  const image = isNdarray(data) ? data : isNdarray(data.image) ? data.image : null;
  if (image) {
    const shown = fromNdarray(image, name, { source: caller, kind: config.labels ? "labels" : undefined });
    addImage(shown);
    return { id: shown.id };
  }
  const plugin = get().plugins.find((p) => p.id === type || p.name === type);
  if (plugin) return (await import("./windows")).openWindow(plugin, { data, config });
  throw new Error(`createWindow: no window type ${JSON.stringify(type)} (try scopeflow/plot, scopeflow/table, imjoy/image, imjoy/markdown, an image, or a window plugin)`);
}

const calls: Record<string, (caller: Caller, ...args: any[]) => unknown> = {
  showMessage: (caller, message) => addLog("info", caller, text([message]), undefined, true),
  showSnackbar: (caller, message) => addLog("info", caller, text([message]), undefined, true),
  showStatus: (caller, message) => set({ status: `${caller}: ${text([message])}` }),
  showProgress: (caller, value) =>
    set((s) => ({ progress: { ...s.progress, [caller]: progressFraction(value) } })),
  log: (caller, ...messages) => addLog("info", caller, text(messages)),
  error: (caller, ...messages) => addLog("error", caller, text(messages), undefined, true),
  alert: (caller, message) => ask("alert", caller, text([message])).then(() => undefined),
  confirm: (caller, message) => ask("confirm", caller, text([message])),
  prompt: (caller, message, value) => ask("prompt", caller, text([message]), value === undefined ? "" : String(value)),
  showDialog: (caller, config) => createWindow(caller, config),
  createWindow: (caller, config) => createWindow(caller, config),
};

/** The service object: every ImJoy name for plain clients, and `dispatch` that also says who calls. */
export function browserApi(): Record<string, unknown> {
  const service: Record<string, unknown> = {
    id: "imjoy-api",
    name: "scopeflow web app",
    description: "What plugins call to show messages, progress, dialogs, windows, images, tables and plots",
    config: { visibility: "public" },
    dispatch: (caller: Caller, name: string, args: unknown[]) => {
      const fn = calls[name];
      if (!fn) throw new Error(`the app does not offer ${name}`);
      return fn(caller || "plugin", ...(args || []));
    },
  };
  for (const [name, fn] of Object.entries(calls)) service[name] = (...args: unknown[]) => fn("plugin", ...args);
  return service;
}

/** A plugin by name: one that lives in the browser (a web worker, an open window), else the hub's. */
export async function findPlugin(name: string, server: () => any): Promise<any> {
  const local = await (await import("./workers")).browserPlugin(String(name));
  return local ?? server().getPlugin(name);
}

/** The other plugins a window or web-worker plugin may use (see pluginAccess): one check for the page. */
const mayUse = pluginAccess(
  () => get().plugins,
  (title, text) => ask("confirm", title, text),
);

/** The api a window or web-worker plugin gets: the same calls, plus the plugins it declared or the user
 * allowed; the hub's other services (and plugins nobody knows) are not reachable from it. */
export function windowApi(caller: Caller, server: () => any): Record<string, unknown> {
  const api: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(calls)) api[name] = (...args: unknown[]) => fn(caller, ...args);
  const reach = async (name: string) => findPlugin((await mayUse(caller, name)).id, server);
  const open = async (config: Record<string, any> = {}) => {
    const type = String(config?.type || ""); // a window plugin's window gives its api back: the same check
    if (get().plugins.some((p) => p.id === type || p.name === type)) await mayUse(caller, type);
    return createWindow(caller, config);
  };
  api.createWindow = open;
  api.showDialog = open;
  api.getPlugin = (name: string) => reach(name);
  api.call = async (pluginName: string, fn: string, ...args: unknown[]) => {
    const plugin = await reach(pluginName);
    if (typeof fn !== "string" || !Object.hasOwn(plugin ?? {}, fn) || typeof plugin[fn] !== "function") {
      throw new Error(`plugin ${pluginName} has no function ${fn}`);
    }
    return plugin[fn](...args);
  };
  return api;
}
