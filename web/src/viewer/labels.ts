// Editing a label image in place: brush and eraser strokes, flood fill, picking, deleting a label, the next
// unused label, and undo/redo by stroke. Pure functions on typed arrays (no DOM), and the hooks through which
// the app that hosts the viewer creates, copies and saves editable labels.

import type { NdImage } from "./types";

/** The editing tools, as napari names them (its keys: 1/E erase, 2/P paint, 4/F fill, 5/L pick, 6/Z pan). */
export type Tool = "paint" | "erase" | "fill" | "pick" | "pan";

/** A rectangle of a plane, x0..x1 and y0..y1 exclusive of the ends; null when nothing changed. */
export interface Rect {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/** One 2D plane of a label image: its pixels start at offset and run row by row. */
export interface LabelPlane {
  data: Int32Array;
  offset: number;
  width: number;
  height: number;
}

function grow(rect: Rect | null, x0: number, y0: number, x1: number, y1: number): Rect {
  if (!rect) return { x0, y0, x1, y1 };
  return { x0: Math.min(rect.x0, x0), y0: Math.min(rect.y0, y0), x1: Math.max(rect.x1, x1), y1: Math.max(rect.y1, y1) };
}

/** What one stroke (or fill, or delete) changed: every pixel's index and value before it, each pixel once. */
export class Edit {
  private readonly seen = new Set<number>();
  readonly indices: number[] = [];
  readonly before: number[] = [];
  after: Int32Array | null = null;

  /** Sets data[i] to value, remembering the old value the first time i is touched. */
  set(data: Int32Array, i: number, value: number): void {
    if (!this.seen.has(i)) {
      this.seen.add(i);
      this.indices.push(i);
      this.before.push(data[i]);
    }
    data[i] = value;
  }

  get size(): number {
    return this.indices.length;
  }

  /** Keep the values after the edit (for redo); call once the edit is complete. */
  seal(data: Int32Array): void {
    this.after = Int32Array.from(this.indices, (i) => data[i]);
  }
}

/** Undo and redo, one entry per stroke. */
export class History {
  private done: Edit[] = [];
  private undone: Edit[] = [];

  constructor(private readonly limit = 100) {}

  get canUndo(): boolean {
    return this.done.length > 0;
  }

  get canRedo(): boolean {
    return this.undone.length > 0;
  }

  /** A finished edit; an empty one is dropped. Any redo is forgotten. */
  push(data: Int32Array, edit: Edit): void {
    if (edit.size === 0) return;
    edit.seal(data);
    this.done.push(edit);
    if (this.done.length > this.limit) this.done.shift();
    this.undone = [];
  }

  /** Puts back the pixels of the last edit; false when there is none. */
  undo(data: Int32Array): boolean {
    const edit = this.done.pop();
    if (!edit) return false;
    for (let k = 0; k < edit.indices.length; k++) data[edit.indices[k]] = edit.before[k];
    this.undone.push(edit);
    return true;
  }

  redo(data: Int32Array): boolean {
    const edit = this.undone.pop();
    if (!edit) return false;
    const after = edit.after!;
    for (let k = 0; k < edit.indices.length; k++) data[edit.indices[k]] = after[k];
    this.done.push(edit);
    return true;
  }
}

const histories = new WeakMap<object, History>();

/** The undo history of a label image's pixels, kept as long as the pixels are. */
export function historyOf(data: Int32Array): History {
  let history = histories.get(data);
  if (!history) histories.set(data, (history = new History()));
  return history;
}

/** Offsets of a round brush of diameter size (pixels whose centre lies within size/2 of the centre). */
export function brushOffsets(size: number): [number, number][] {
  const r = Math.max(1, size) / 2;
  const reach = Math.floor(r);
  const out: [number, number][] = [];
  for (let dy = 0 - reach; dy <= reach; dy++) {
    for (let dx = 0 - reach; dx <= reach; dx++) if (dx * dx + dy * dy <= r * r) out.push([dx, dy]);
  }
  return out;
}

/** Stamps the brush at pixel (cx, cy); gives the rectangle it covered inside the plane, or null. */
export function stamp(plane: LabelPlane, cx: number, cy: number, offsets: [number, number][], value: number, edit: Edit): Rect | null {
  const { data, offset, width, height } = plane;
  let rect: Rect | null = null;
  for (const [dx, dy] of offsets) {
    const x = cx + dx, y = cy + dy;
    if (x < 0 || y < 0 || x >= width || y >= height) continue;
    const i = offset + y * width + x;
    if (data[i] !== value) edit.set(data, i, value);
    rect = grow(rect, x, y, x + 1, y + 1);
  }
  return rect;
}

/** A brush stroke from (x0, y0) to (x1, y1) (pixel coordinates, fractional allowed): stamps at most one pixel
 * apart, so that a fast pointer leaves no gaps. Gives the rectangle it covered. */
export function strokeLine(
  plane: LabelPlane, x0: number, y0: number, x1: number, y1: number, size: number, value: number, edit: Edit,
): Rect | null {
  const offsets = brushOffsets(size);
  const steps = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0)));
  let rect: Rect | null = null;
  let last = "";
  for (let s = 0; s <= steps; s++) {
    const cx = Math.floor(x0 + ((x1 - x0) * s) / steps), cy = Math.floor(y0 + ((y1 - y0) * s) / steps);
    const key = `${cx},${cy}`;
    if (key === last) continue;
    last = key;
    const r = stamp(plane, cx, cy, offsets, value, edit);
    if (r) rect = grow(rect, r.x0, r.y0, r.x1, r.y1);
  }
  return rect;
}

/** Flood fill from (x, y): the 4-connected region of its label value in this plane becomes value. */
export function floodFill(plane: LabelPlane, x: number, y: number, value: number, edit: Edit): Rect | null {
  const { data, offset, width, height } = plane;
  x = Math.floor(x);
  y = Math.floor(y);
  if (x < 0 || y < 0 || x >= width || y >= height) return null;
  const target = data[offset + y * width + x];
  if (target === value) return null;
  let stack = new Int32Array(1024);
  let top = 0;
  const push = (p: number) => {
    if (top === stack.length) {
      const bigger = new Int32Array(stack.length * 2);
      bigger.set(stack);
      stack = bigger;
    }
    stack[top++] = p;
  };
  let rect: Rect | null = null;
  push(y * width + x);
  edit.set(data, offset + y * width + x, value);
  while (top > 0) {
    const p = stack[--top];
    const px = p % width, py = (p - px) / width;
    rect = grow(rect, px, py, px + 1, py + 1);
    // the value set marks a pixel as done: it no longer equals target
    if (px > 0 && data[offset + p - 1] === target) { edit.set(data, offset + p - 1, value); push(p - 1); }
    if (px < width - 1 && data[offset + p + 1] === target) { edit.set(data, offset + p + 1, value); push(p + 1); }
    if (py > 0 && data[offset + p - width] === target) { edit.set(data, offset + p - width, value); push(p - width); }
    if (py < height - 1 && data[offset + p + width] === target) { edit.set(data, offset + p + width, value); push(p + width); }
  }
  return rect;
}

/** Every pixel of label id, in every plane, becomes 0. Gives how many there were. */
export function deleteLabel(data: Int32Array, id: number, edit: Edit): number {
  if (id === 0) return 0;
  let n = 0;
  for (let i = 0; i < data.length; i++) {
    if (data[i] === id) {
      edit.set(data, i, 0);
      n++;
    }
  }
  return n;
}

/** The label a new object gets: one more than the largest in the image (1 for an empty one). */
export function nextLabel(data: Int32Array): number {
  let max = 0;
  for (let i = 0; i < data.length; i++) if (data[i] > max) max = data[i];
  return Math.min(max + 1, 2 ** 31 - 1);
}

/** The editable labels' shape and axes for an image: the image's without its channel axis. */
export function labelsGeometry(image: Pick<NdImage, "shape" | "axes">): { shape: number[]; axes: string } {
  const kept = [...image.axes].map((a, i) => [a, i] as const).filter(([a]) => a !== "c");
  return { shape: kept.map(([, i]) => image.shape[i]), axes: kept.map(([a]) => a).join("") };
}

/** What the app hosting the viewer does for editable labels (the viewer itself keeps no images). */
export interface LabelsHost {
  /** open new empty labels over image, for painting */
  create(image: NdImage): void;
  /** open an editable int32 copy of labels, painted over image */
  copy(labels: NdImage, image: NdImage | null): void;
  /** keep the labels (on the hub); resolves to a line saying where */
  save(labels: NdImage): Promise<string>;
  /** the labels' pixels changed (a stroke, a fill, an undo) */
  edited(labels: NdImage): void;
}

let host: LabelsHost | null = null;

export function setLabelsHost(next: LabelsHost | null): void {
  host = next;
}

export function labelsHost(): LabelsHost | null {
  return host;
}
