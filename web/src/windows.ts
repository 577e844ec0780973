// Window plugins (ImJoy `type: window`): each in an iframe with sandbox="allow-scripts" (no same-origin) on
// /window.html, talking to the app with imjoy-rpc's postMessage protocol; the app is the host side of that RPC.
// Web-worker plugins (workers.ts) use the same frame, hidden, with a Web Worker inside it.

import { RPC } from "imjoy-rpc/dist/imjoy-rpc.js";
import imjoyRpcUrl from "imjoy-rpc/dist/imjoy-rpc.js?url";
import { rpc } from "./actions";
import { windowApi } from "./browserApi";
import { registerFrame } from "./frames";
import { getJson } from "./hub";
import { browserRequirements, dropOutside, explainWorkerError, offlineMessage } from "./offline";
import { addLog, get, set } from "./store";
import type { PluginManifest } from "./types";

interface Parts {
  window: string;
  script: string;
  style: string;
}

/** The `<window>`, `<script lang="javascript">` and `<style>` of an .imjoy.html file. */
export function pluginParts(source: string): Parts {
  const block = (pattern: RegExp) => {
    const m = source.match(pattern);
    return m ? m[1] : "";
  };
  return {
    window: block(/<window[^>]*>([\s\S]*?)<\/window>/i),
    script: block(/<script[^>]*lang=["']?javascript["']?[^>]*>([\s\S]*?)<\/script>/i),
    style: block(/<style[^>]*>([\s\S]*?)<\/style>/i),
  };
}

/** What the app posts into a window's frame (/window.html, see public/window.js), once, after it loaded:
 * the plugin's own parts and where imjoy-rpc is. Never the token. Files on other origins are left out: the
 * frame could not load them anyway, and `outside` names them for the message the app shows. */
export function windowParts(
  plugin: PluginManifest,
  parts: Parts,
  kind: "window" | "worker" = "window",
): { message: Record<string, unknown>; outside: string[] } {
  const origin = window.location.origin;
  const html = dropOutside(parts.window, origin);
  const required = browserRequirements(plugin.requirements ?? [], origin);
  return {
    message: {
      type: "scopeflow/window-parts",
      kind,
      name: plugin.name,
      html: html.html,
      style: parts.style,
      script: parts.script,
      scripts: required.scripts,
      styles: required.styles,
      rpc: new URL(imjoyRpcUrl, window.location.href).pathname,
    },
    outside: [...html.outside, ...required.outside],
  };
}

/** Say, where the user looks, that a plugin wanted files from the internet. */
export function reportOutside(plugin: PluginManifest, outside: string[]): string | null {
  if (outside.length === 0) return null;
  const message = offlineMessage(plugin.name, outside);
  addLog("error", plugin.id, message, outside.join("\n"), true);
  return message;
}

// the messages of imjoy-rpc's protocol a window may send to the app
const ALLOWED = new Set(["setInterface", "getInterface", "interfaceSetAsRemote", "method", "callback", "disposeObject", "disposed"]);

class HostConnection {
  private handlers: Record<string, ((data: any) => void)[]> = {};
  peer_id = "";
  constructor(private frame: HTMLIFrameElement) {}
  on(event: string, handler: (data: any) => void) {
    (this.handlers[event] ||= []).push(handler);
  }
  once(event: string, handler: (data: any) => void) {
    const wrapped = (data: any) => {
      this.off(event, wrapped);
      handler(data);
    };
    this.on(event, wrapped);
  }
  off(event: string, handler: (data: any) => void) {
    this.handlers[event] = (this.handlers[event] || []).filter((h) => h !== handler);
  }
  fire(event: string, data: any) {
    if (!ALLOWED.has(event)) return; // e.g. "execute": a window never makes the app run code
    if (event === "method" && !this.callable(data)) {
      addLog("warning", "windows", `a window asked for ${JSON.stringify(String(data?.name)).slice(0, 80)}: refused`);
      return;
    }
    for (const handler of [...(this.handlers[event] || [])]) handler(data);
  }
  /** imjoy-rpc's host resolves dotted names with plain indexing ("showMessage.constructor" would reach
   * Function): only own properties, step by step, ending on a function. */
  private callable(data: any): boolean {
    if (!data || typeof data.name !== "string" || typeof data.object_id !== "string") return false;
    let target: any = this.objects()?.[data.object_id];
    for (const part of data.name.split(".")) {
      if (target === null || typeof target !== "object" || !Object.hasOwn(target, part)) return false;
      target = target[part];
    }
    return typeof target === "function";
  }
  objects: () => Record<string, unknown> | undefined = () => undefined;
  emit(data: Record<string, unknown>) {
    const { __transferables__, ...message } = data;
    void __transferables__;
    this.frame.contentWindow?.postMessage({ ...message, peer_id: this.peer_id }, "*");
  }
  disconnect() {}
  execute() {
    throw new Error("the app does not execute code in windows");
  }
}

/** Put a plugin's parts into a sandboxed frame on /window.html and connect to it as the host of imjoy-rpc:
 * resolves to the plugin's exported api. Errors the frame reports later (a worker's) go to the log. */
export function connectFrame(
  plugin: PluginManifest,
  frame: HTMLIFrameElement,
  message: Record<string, unknown>,
  what: string,
): { remote: Promise<any>; dispose: () => void } {
  const connection = new HostConnection(frame);
  let dispose = () => {};
  const remote = new Promise<any>((resolve, reject) => {
    const timer = window.setTimeout(() => reject(new Error(`${plugin.name}: the ${what} did not start in 20 s`)), 20000);
    let started = false;
    let ready = false;
    const onMessage = (event: MessageEvent) => {
      if (event.source !== frame.contentWindow || !event.data || typeof event.data !== "object") return;
      const data = event.data as { type?: string; peer_id?: string; message?: unknown; stack?: unknown };
      if (data.type === "scopeflow/worker-error") {
        const text = explainWorkerError(plugin.name, String(data.message ?? "failed").slice(0, 2000));
        if (!ready) {
          window.clearTimeout(timer);
          reject(new Error(text));
        } else {
          addLog("error", plugin.id, text, typeof data.stack === "string" ? data.stack.slice(0, 4000) : undefined, true);
        }
      } else if (data.type === "initialized") {
        if (started) return; // once: a second one would pile up RPCs answering every call again
        started = true;
        connection.peer_id = data.peer_id || "";
        const host = new RPC(connection, { name: "scopeflow" });
        connection.objects = () => (host as unknown as { _object_store: Record<string, unknown> })._object_store;
        host.once("remoteReady", () => {
          window.clearTimeout(timer);
          ready = true;
          resolve(host.getRemote());
        });
        void host.setInterface(windowApi(plugin.id, rpc));
        host.sendInterface();
        host.requestRemote();
      } else if (data.type) {
        connection.fire(data.type, data);
      }
    };
    window.addEventListener("message", onMessage);
    dispose = () => {
      window.removeEventListener("message", onMessage);
      window.clearTimeout(timer);
    };
  });
  frame.setAttribute("sandbox", "allow-scripts");
  // the frame's document comes with its own CSP (inline plugin code, no network); srcdoc would inherit the app's
  frame.addEventListener("load", () => frame.contentWindow?.postMessage(message, "*"), { once: true });
  frame.src = "/window.html";
  return { remote, dispose: () => dispose() };
}

export async function pluginSource(plugin: PluginManifest): Promise<Parts> {
  const { source } = await getJson<{ source: string }>(get().token || "", `/api/plugins/${plugin.id}`);
  return pluginParts(source);
}

// the exported api of each open window, for `api.getPlugin(name)` of other plugins
const openApis = new Map<string, { pluginId: string; api: any }>();

/** The api of an open window of this plugin (the newest), if one is open. */
export function openWindowApi(pluginId: string): any | undefined {
  return [...openApis.values()].reverse().find((w) => w.pluginId === pluginId)?.api;
}

/** Open a window plugin; resolves to its exported api once `setup` (and `run`, with data) finished. */
export async function openWindow(
  plugin: PluginManifest,
  options: { data?: unknown; config?: Record<string, unknown> } = {},
): Promise<any> {
  const parts = await pluginSource(plugin);
  const id = `win-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
  const frame = document.createElement("iframe");
  frame.setAttribute("sandbox", "allow-scripts");
  frame.setAttribute("title", plugin.name);
  frame.dataset.windowId = id;
  frame.className = "sf-window-frame";
  const { message, outside } = windowParts(plugin, parts);
  const note = reportOutside(plugin, outside);
  const { remote, dispose } = connectFrame(plugin, frame, message, "window");
  registerFrame(id, frame, () => {
    dispose();
    openApis.delete(id);
  });
  set((s) => ({
    windows: [...s.windows, { id, pluginId: plugin.id, name: plugin.name, data: options.data, notes: note ? [note] : undefined }],
    view: id,
  }));
  try {
    const api = await remote;
    if (typeof api.setup === "function") await api.setup();
    if (typeof api.run === "function") await api.run({ config: options.config ?? {}, data: options.data ?? {} });
    openApis.set(id, { pluginId: plugin.id, api });
    addLog("info", plugin.id, `window ${plugin.name} is ready`);
    return api;
  } catch (err) {
    addLog("error", plugin.id, `window ${plugin.name} failed: ${String(err)}`, undefined, true);
    throw err;
  }
}
