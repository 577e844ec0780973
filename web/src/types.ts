// Shapes of what the hub sends. The manifest types are generated from the Python models
// (server/scopeflow/plugins/manifest.py) by `npm run gen-types`: change them there, never here.

import type { PluginManifest as Manifest } from "./generated/plugin-manifest";

export type { OpSpec, PortSpec, UiField } from "./generated/plugin-manifest";

/** A plugin's runtime state, as the hub's engine reports it (Plugin.status() in plugins/engine.py). */
export interface PluginStatus {
  id: string;
  state: "stopped" | "starting" | "ready" | "crashed";
  kernel_id: string | null;
  error: string | null;
  startup_seconds: number | null;
  /** the package versions its requirements resolved to; `key` names its own environment (null: the hub's) */
  environment?: { key: string | null; packages: Record<string, string>; installed?: string[] } | null;
}

/** A plugin as `GET /api/plugins` lists it: the manifest, its status, and whether it is a built-in. */
export type PluginManifest = Manifest & { status: PluginStatus; builtin: boolean };

export interface TableData {
  id: string;
  name: string;
  columns: string[];
  rows: unknown[][];
  source?: string;
}

export interface LogEntry {
  id: number;
  time: number;
  level: "info" | "warning" | "error";
  source: string;
  text: string;
  detail?: string;
}
