// The api plugins call (`api.showMessage(...)` in a Python kernel or a window): registered as `imjoy-api`.

import { addImage, addLog, addTable, ask, get, set } from "./store";
import { asTable, fromNdarray, isNdarray, typedFromBytes } from "./images";

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

/** `createWindow`/`showDialog`: plots, images and tables go to the app's own views; a window plugin opens. */
async function createWindow(caller: Caller, config: Record<string, any> = {}): Promise<unknown> {
  const type = String(config.type || "");
  const name = String(config.name || config.title || type || "window");
  const data = config.data ?? {};
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
  throw new Error(`createWindow: no window type ${JSON.stringify(type)} (try scopeflow/plot, scopeflow/table, an image, or a window plugin)`);
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

/** The api a window plugin gets inside its iframe: the same calls, plus the hub's plugins. */
export function windowApi(caller: Caller, server: () => any): Record<string, unknown> {
  const api: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(calls)) api[name] = (...args: unknown[]) => fn(caller, ...args);
  api.getPlugin = (name: string) => server().getPlugin(name);
  api.call = async (pluginName: string, fn: string, ...args: unknown[]) => {
    const plugin = await server().getPlugin(pluginName);
    return plugin[fn](...args);
  };
  return api;
}
