// Dev page: the viewer on synthetic images (?scene=<name>), and a first-paint timing (?bench=1).
// Not part of the app's build; served by `npx vite` at /src/viewer/demo.html.

import { StrictMode, useState } from "react";
import { flushSync } from "react-dom";
import { createRoot } from "react-dom/client";
import type { DType, NdImage, TypedArray } from "./types";
import { Viewer } from "./Viewer";
import { buildLut, composeChannels, planeOf, planeStats, type Rgb } from "./render";

function make(name: string, dtype: DType, axes: string, shape: number[], data: TypedArray,
  kind: "image" | "labels" = "image"): NdImage {
  return { id: name, name, data, shape, dtype, axes, kind, source: "demo" };
}

/** Deterministic pseudo-random numbers in [0, 1). */
function rng(seed: number) {
  return () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

const spots = (() => {
  const r = rng(7);
  return Array.from({ length: 40 }, () => ({ x: r() * 256, y: r() * 256, z: r() * 16, s: 4 + r() * 8 }));
})();

function stack(): { image: NdImage; labels: NdImage } {
  const [nz, ny, nx] = [16, 256, 256];
  const data = new Uint16Array(2 * nz * ny * nx);
  const lab = new Uint16Array(nz * ny * nx);
  const noise = rng(3);
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++) {
        let a = 0, b = 0, id = 0, best = 1;
        spots.forEach((s, k) => {
          const d2 = ((x - s.x) ** 2 + (y - s.y) ** 2) / (s.s * s.s) + ((z - s.z) / 3) ** 2;
          a += 3000 * Math.exp(-d2);
          b += 1800 * Math.exp(-((Math.sqrt(d2) - 1.3) ** 2) * 6);
          if (d2 < best) { best = d2; id = k + 1; }
        });
        const p = (z * ny + y) * nx + x;
        data[p] = 200 + a + noise() * 150;
        data[nz * ny * nx + p] = 100 + b + noise() * 100 + x * 2;
        lab[p] = id;
      }
    }
  }
  return {
    image: make("two-channel z-stack", "uint16", "czyx", [2, nz, ny, nx], data),
    labels: make("spots (labels)", "uint16", "zyx", [nz, ny, nx], lab, "labels"),
  };
}

function floats(): NdImage {
  const [ny, nx] = [384, 512];
  const data = new Float32Array(ny * nx);
  for (let y = 0; y < ny; y++) {
    for (let x = 0; x < nx; x++) {
      const v = Math.sin(x / 23) * Math.cos(y / 17) * 2.5 + (x - nx / 2) / 400;
      data[y * nx + x] = x > 40 && x < 90 && y > 40 && y < 90 ? NaN : v;
    }
  }
  return make("float32 with NaN square", "float32", "yx", [ny, nx], data);
}

function big(n = 2048): NdImage {
  const data = new Uint16Array(n * n);
  const r = rng(11);
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      data[y * n + x] = 1000 + 20000 * Math.exp(-(((x - n / 2) ** 2 + (y - n / 2) ** 2) / (n * n / 8))) *
        (0.6 + 0.4 * Math.sin(x / 9) * Math.sin(y / 13)) + r() * 500;
    }
  }
  return make(`${n}×${n} uint16`, "uint16", "yx", [n, n], data);
}

function timeLapse(): NdImage {
  const [nt, nc, ny, nx] = [5, 3, 200, 300];
  const data = new Uint8Array(nt * nc * ny * nx);
  for (let t = 0; t < nt; t++) {
    for (let c = 0; c < nc; c++) {
      for (let y = 0; y < ny; y++) {
        for (let x = 0; x < nx; x++) {
          const cx = 60 + t * 40 + c * 30, cy = 100;
          const d = Math.hypot(x - cx, y - cy);
          data[((t * nc + c) * ny + y) * nx + x] = d < 50 ? 255 - d * 3 : 10;
        }
      }
    }
  }
  return make("RGB time-lapse uint8", "uint8", "tcyx", [nt, nc, ny, nx], data);
}

function constant(): NdImage {
  return make("constant int16", "int16", "yx", [64, 64], new Int16Array(64 * 64).fill(-5));
}

function manyChannels(): NdImage {
  const [nc, ny, nx] = [5, 128, 128];
  const data = new Float64Array(nc * ny * nx);
  for (let c = 0; c < nc; c++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++) {
        const a = (c / nc) * 2 * Math.PI;
        const d = Math.hypot(x - 64 - 35 * Math.cos(a), y - 64 - 35 * Math.sin(a));
        data[(c * ny + y) * nx + x] = Math.exp(-d * d / 300);
      }
    }
  }
  return { ...make("five channels float64", "float64", "cyx", [nc, ny, nx], data),
    channelNames: ["DAPI", "GFP", "mCherry", "Cy5", "BF"] };
}

/** A 4×4 two-channel image and its labels, small enough to check pixel by pixel. */
function tiny(): { image: NdImage; labels: NdImage } {
  const a = Array.from({ length: 16 }, (_, i) => i * 100);
  const data = new Uint16Array([...a, ...a.slice().reverse()]);
  const lab = new Int32Array([0, 3, 3, 0, 0, 3, 0, 0, 7, 7, 0, 0, 7, 0, 0, 100000]);
  return {
    image: make("tiny", "uint16", "cyx", [2, 4, 4], data),
    labels: make("tiny labels", "int32", "yx", [4, 4], lab, "labels"),
  };
}

/** A 64×64 ramp of one dtype from its low to its high end (bool: a checkerboard). */
function ramp(dtype: DType): NdImage {
  const n = 64 * 64;
  const ranges: Record<DType, [number, number, (n: number) => TypedArray]> = {
    bool: [0, 1, (k) => new Uint8Array(k)], uint8: [0, 255, (k) => new Uint8Array(k)],
    int8: [-128, 127, (k) => new Int8Array(k)], uint16: [0, 65535, (k) => new Uint16Array(k)],
    int16: [-32768, 32767, (k) => new Int16Array(k)], uint32: [0, 4e9, (k) => new Uint32Array(k)],
    int32: [-2e9, 2e9, (k) => new Int32Array(k)], float32: [-1e6, 1e6, (k) => new Float32Array(k)],
    float64: [-1e-6, 1e-6, (k) => new Float64Array(k)],
  };
  const [lo, hi, alloc] = ranges[dtype];
  const data = alloc(n);
  for (let p = 0; p < n; p++) {
    const x = p % 64, y = Math.floor(p / 64);
    const v = lo + ((hi - lo) * p) / (n - 1);
    data[p] = dtype === "bool" ? (x >> 3) + (y >> 3) & 1 : dtype.startsWith("float") ? v : Math.round(v);
  }
  return make(`${dtype} ramp`, dtype, "yx", [64, 64], data);
}

function fiveD(): NdImage {
  const [nt, nc, nz, ny, nx] = [3, 2, 5, 96, 128];
  const data = new Uint16Array(nt * nc * nz * ny * nx);
  let p = 0;
  for (let t = 0; t < nt; t++) for (let c = 0; c < nc; c++) for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) for (let x = 0; x < nx; x++, p++) {
      const d = Math.hypot(x - 30 - t * 30 - c * 10, y - 48, (z - 2) * 8);
      data[p] = 100 + Math.max(0, 4000 - d * d * 4);
    }
  }
  return make("t, c, z demo", "uint16", "tczyx", [nt, nc, nz, ny, nx], data);
}

const scenes: Record<string, () => { image: NdImage | null; labels?: NdImage | null }> = {
  stack: () => stack(),
  tiny: () => tiny(),
  "stack-only": () => ({ image: stack().image }),
  "labels-alone": () => ({ image: stack().labels }),
  float: () => ({ image: floats() }),
  big: () => ({ image: big() }),
  "time-rgb": () => ({ image: timeLapse() }),
  constant: () => ({ image: constant() }),
  many: () => ({ image: manyChannels() }),
  empty: () => ({ image: null }),
  "5d": () => ({ image: fiveD() }),
  ...Object.fromEntries((["bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64"] as DType[])
    .map((d) => [`ramp-${d}`, () => ({ image: ramp(d) })])),
};

function Demo({ initial }: { initial: string }) {
  const [name, setName] = useState(initial);
  const [scene] = useState(() => new Map<string, ReturnType<(typeof scenes)[string]>>());
  if (!scene.has(name)) scene.set(name, scenes[name]());
  const { image, labels } = scene.get(name)!;
  return (
    <>
      <div style={{ padding: "4px 8px" }}>
        scene{" "}
        <select value={name} onChange={(e) => setName(e.target.value)}>
          {Object.keys(scenes).map((k) => <option key={k}>{k}</option>)}
        </select>
      </div>
      <div style={{ flex: 1, minHeight: 0, display: "flex" }}>
        <Viewer image={image} labels={labels} />
      </div>
    </>
  );
}

declare global {
  interface Window { __bench?: Record<string, number> }
}

/** First paint of a 2048×2048 uint16 image beside a plain putImageData of a prepared RGBA buffer. */
async function bench(root: ReturnType<typeof createRoot>) {
  const image = big();
  const parts: Record<string, number> = {};
  if (new URLSearchParams(location.search).has("parts")) {
    const plane = planeOf(image, 0, 0, 0);
    let t = performance.now();
    const stats = planeStats(plane);
    parts.stats = performance.now() - t;
    t = performance.now();
    const spec = { color: [255, 255, 255] as Rgb, visible: true, lo: stats!.lo, hi: stats!.hi };
    const lut = buildLut("uint16", spec);
    parts.lut = performance.now() - t;
    const out = new Uint8ClampedArray(2048 * 2048 * 4);
    t = performance.now();
    composeChannels([{ plane, spec, lut }], out);
    parts.compose1 = performance.now() - t;
    t = performance.now();
    composeChannels([{ plane, spec, lut }, { plane, spec: { ...spec, color: [255, 0, 255] }, lut }], out);
    parts.compose2 = performance.now() - t;
  }
  const frame = () => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
  // baseline: an RGBA buffer prepared beforehand, put into a canvas and drawn onto a screen-sized one
  const rgba = new Uint8ClampedArray(2048 * 2048 * 4).fill(128);
  const off = document.createElement("canvas");
  off.width = off.height = 2048;
  const screen = document.createElement("canvas");
  screen.width = 1000; screen.height = 700;
  document.body.append(screen);
  let t0 = performance.now();
  off.getContext("2d")!.putImageData(new ImageData(rgba, 2048, 2048), 0, 0);
  screen.getContext("2d")!.drawImage(off, 0, 0, 700, 700);
  const baselineSync = performance.now() - t0;
  await frame();
  const baselineToFrame = performance.now() - t0;
  screen.remove();
  await frame();
  t0 = performance.now();
  flushSync(() => root.render(<div style={{ flex: 1, display: "flex" }}><Viewer image={image} /></div>));
  const viewerSync = performance.now() - t0;
  await frame();
  const viewerToFrame = performance.now() - t0;
  window.__bench = {
    baselineSync, baselineToFrame, viewerSync, viewerToFrame,
    viewerCompose: window.__scopeflowViewer!.lastRenderMs, ...parts,
  };
  const el = document.createElement("pre");
  el.style.cssText = "position:fixed;bottom:30px;left:10px;background:#000c;padding:6px;margin:0";
  el.textContent = JSON.stringify(window.__bench, (_, v) => (typeof v === "number" ? +v.toFixed(1) : v), 1);
  document.body.append(el);
}

const params = new URLSearchParams(location.search);
const root = createRoot(document.getElementById("root")!);
if (params.has("bench")) void bench(root);
else root.render(<StrictMode><Demo initial={params.get("scene") ?? "stack"} /></StrictMode>);
