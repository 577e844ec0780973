// Pure pixel functions of the viewer: planes of an NdImage, contrast lookup tables, channel composition,
// label colours and percentiles. Nothing here touches the DOM.

import type { DType, NdImage, TypedArray } from "./types";

/** An RGB colour, each component 0..255. */
export type Rgb = [number, number, number];

/** Display settings of one channel. */
export interface ChannelSpec {
  color: Rgb;
  visible: boolean;
  /** contrast limits in raw pixel values: lo shows black, hi full colour */
  lo: number;
  hi: number;
}

/** Where one 2D plane of an image lives, and its size. */
export interface Plane {
  data: TypedArray;
  dtype: DType;
  /** index of pixel (0, 0) in data */
  offset: number;
  width: number;
  height: number;
}

export function axisSize(image: NdImage, axis: string): number {
  const i = image.axes.indexOf(axis);
  return i < 0 ? 1 : image.shape[i];
}

/** The (t, c, z) plane of an image; indices past an axis' end are clamped, missing axes ignored. */
export function planeOf(image: NdImage, t: number, c: number, z: number): Plane {
  const width = axisSize(image, "x");
  const height = axisSize(image, "y");
  let offset = 0;
  let stride = 1;
  for (let i = image.axes.length - 1; i >= 0; i--) {
    const axis = image.axes[i];
    const index = axis === "t" ? t : axis === "c" ? c : axis === "z" ? z : 0;
    offset += Math.max(0, Math.min(image.shape[i] - 1, index)) * stride;
    stride *= image.shape[i];
  }
  return { data: image.data, dtype: image.dtype, offset, width, height };
}

/** Integer types whose values all fit in a lookup table (at most 16 bits). */
export function hasLut(dtype: DType): boolean {
  return dtype === "bool" || dtype === "uint8" || dtype === "int8" || dtype === "uint16" || dtype === "int16";
}

/** The smallest value of a lookup-table type and how many values it has. */
export function lutDomain(dtype: DType): { min: number; size: number } {
  switch (dtype) {
    case "bool": return { min: 0, size: 256 }; // held as bytes: any non-zero byte is true
    case "uint8": return { min: 0, size: 256 };
    case "int8": return { min: -128, size: 256 };
    case "uint16": return { min: 0, size: 65536 };
    case "int16": return { min: -32768, size: 65536 };
    default: throw new Error(`no lookup table for ${dtype}`);
  }
}

/** Intensity 0..255 of raw value v under contrast limits lo..hi; NaN is 0; lo >= hi is a step at hi. */
export function intensity(v: number, lo: number, hi: number): number {
  if (!(v === v)) return 0;
  if (hi <= lo) return v >= hi ? 255 : 0;
  const i = Math.round(((v - lo) / (hi - lo)) * 255);
  return i < 0 ? 0 : i > 255 ? 255 : i;
}

/** Per-colour-component lookup tables of one channel, indexed by raw value minus lutDomain().min. */
export interface ChannelLut {
  r: Uint8Array;
  g: Uint8Array;
  b: Uint8Array;
  /** the same as packed little-endian RGBA (alpha 255), for a single channel written straight out */
  rgba: Uint32Array;
}

export function buildLut(dtype: DType, spec: ChannelSpec): ChannelLut {
  const { min, size } = lutDomain(dtype);
  const [cr, cg, cb] = spec.color;
  const r = new Uint8Array(size), g = new Uint8Array(size), b = new Uint8Array(size);
  const rgba = new Uint32Array(size);
  for (let k = 0; k < size; k++) {
    const i = intensity(min + k, spec.lo, spec.hi);
    const vr = (i * cr + 127) / 255 | 0, vg = (i * cg + 127) / 255 | 0, vb = (i * cb + 127) / 255 | 0;
    r[k] = vr; g[k] = vg; b[k] = vb;
    rgba[k] = (0xff000000 | (vb << 16) | (vg << 8) | vr) >>> 0;
  }
  return { r, g, b, rgba };
}

/** One visible channel ready to compose: its plane, its settings, and its table when its type has one. */
export interface ChannelLayer {
  plane: Plane;
  spec: ChannelSpec;
  lut: ChannelLut | null;
}

/**
 * Composes channels additively into out (RGBA, width*height*4), saturating at 255; alpha is 255.
 * With no visible channel the result is black.
 */
export function composeChannels(layers: ChannelLayer[], out: Uint8ClampedArray): void {
  const n = out.length >> 2;
  const out32 = new Uint32Array(out.buffer, out.byteOffset, n);
  const visible = layers.filter((l) => l.spec.visible);
  if (visible.length === 1 && visible[0].lut) {
    const { plane, lut } = visible[0];
    const { data, offset } = plane;
    const table = lut!.rgba;
    const shift = -lutDomain(plane.dtype).min;
    for (let p = 0; p < n; p++) out32[p] = table[data[offset + p] + shift];
    return;
  }
  out32.fill(0xff000000);
  for (const { plane, spec, lut } of visible) {
    const { data, offset } = plane;
    if (lut) {
      const shift = -lutDomain(plane.dtype).min;
      const { r, g, b } = lut;
      for (let p = 0, q = 0; p < n; p++, q += 4) {
        const k = data[offset + p] + shift;
        out[q] += r[k]; out[q + 1] += g[k]; out[q + 2] += b[k];
      }
    } else {
      const { lo, hi } = spec;
      const [cr, cg, cb] = spec.color;
      const step = hi > lo;
      const scale = step ? 1 / (hi - lo) : 0;
      const fr = cr / 255, fg = cg / 255, fb = cb / 255;
      for (let p = 0, q = 0; p < n; p++, q += 4) {
        const v = data[offset + p];
        let i: number;
        if (step) {
          i = (v - lo) * scale * 255; // NaN stays NaN and fails both tests below
          i = i >= 0 ? (i <= 255 ? i : 255) : 0;
        } else {
          i = v >= hi ? 255 : 0;
        }
        if (i > 0) {
          out[q] += i * fr; out[q + 1] += i * fg; out[q + 2] += i * fb;
        }
      }
    }
  }
}

/** Default channel colours: 1 grey; 2 green, magenta; 3 red, green, blue; more from a palette. */
export function defaultColors(count: number): Rgb[] {
  if (count === 1) return [[255, 255, 255]];
  if (count === 2) return [[0, 255, 0], [255, 0, 255]];
  if (count === 3) return [[255, 0, 0], [0, 255, 0], [0, 0, 255]];
  const palette: Rgb[] = [
    [0, 255, 255], [255, 0, 255], [255, 255, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 128, 0], [128, 0, 255],
  ];
  return Array.from({ length: count }, (_, i) => palette[i % palette.length]);
}

const bits64 = new Float64Array(1);
const bitsLow = new Uint32Array(bits64.buffer);

function hash32(x: number): number {
  let h = Math.imul(x ^ (x >>> 16), 0x45d9f3b);
  h = Math.imul(h ^ (h >>> 16), 0x45d9f3b);
  return (h ^ (h >>> 16)) >>> 0;
}

/** The colour of label id (0 or NaN: null, transparent), the same on every call and in every session. */
export function labelColor(id: number): Rgb | null {
  if (id === 0 || !(id === id)) return null;
  let h: number;
  if (Number.isInteger(id) && Math.abs(id) < 2 ** 31) {
    h = hash32(id | 0);
  } else {
    // any other number (beyond 32 bits, fractional): hash both halves of its float64 bits
    bits64[0] = id;
    h = hash32(bitsLow[0] ^ hash32(bitsLow[1]));
  }
  const hue = (h & 0xffff) / 0x10000;
  const sat = 0.6 + (((h >>> 16) & 0xff) / 255) * 0.4;
  const val = 0.8 + ((h >>> 24) / 255) * 0.2;
  return hsvToRgb(hue, sat, val);
}

function hsvToRgb(h: number, s: number, v: number): Rgb {
  const i = Math.floor(h * 6), f = h * 6 - i;
  const p = v * (1 - s), q = v * (1 - f * s), t = v * (1 - (1 - f) * s);
  const [r, g, b] = [[v, t, p], [q, v, p], [p, v, t], [p, q, v], [t, p, v], [v, p, q]][i % 6];
  return [Math.round(r * 255), Math.round(g * 255), Math.round(b * 255)];
}

/**
 * Paints a label plane into out (RGBA): each label its colour with alpha 255, background (0) transparent.
 * With outline, only the label pixels that touch another value (4-neighbours, or the image edge) are painted.
 * With rect, only the pixels x0 <= x < x1, y0 <= y < y1 are painted (the rest of out is left as it was).
 */
export function renderLabels(
  plane: Plane, outline: boolean, out: Uint8ClampedArray, rect?: { x0: number; y0: number; x1: number; y1: number },
): void {
  const { data, offset, width, height } = plane;
  const out32 = new Uint32Array(out.buffer, out.byteOffset, out.length >> 2);
  const cache = new Map<number, number>();
  let lastId = 0, lastPacked = 0;
  const x0 = rect ? Math.max(0, rect.x0) : 0, x1 = rect ? Math.min(width, rect.x1) : width;
  const y0 = rect ? Math.max(0, rect.y0) : 0, y1 = rect ? Math.min(height, rect.y1) : height;
  for (let y = y0; y < y1; y++) {
    for (let x = x0, p = y * width + x0; x < x1; x++, p++) {
      const id = data[offset + p];
      if (id === 0 || !(id === id)) { out32[p] = 0; continue; }
      if (outline && x > 0 && x < width - 1 && y > 0 && y < height - 1) {
        const o = offset + p;
        if (data[o - 1] === id && data[o + 1] === id && data[o - width] === id && data[o + width] === id) {
          out32[p] = 0;
          continue;
        }
      }
      if (id !== lastId) {
        let packed = cache.get(id);
        if (packed === undefined) {
          const [r, g, b] = labelColor(id)!;
          packed = (0xff000000 | (b << 16) | (g << 8) | r) >>> 0;
          cache.set(id, packed);
        }
        lastId = id; lastPacked = packed;
      }
      out32[p] = lastPacked;
    }
  }
}

/** Low and high percentiles of a plane (fractions, e.g. 0.001 and 0.999), its finite min and max, and a
 * histogram of HIST_BINS equal bins from min to max. */
export interface PlaneStats {
  lo: number;
  hi: number;
  min: number;
  max: number;
  hist: Uint32Array;
}

export const HIST_BINS = 64;

function binIndex(v: number, min: number, max: number): number {
  return max > min ? Math.min(HIST_BINS - 1, Math.floor(((v - min) / (max - min)) * HIST_BINS)) : 0;
}

/**
 * Percentiles of a plane, ignoring NaN and infinities: exact from a histogram for lookup-table types,
 * from an evenly spaced sample of at most maxSamples pixels otherwise. Null when no pixel is finite.
 */
export function planeStats(plane: Plane, low = 0.001, high = 0.999, maxSamples = 1 << 18): PlaneStats | null {
  const { data, offset, width, height, dtype } = plane;
  const n = width * height;
  if (n === 0) return null;
  if (hasLut(dtype)) {
    const { min: dmin, size } = lutDomain(dtype);
    const counts = new Uint32Array(size);
    const shift = -dmin;
    for (let p = 0; p < n; p++) counts[data[offset + p] + shift]++;
    let first = 0;
    while (counts[first] === 0) first++;
    let last = size - 1;
    while (counts[last] === 0) last--;
    const rankLo = Math.floor(low * (n - 1)), rankHi = Math.ceil(high * (n - 1));
    let lo = -1, hi = -1;
    for (let k = first, seen = 0; k <= last; k++) {
      seen += counts[k];
      if (lo < 0 && seen > rankLo) lo = k;
      if (seen > rankHi) { hi = k; break; }
    }
    const hist = new Uint32Array(HIST_BINS);
    for (let k = first; k <= last; k++) hist[binIndex(k, first, last)] += counts[k];
    return { lo: lo + dmin, hi: hi + dmin, min: first + dmin, max: last + dmin, hist };
  }
  const stride = Math.max(1, Math.floor(n / maxSamples));
  const sample = new Float64Array(Math.ceil(n / stride));
  let m = 0;
  for (let p = 0; p < n; p += stride) {
    const v = data[offset + p];
    if (Number.isFinite(v)) sample[m++] = v;
  }
  if (m === 0) return null;
  const sorted = sample.subarray(0, m).sort();
  const min = sorted[0], max = sorted[m - 1];
  const hist = new Uint32Array(HIST_BINS);
  for (let k = 0; k < m; k++) hist[binIndex(sorted[k], min, max)]++;
  return { lo: sorted[Math.floor(low * (m - 1))], hi: sorted[Math.ceil(high * (m - 1))], min, max, hist };
}

/**
 * Contrast limits from stats for "auto": the percentiles, widened to min..max when they meet, and
 * to v..v+1 for a constant plane, so lo < hi always holds.
 */
export function autoLimits(stats: PlaneStats | null): [number, number] {
  if (!stats) return [0, 1];
  if (stats.hi > stats.lo) return [stats.lo, stats.hi];
  if (stats.max > stats.min) return [stats.min, stats.max];
  return [stats.min, stats.min + 1];
}

/** A raw pixel value as text: integers as they are, floats with 4 significant digits. */
export function formatValue(v: number, dtype: DType): string {
  if (dtype === "bool") return v ? "true" : "false";
  if (dtype !== "float32" && dtype !== "float64") return String(v);
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return "0";
  const a = Math.abs(v);
  return a >= 1e5 || a < 1e-3 ? v.toExponential(3) : String(Number(v.toPrecision(4)));
}
