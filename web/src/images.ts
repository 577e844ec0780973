// Images and tables: imjoy-rpc's ndarray encoding, the hub's raw-pixel routes, files in and out.

import { request } from "./hub";
import { NdArray } from "./transfer";
import type { PortSpec, TableData } from "./types";
import type { DType, NdImage, TypedArray } from "./viewer/types";

const ARRAYS: Record<DType, { new (buffer: ArrayBuffer, offset?: number, length?: number): TypedArray; BYTES_PER_ELEMENT: number }> = {
  bool: Uint8Array,
  uint8: Uint8Array,
  int8: Int8Array,
  uint16: Uint16Array,
  int16: Int16Array,
  uint32: Uint32Array,
  int32: Int32Array,
  float32: Float32Array,
  float64: Float64Array,
};

let counter = 0;
export const imageId = (): string => `img-${Date.now().toString(36)}-${(counter++).toString(36)}`;

/** Typed pixels from raw little-endian bytes (copied when the bytes are not aligned for the type). */
export function typedFromBytes(bytes: Uint8Array, dtype: string): { data: TypedArray; dtype: DType } {
  if (/^[<>|=]/.test(dtype)) {
    const bigEndian = dtype[0] === ">";
    dtype = NUMPY_CODES[dtype.slice(1)] ?? dtype.slice(1);
    if (bigEndian) bytes = swapBytes(bytes, itemSize(dtype));
  }
  if (dtype === "int64" || dtype === "uint64") {
    const wide = dtype === "int64"
      ? new BigInt64Array(bytes.slice().buffer)
      : new BigUint64Array(bytes.slice().buffer);
    let fits = true;
    for (let i = 0; i < wide.length; i++) {
      const v = wide[i];
      if (v > 2147483647n || v < -2147483648n) {
        fits = false;
        break;
      }
    }
    if (fits) return { data: Int32Array.from(wide, (v) => Number(v)), dtype: "int32" };
    return { data: Float64Array.from(wide, (v) => Number(v)), dtype: "float64" };
  }
  if (dtype === "float16") {
    const halves = new Uint16Array(bytes.slice().buffer);
    return { data: Float32Array.from(halves, halfToFloat), dtype: "float32" };
  }
  const kind = ARRAYS[dtype as DType];
  if (!kind) throw new Error(`images of type ${dtype} cannot be shown`);
  const size = kind.BYTES_PER_ELEMENT;
  const aligned = bytes.byteOffset % size === 0 ? bytes : bytes.slice();
  return {
    data: new kind(aligned.buffer as ArrayBuffer, aligned.byteOffset, aligned.byteLength / size),
    dtype: dtype as DType,
  };
}

const NUMPY_CODES: Record<string, string> = {
  b1: "bool", u1: "uint8", i1: "int8", u2: "uint16", i2: "int16", u4: "uint32", i4: "int32",
  u8: "uint64", i8: "int64", f2: "float16", f4: "float32", f8: "float64",
};

function itemSize(dtype: string): number {
  const sizes: Record<string, number> = { int64: 8, uint64: 8, float64: 8, float16: 2 };
  return sizes[dtype] ?? ARRAYS[dtype as DType]?.BYTES_PER_ELEMENT ?? 1;
}

function swapBytes(bytes: Uint8Array, size: number): Uint8Array {
  if (size === 1) return bytes;
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i += size) for (let j = 0; j < size; j++) out[i + j] = bytes[i + size - 1 - j];
  return out;
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

/** Axis names for an array of this shape when nobody said (channels first when few). */
export function guessAxes(shape: number[], hint?: string | null): string {
  if (hint && hint.length === shape.length) return hint;
  switch (shape.length) {
    case 2:
      return "yx";
    case 3:
      return shape[0] <= 4 ? "cyx" : "zyx";
    case 4:
      return "czyx";
    case 5:
      return "tczyx";
    default:
      throw new Error(`cannot show an array of ${shape.length} dimensions (shape ${shape.join("×")})`);
  }
}

export function isNdarray(value: unknown): value is { _rtype: "ndarray"; _rvalue: Uint8Array | ArrayBuffer; _rshape: number[]; _rdtype: string } {
  return typeof value === "object" && value !== null && (value as { _rtype?: string })._rtype === "ndarray";
}

function bytesOf(value: Uint8Array | ArrayBuffer | ArrayBufferView): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  return new Uint8Array(value.buffer as ArrayBuffer, value.byteOffset, value.byteLength);
}

/** An imjoy-rpc ndarray (as received from a plugin) → an image the viewer shows. */
export function fromNdarray(
  value: { _rvalue: Uint8Array | ArrayBuffer; _rshape: number[]; _rdtype: string },
  name: string,
  options: { axes?: string | null; kind?: NdImage["kind"]; source?: string } = {},
): NdImage {
  const { data, dtype } = typedFromBytes(bytesOf(value._rvalue), value._rdtype);
  const shape = [...value._rshape];
  const expected = shape.reduce((a, b) => a * b, 1);
  if (data.length !== expected) {
    throw new Error(`${name}: ${data.length} values for shape ${shape.join("×")} (${expected} expected)`);
  }
  const kind = options.kind ?? (looksLikeLabels(name, dtype) ? "labels" : "image");
  return { id: imageId(), name, data, shape, dtype, axes: guessAxes(shape, options.axes), kind, source: options.source };
}

function looksLikeLabels(name: string, dtype: DType): boolean {
  return /label|segment|mask|instance/i.test(name) && /int/.test(dtype);
}

/** An image as an argument of a call: the array codec sends it inline when small, out of band when large. */
export function toNdarray(image: NdImage): NdArray {
  return new NdArray(image.data, image.shape, image.dtype);
}

export async function arrayFromResponse(response: Response, name: string, source: string): Promise<NdImage> {
  const shape = (response.headers.get("X-Shape") || "").split(",").filter(Boolean).map(Number);
  const dtype = response.headers.get("X-Dtype") || "uint8";
  const axes = response.headers.get("X-Axes") || guessAxes(shape);
  const bytes = new Uint8Array(await response.arrayBuffer());
  const typed = typedFromBytes(bytes, dtype);
  return { id: imageId(), name, data: typed.data, dtype: typed.dtype, shape, axes, kind: "image", source };
}

export interface SampleInfo {
  id: string;
  name: string;
  description: string;
  axes: string;
  shape: number[];
  dtype: string;
  source: string;
  licence: string;
  kind?: string;
  labels?: string;
}

export async function loadSample(token: string, sample: SampleInfo): Promise<NdImage> {
  const response = await request(token, `/api/samples/${encodeURIComponent(sample.id)}`);
  const image = await arrayFromResponse(response, sample.name, `sample ${sample.id}`);
  if (sample.kind === "labels") image.kind = "labels";
  return image;
}

/** A TIFF/OME-TIFF/PNG/JPEG file the user picked or dropped, read by the hub. */
export async function openFile(token: string, file: File): Promise<NdImage> {
  const response = await request(token, `/api/images/read?name=${encodeURIComponent(file.name)}`, {
    method: "POST",
    body: file,
  });
  return arrayFromResponse(response, file.name, `file ${file.name}`);
}

/** Save an image as TIFF (pixels exact) or PNG (8/16 bit; floats stretched), written by the hub. */
export async function downloadImage(token: string, image: NdImage, format: "tiff" | "png"): Promise<void> {
  const query = new URLSearchParams({
    format,
    shape: image.shape.join(","),
    dtype: image.dtype === "bool" ? "uint8" : image.dtype,
    axes: image.axes,
  });
  const d = image.data;
  const response = await request(token, `/api/images/write?${query}`, {
    method: "POST",
    body: new Uint8Array(d.buffer as ArrayBuffer, d.byteOffset, d.byteLength),
  });
  const base = image.name.replace(/\.(ome\.)?(tiff?|png|jpe?g)$/i, "").replace(/[^\w.-]+/g, "_");
  saveBlob(await response.blob(), `${base}.${format === "tiff" ? "tif" : "png"}`);
}

export function saveBlob(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  window.setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/** A table port's value (columns dict or list of row dicts) → a table, or null if it is not one. */
export function asTable(value: unknown, name: string, source?: string): TableData | null {
  if (
    Array.isArray(value) &&
    value.length > 0 &&
    value.every((r) => r && typeof r === "object" && !Array.isArray(r) && !isNdarray(r))
  ) {
    const columns = [...new Set(value.flatMap((r) => Object.keys(r as object)))];
    const rows = value.map((r) => columns.map((c) => (r as Record<string, unknown>)[c]));
    return { id: imageId(), name, columns, rows, source };
  }
  if (value && typeof value === "object" && !Array.isArray(value) && !isNdarray(value)) {
    const raw = Object.entries(value as Record<string, unknown>);
    if (raw.some(([, v]) => isNdarray(v) && v._rshape.length !== 1)) return null; // images are not columns
    const entries = raw.map(
      ([k, v]) => [k, isNdarray(v) ? Array.from(typedFromBytes(bytesOf(v._rvalue), v._rdtype).data as ArrayLike<number>) : v] as const,
    );
    if (entries.length === 0 || !entries.every(([, v]) => Array.isArray(v))) return null;
    const length = (entries[0][1] as unknown[]).length;
    if (!entries.every(([, v]) => (v as unknown[]).length === length)) return null;
    const rows = Array.from({ length }, (_, i) => entries.map(([, v]) => (v as unknown[])[i]));
    return { id: imageId(), name, columns: entries.map(([k]) => k), rows, source };
  }
  return null;
}

export function tableToCsv(table: TableData): string {
  const cell = (v: unknown) => {
    let text = v === null || v === undefined ? "" : String(v);
    if (typeof v === "string" && /^[=+\-@\t\r]/.test(text)) text = `'${text}`; // spreadsheets run these as formulas
    return /[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  };
  return [table.columns.map(cell).join(","), ...table.rows.map((r) => r.map(cell).join(","))].join("\n") + "\n";
}

/** What the viewer and tables make of an op's result. */
export function describePort(port: PortSpec | undefined): { axes: string | null; labels: boolean } {
  return { axes: port?.axes ?? null, labels: /label/i.test(port?.name ?? "") };
}
