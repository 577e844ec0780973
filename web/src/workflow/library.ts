// Workflows on the hub: saved ones with their versions, the gallery, pins checked and restored, links fetched.

import { refreshPlugins } from "../actions";
import { getJson, postJson } from "../hub";
import { get as app } from "../store";
import { checkShape, type PinState, type WorkflowDoc } from "./doc";
import { currentDoc, editor, loadDoc, notify } from "./editor";

const token = () => app().token || "";

export interface Saved {
  name: string;
  title: string;
  description: string;
  updated: string | number | null;
  versions: number;
}

export interface Version {
  version: string | number;
  saved: string | number | null;
  sha256: string;
  size: number;
}

export interface GalleryItem {
  name: string;
  title: string;
  description: string;
}

export type { PinState };

export interface Check {
  ok: boolean;
  errors: { node: string | null; field: string; message: string }[];
  pins: PinState[];
}

export const SAVE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** names the hub's routes use */
export const RESERVED = new Set(["check", "fetch", "pin"]);

export const listSaved = () => getJson<Saved[]>(token(), "/api/workflows");
export const listVersions = (name: string) => getJson<Version[]>(token(), `/api/workflows/${encodeURIComponent(name)}/versions`);
export const listGallery = () => getJson<GalleryItem[]>(token(), "/api/gallery");

export async function openSaved(name: string, version: string | number | null = null): Promise<void> {
  const query = version === null ? "" : `?version=${encodeURIComponent(String(version))}`;
  const doc = checkShape(await getJson<unknown>(token(), `/api/workflows/${encodeURIComponent(name)}${query}`));
  loadDoc(doc, { name, version: version === null ? null : String(version) });
  await checkPins();
}

export async function openGallery(name: string): Promise<void> {
  const doc = checkShape(await getJson<unknown>(token(), `/api/gallery/${encodeURIComponent(name)}`));
  loadDoc(doc);
  await checkPins();
}

export async function save(name: string): Promise<void> {
  const doc = currentDoc();
  const response = await fetch(`/api/workflows/${encodeURIComponent(name)}`, {
    method: "PUT",
    headers: { "Content-Type": "application/json", Authorization: `token ${token()}` },
    body: JSON.stringify(doc),
    cache: "no-store",
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const problems = Array.isArray(body.errors) ? body.errors.map((e: { message: string }) => e.message) : [];
    throw new Error([body.message || `${response.status} ${response.statusText}`, ...problems].join("; "));
  }
  const version = body.version === undefined || body.version === null ? null : String(body.version);
  editor.set({ saved: { name, version }, pins: doc.plugins });
  notify(`Saved as "${name}"${version ? ` (version ${version})` : ""}`);
}

/** What the hub says of this document: problems, and whether its plugins are still the pinned ones. */
export async function checkDoc(doc: WorkflowDoc = currentDoc()): Promise<Check> {
  return postJson<Check>(token(), "/api/workflows/check", doc);
}

/** The pin table's problems, shown above the canvas until the user decides. */
export async function checkPins(doc: WorkflowDoc = currentDoc()): Promise<void> {
  try {
    const check = await checkDoc(doc);
    const problems = (check.pins ?? []).filter((p) => p.state !== "ok");
    editor.set({ pinProblems: problems });
  } catch (err) {
    editor.set({ pinProblems: [] });
    notify(`The plugins could not be checked: ${String(err instanceof Error ? err.message : err)}`, "error");
  }
}

/** Put the pinned version of a plugin back on the hub (it keeps every version, or the URL still serves it). */
export async function usePinned(p: PinState): Promise<void> {
  await postJson(token(), "/api/workflows/pin", { plugin: p.plugin, sha256: p.pinned.sha256 });
  await refreshPlugins();
  notify(`${p.plugin}: the pinned version ${p.pinned.version} is back`);
  await checkPins();
}

/** Pin what is installed now instead. */
export async function updatePins(): Promise<void> {
  await refreshPlugins();
  const plugins = app().plugins;
  const pins = { ...editor.get().pins };
  for (const id of Object.keys(pins)) {
    const p = plugins.find((x) => x.id === id);
    if (p) pins[id] = { ...pins[id], version: p.version, sha256: p.sha256, url: p.source_url ?? pins[id].url };
    const environment = p?.status?.environment?.packages;
    if (p && environment && Object.keys(environment).length) pins[id].environment = environment;
  }
  editor.set({ pins });
  await checkPins();
}

export async function fetchLinked(url: string, publicOnly: boolean): Promise<WorkflowDoc> {
  const body = await postJson<{ document: unknown }>(token(), "/api/workflows/fetch", { url, public_only: publicOnly });
  return checkShape(body.document);
}
