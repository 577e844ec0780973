// Annotations: label images painted over an open image in the viewer, saved on the hub beside that image.
//
// An image is known by its key: the sha256 of its dtype, shape and pixels, as the hub's content_hash computes
// it. The same pixels opened again (a sample, the same file) find their saved annotations. Painted labels are
// ordinary open images too (kind "labels", int32, the image's axes without "c"), so an op can take them.

import { request, getJson } from "./hub";
import { arrayFromResponse, imageId, saveBlob } from "./images";
import { sha256Hex } from "./sha256";
import { addImage, addLog, get, set, type AnnotationLink } from "./store";
import { labelsGeometry, setLabelsHost } from "./viewer/labels";
import type { DType, NdImage } from "./viewer/types";

/** One saved annotation, as the hub lists it. */
export interface AnnotationInfo {
  image: string;
  name: string;
  image_name: string;
  shape: number[];
  axes: string;
  bytes: number;
  modified: string;
}

// numpy's dtype.str of each type: the prefix of the hashed bytes, as content_hash writes it
const NUMPY: Record<DType, string> = {
  bool: "|b1", uint8: "|u1", int8: "|i1", uint16: "<u2", int16: "<i2", uint32: "<u4", int32: "<i4",
  float32: "<f4", float64: "<f8",
};

const keys = new WeakMap<object, Promise<string>>();

/** The image's key: sha256 of "<dtype>|[shape]|" and its little-endian bytes (content_hash on the hub). */
export function imageKey(image: NdImage): Promise<string> {
  let key = keys.get(image.data);
  if (!key) {
    const head = new TextEncoder().encode(`${NUMPY[image.dtype]}|[${image.shape.join(", ")}]|`);
    const d = image.data;
    const bytes = new Uint8Array(d.buffer as ArrayBuffer, d.byteOffset, d.byteLength);
    key = digest(head, bytes);
    keys.set(image.data, key);
  }
  return key;
}

async function digest(head: Uint8Array, bytes: Uint8Array): Promise<string> {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) return sha256Hex([head, bytes]);
  const all = new Uint8Array(head.length + bytes.length);
  all.set(head);
  all.set(bytes, head.length);
  const hash = new Uint8Array(await subtle.digest("SHA-256", all));
  return Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("");
}

const token = () => get().token || "";

export async function listAnnotations(image: NdImage): Promise<AnnotationInfo[]> {
  const key = await imageKey(image);
  return getJson<AnnotationInfo[]>(token(), `/api/annotations?image=${key}`);
}

function link(labels: NdImage, value: AnnotationLink) {
  set((s) => ({ annotationLinks: { ...s.annotationLinks, [labels.id]: value } }));
}

/** A name for new labels of image not yet taken on the hub: labels, labels-2, ... */
async function freeName(image: NdImage): Promise<string> {
  const taken = new Set((await listAnnotations(image).catch(() => [])).map((a) => a.name));
  const open = Object.values(get().annotationLinks).filter((l) => l.imageId === image.id).map((l) => l.name);
  for (const name of open) taken.add(name);
  for (let i = 1; ; i++) {
    const name = i === 1 ? "labels" : `labels-${i}`;
    if (!taken.has(name)) return name;
  }
}

function show(labels: NdImage, image: NdImage) {
  set({ activeImage: image.id, view: "viewer" });
  addImage(labels);
  set({ activeImage: image.id, overlay: labels.id, view: "viewer" });
}

/** New empty labels over image, to paint. */
export async function createLabels(image: NdImage): Promise<NdImage> {
  const { shape, axes } = labelsGeometry(image);
  const name = await freeName(image);
  const labels: NdImage = {
    id: imageId(), name: `${image.name} · ${name}`, data: new Int32Array(shape.reduce((a, b) => a * b, 1)), shape,
    dtype: "int32", axes, kind: "labels", editable: true, source: `labels painted on ${image.name}`,
  };
  link(labels, { imageId: image.id, imageName: image.name, name, dirty: false, saved: null });
  show(labels, image);
  addLog("info", "annotations", `painting ${labels.name}`);
  return labels;
}

/** An editable int32 copy of labels (e.g. a segmentation to correct), over image. */
export async function copyLabels(labels: NdImage, image: NdImage): Promise<NdImage | null> {
  const { shape, axes } = labelsGeometry(image);
  if (labels.shape.join() !== shape.join()) {
    addLog("error", "annotations", `${labels.name} (${labels.shape.join("×")}) does not fit ${image.name}: its labels are ${shape.join("×")}`, undefined, true);
    return null;
  }
  const data = Int32Array.from(labels.data as ArrayLike<number>, (v) => Math.round(Number(v)));
  const name = await freeName(image);
  const copy: NdImage = {
    id: imageId(), name: `${image.name} · ${name}`, data, shape, dtype: "int32", axes, kind: "labels", editable: true,
    source: `labels painted on ${image.name}, from ${labels.name}`,
  };
  link(copy, { imageId: image.id, imageName: image.name, name, dirty: true, saved: null });
  show(copy, image);
  return copy;
}

/** Keep labels on the hub as TIFF beside their image (created or overwritten); says where. */
export async function saveLabels(labels: NdImage): Promise<string> {
  const linked = get().annotationLinks[labels.id];
  if (!linked) throw new Error("these labels belong to no image");
  const image = get().images.find((i) => i.id === linked.imageId);
  if (!image) throw new Error(`${linked.imageName} is closed: open it again to save its labels`);
  const key = await imageKey(image);
  const query = new URLSearchParams({ format: "tiff", shape: labels.shape.join(","), dtype: "int32", axes: labels.axes });
  const d = labels.data;
  const file = await (await request(token(), `/api/images/write?${query}`, {
    method: "POST",
    body: new Uint8Array(d.buffer as ArrayBuffer, d.byteOffset, d.byteLength),
  })).arrayBuffer();
  const where = new URLSearchParams({ image_shape: image.shape.join(","), image_axes: image.axes, image_name: image.name });
  const response = await request(token(), `/api/annotations/${key}/${encodeURIComponent(linked.name)}?${where}`, {
    method: "PUT",
    headers: { "Content-Type": "image/tiff" },
    body: file,
  });
  const saved = (await response.json()) as AnnotationInfo;
  link(labels, { ...linked, dirty: false, saved: saved.modified });
  set((s) => ({ annotationsVersion: s.annotationsVersion + 1 }));
  addLog("info", "annotations", `saved ${linked.name} of ${image.name} on the hub`);
  return `Saved as “${linked.name}” at ${new Date().toLocaleTimeString()}`;
}

/** Open a saved annotation over its image, editable (or show it, if it is open already). */
export async function openAnnotation(info: AnnotationInfo, image: NdImage): Promise<NdImage> {
  const open = Object.entries(get().annotationLinks).find(([, l]) => l.imageId === image.id && l.name === info.name);
  const already = open && get().images.find((i) => i.id === open[0]);
  if (already) {
    set({ activeImage: image.id, overlay: already.id, view: "viewer" });
    return already;
  }
  const file = await (await request(token(), `/api/annotations/${info.image}/${encodeURIComponent(info.name)}`)).arrayBuffer();
  const response = await request(token(), `/api/images/read?name=${encodeURIComponent(info.name + ".tif")}`, {
    method: "POST",
    body: file,
  });
  const read = await arrayFromResponse(response, `${image.name} · ${info.name}`, `labels painted on ${image.name}`);
  const { shape, axes } = labelsGeometry(image);
  if (read.dtype !== "int32" || read.shape.join() !== shape.join()) {
    throw new Error(`${info.name} is ${read.dtype} ${read.shape.join("×")}, not int32 ${shape.join("×")}`);
  }
  const labels: NdImage = { ...read, axes, kind: "labels", editable: true };
  link(labels, { imageId: image.id, imageName: image.name, name: info.name, dirty: false, saved: info.modified });
  show(labels, image);
  return labels;
}

export async function downloadAnnotation(info: AnnotationInfo): Promise<void> {
  const response = await request(token(), `/api/annotations/${info.image}/${encodeURIComponent(info.name)}`);
  const base = info.image_name.replace(/\.(ome\.)?(tiff?|png|jpe?g)$/i, "").replace(/[^\w.-]+/g, "_");
  saveBlob(await response.blob(), `${base}_${info.name}.tif`);
}

export async function deleteAnnotation(info: AnnotationInfo): Promise<void> {
  await request(token(), `/api/annotations/${info.image}/${encodeURIComponent(info.name)}`, { method: "DELETE" });
  set((s) => ({ annotationsVersion: s.annotationsVersion + 1 }));
}

function failed(what: string) {
  return (err: unknown) => addLog("error", "annotations", `${what}: ${err instanceof Error ? err.message : String(err)}`, undefined, true);
}

// the viewer paints; these keep what it paints
setLabelsHost({
  create: (image) => void createLabels(image).catch(failed("new labels")),
  copy: (labels, image) => {
    if (image) void copyLabels(labels, image).catch(failed("copying labels"));
  },
  save: saveLabels,
  edited: (labels) => {
    const linked = get().annotationLinks[labels.id];
    if (linked && !linked.dirty) link(labels, { ...linked, dirty: true });
  },
});
