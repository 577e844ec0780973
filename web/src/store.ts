// The app's state in one store: connection, plugins, open images and tables, messages, dialogs.

import { create } from "zustand";
import type { ConnectionState } from "./hub";
import type { LogEntry, PluginManifest, TableData } from "./types";
import type { NdImage } from "./viewer/types";

export interface Dialog {
  id: number;
  kind: "alert" | "confirm" | "prompt" | "dialog";
  title: string;
  text: string;
  value?: string;
  resolve: (value: unknown) => void;
}

export interface OpRun {
  state: "running" | "done" | "error";
  progress: number | null;
  started: number;
  seconds?: number;
  error?: string;
  result?: string;
}

export interface Plot {
  name: string;
  /** the plugin that sent it */
  source: string;
  x: number[];
  series: Record<string, number[]>;
  xlabel?: string;
  ylabel?: string;
}

export interface WindowInstance {
  id: string;
  pluginId: string;
  name: string;
  /** set when the window was opened by api.createWindow with data */
  data?: unknown;
  /** a window plugin's frame (the default), markdown shown by the app, or a message instead of a window */
  kind?: "frame" | "markdown" | "note";
  /** the markdown, or the message */
  text?: string;
  /** said above the window (e.g. files it wanted from the internet) */
  notes?: string[];
}

/** Painted labels (an open labels image) and the image they belong to (annotations.ts). */
export interface AnnotationLink {
  imageId: string;
  imageName: string;
  /** the annotation's name on the hub */
  name: string;
  /** painted since the last save */
  dirty: boolean;
  /** when it was last saved, as the hub said; null if never */
  saved: string | null;
}

/** A web-worker plugin running in this tab (workers.ts). */
export interface WorkerState {
  state: "starting" | "ready" | "crashed";
  error?: string;
}

interface State {
  token: string | null;
  connection: ConnectionState | "no-token";
  connectionDetail: string;
  plugins: PluginManifest[];
  pluginErrors: { path: string; error: string }[];
  selectedPlugin: string | null;
  images: NdImage[];
  activeImage: string | null;
  overlay: string | null;
  tables: TableData[];
  activeTable: string | null;
  log: LogEntry[];
  toasts: LogEntry[];
  status: string;
  progress: Record<string, number>;
  runs: Record<string, OpRun>;
  dialogs: Dialog[];
  plots: Record<string, Plot>;
  windows: WindowInstance[];
  /** web-worker plugins running in this tab, by plugin id */
  workers: Record<string, WorkerState>;
  /** what the centre shows: "viewer", "table", "workflow" or a window's id */
  view: string;
  /** the install dialog is open with this URL ("" for an empty one) */
  installUrl: string | null;
  /** editable labels images (by id) and the image each belongs to */
  annotationLinks: Record<string, AnnotationLink>;
  /** bumped when annotations are saved or deleted on the hub (lists refresh) */
  annotationsVersion: number;
}

export const useStore = create<State>(() => ({
  token: null,
  connection: "connecting",
  connectionDetail: "",
  plugins: [],
  pluginErrors: [],
  selectedPlugin: null,
  images: [],
  activeImage: null,
  overlay: null,
  tables: [],
  activeTable: null,
  log: [],
  toasts: [],
  status: "",
  progress: {},
  runs: {},
  dialogs: [],
  plots: {},
  windows: [],
  workers: {},
  view: "viewer",
  installUrl: null,
  annotationLinks: {},
  annotationsVersion: 0,
}));

export const set = useStore.setState;
export const get = useStore.getState;

let nextId = 1;
export const newId = (): number => nextId++;

export function addLog(level: LogEntry["level"], source: string, text: string, detail?: string, toast = false) {
  const entry: LogEntry = { id: newId(), time: Date.now(), level, source, text, detail };
  set((s) => ({ log: [...s.log.slice(-499), entry] }));
  if (toast) {
    set((s) => ({ toasts: [...s.toasts.slice(-4), entry] }));
    window.setTimeout(
      () => set((s) => ({ toasts: s.toasts.filter((t) => t.id !== entry.id) })),
      level === "error" ? 12000 : 6000,
    );
  }
}

export function addImage(image: NdImage, show = true) {
  set((s) => {
    const images = [...s.images.filter((i) => i.id !== image.id), image];
    if (!show) return { images };
    if (image.kind === "labels" && s.activeImage && sameSize(s.images, s.activeImage, image)) {
      return { images, overlay: image.id, view: "viewer" };
    }
    return { images, activeImage: image.id, overlay: null, view: "viewer" };
  });
}

function sameSize(images: NdImage[], id: string, labels: NdImage): boolean {
  const base = images.find((i) => i.id === id);
  if (!base) return false;
  const yx = (img: NdImage) => img.shape.slice(-2).join("x");
  return yx(base) === yx(labels);
}

export function addTable(table: TableData) {
  set((s) => ({
    tables: [...s.tables.filter((t) => t.id !== table.id), table],
    activeTable: table.id,
    view: "table",
  }));
}

export function ask(kind: Dialog["kind"], title: string, text: string, value?: string): Promise<unknown> {
  return new Promise((resolve) => {
    const dialog: Dialog = {
      id: newId(),
      kind,
      title,
      text,
      value,
      resolve: (v) => {
        set((s) => ({ dialogs: s.dialogs.filter((d) => d.id !== dialog.id) }));
        resolve(v);
      },
    };
    set((s) => ({ dialogs: [...s.dialogs, dialog] }));
  });
}
