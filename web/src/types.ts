// Shapes of what the hub sends (see server/scopeflow/manifest.py): names as in the Python code.

export interface PortSpec {
  name: string;
  kind: "value" | "ndarray" | "table";
  schema: Record<string, any>;
  axes: string | null;
  dtype: string | null;
  description: string;
  default: unknown;
  required: boolean;
}

export interface OpSpec {
  name: string;
  title: string | null;
  description: string;
  inputs: PortSpec[];
  outputs: PortSpec[];
}

export interface PluginStatus {
  id: string;
  state: "stopped" | "starting" | "ready" | "crashed";
  kernel_id: string | null;
  error: string | null;
  startup_seconds: number | null;
}

export interface PluginManifest {
  id: string;
  name: string;
  version: string;
  type: string;
  lang: string;
  format: string;
  description: string;
  tags: string[];
  docs: string;
  requirements: string[];
  ops: OpSpec[];
  sha256: string;
  source_url: string | null;
  path: string | null;
  icon: string | null;
  config: Record<string, any>;
  status: PluginStatus;
}

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
