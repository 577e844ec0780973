// The image viewer: channels composed additively with per-channel colour and contrast, z and t sliders,
// a labels overlay, zoom and pan, and the values under the cursor.

import "./viewer.css";
import { useCallback, useLayoutEffect, useMemo, useRef, useState, type KeyboardEvent, type PointerEvent } from "react";
import { Sidebar, Toolbar, type ChannelState } from "./Controls";
import {
  autoLimits, axisSize, buildLut, composeChannels, defaultColors, formatValue, hasLut, labelColor, planeOf, planeStats,
  renderLabels, type ChannelLut, type PlaneStats,
} from "./render";
import { Stage } from "./stage";
import type { NdImage } from "./types";

export interface ViewerProps {
  /** the image to show; a labels image ("kind": "labels") is shown as labels alone */
  image: NdImage | null;
  /** a labels image drawn over image, following its z and t */
  labels?: NdImage | null;
  className?: string;
}

/** What tests (and the app) can ask a mounted viewer: on the canvas as .scopeflowViewer and as window.__scopeflowViewer. */
export interface ViewerHandle {
  /** RGBA that image pixel (x, y) got in the composed image (channels and labels, before zoom); null outside */
  renderedPixel(x: number, y: number): [number, number, number, number] | null;
  /** milliseconds the last change of channels, contrast, z or t took to compose and draw, first paint included */
  readonly lastRenderMs: number;
  /** how many times the channel layer was composed */
  readonly renderCount: number;
  /** milliseconds the last draw onto the visible canvas (zoom, pan, opacity) took */
  readonly lastDrawMs: number;
  readonly zoom: number;
  fit(): void;
}

declare global {
  interface Window {
    __scopeflowViewer?: ViewerHandle;
  }
}

const identities = new WeakMap<object, number>();
let nextIdentity = 1;
function identity(o: object | null): number {
  if (!o) return 0;
  let i = identities.get(o);
  if (i === undefined) identities.set(o, (i = nextIdentity++));
  return i;
}

export function Viewer({ image, labels = null, className }: ViewerProps) {
  const alone = image?.kind === "labels";
  // a new image starts afresh: its own channels, contrast, planes and a fitted view
  return (
    <ViewerBody key={identity(image)} base={alone ? null : image} labels={alone ? image : labels}
      className={className} />
  );
}

type StatsCache = Map<string, PlaneStats | null>;

/** Percentiles and histogram of one channel's plane, computed once per plane. */
function statsOf(cache: StatsCache, image: NdImage, c: number, t: number, z: number): PlaneStats | null {
  const key = `${c}/${t}/${z}`;
  let stats = cache.get(key);
  if (stats === undefined) cache.set(key, (stats = planeStats(planeOf(image, t, c, z))));
  return stats;
}

function initialChannels(image: NdImage | null, cache: StatsCache, t: number, z: number): ChannelState[] {
  if (!image) return [];
  const n = axisSize(image, "c");
  const colors = defaultColors(n);
  return colors.map((color, c) => {
    const name = image.channelNames?.[c] ?? (n === 1 ? image.name : `Channel ${c + 1}`);
    if (image.dtype === "bool") return { name, color, visible: true, lo: 0, hi: 1 };
    if (image.dtype === "uint8") return { name, color, visible: true, lo: 0, hi: 255 };
    const [lo, hi] = autoLimits(statsOf(cache, image, c, t, z));
    return { name, color, visible: true, lo, hi };
  });
}

function ViewerBody({ base, labels, className }: { base: NdImage | null; labels: NdImage | null; className?: string }) {
  const nz = Math.max(base ? axisSize(base, "z") : 1, labels ? axisSize(labels, "z") : 1);
  const nt = Math.max(base ? axisSize(base, "t") : 1, labels ? axisSize(labels, "t") : 1);
  const [z, setZ] = useState(() => Math.floor((nz - 1) / 2));
  const [t, setT] = useState(0);
  const [statsCache] = useState<StatsCache>(() => new Map());
  const [channels, setChannels] = useState(() => initialChannels(base, statsCache, 0, Math.floor((nz - 1) / 2)));
  const stats = useMemo(
    () => (base ? channels.map((_, c) => statsOf(statsCache, base, c, t, z)) : []),
    // channels only for their count, which never changes for one image
    [base, statsCache, t, z],
  );
  const [opacity, setOpacity] = useState(base ? 0.5 : 1);
  const [outline, setOutline] = useState(false);
  const [zoom, setZoom] = useState(1);
  const [hover, setHover] = useState<[number, number] | null>(null);
  const [dragging, setDragging] = useState(false);

  const boxRef = useRef<HTMLDivElement>(null);
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const stageRef = useRef<Stage | null>(null);
  const luts = useRef<{ key: string; lut: ChannelLut }[]>([]);
  const timing = useRef({ lastRenderMs: 0, renderCount: 0, pending: false });

  // the stage, its size, wheel zoom and the test hook, for the life of the canvas
  useLayoutEffect(() => {
    const canvas = canvasRef.current!, box = boxRef.current!;
    const stage = new Stage(canvas);
    stageRef.current = stage;
    stage.onView = setZoom;
    const size = () => {
      const r = box.getBoundingClientRect();
      stage.resize(r.width, r.height);
    };
    size();
    const observer = new ResizeObserver(size);
    observer.observe(box);
    const onWheel = (e: WheelEvent) => {
      e.preventDefault();
      const r = canvas.getBoundingClientRect();
      const perLine = e.deltaMode === 1 ? 40 : e.deltaMode === 2 ? 800 : 1;
      stage.zoomTo(stage.zoom * Math.exp(-e.deltaY * perLine * 0.002), e.clientX - r.left, e.clientY - r.top);
    };
    canvas.addEventListener("wheel", onWheel, { passive: false });
    const handle: ViewerHandle = {
      renderedPixel: (x, y) => stage.renderedPixel(x, y),
      get lastRenderMs() { return timing.current.lastRenderMs; },
      get renderCount() { return timing.current.renderCount; },
      get lastDrawMs() { return stage.lastDrawMs; },
      get zoom() { return stage.zoom; },
      fit: () => stage.fit(),
    };
    (canvas as HTMLCanvasElement & { scopeflowViewer?: ViewerHandle }).scopeflowViewer = handle;
    window.__scopeflowViewer = handle;
    return () => {
      observer.disconnect();
      canvas.removeEventListener("wheel", onWheel);
      stage.dispose();
      if (window.__scopeflowViewer === handle) delete window.__scopeflowViewer;
    };
  }, []);

  // the channel layer: recomposed when a plane or a channel setting changes; a table is rebuilt only for
  // the channel whose colour or contrast changed
  useLayoutEffect(() => {
    const stage = stageRef.current!;
    const start = performance.now();
    if (base) {
      const width = axisSize(base, "x"), height = axisSize(base, "y");
      const lutType = hasLut(base.dtype);
      const layers = channels.map((spec, c) => {
        let lut: ChannelLut | null = null;
        if (lutType && spec.visible) {
          const key = `${spec.lo}|${spec.hi}|${spec.color.join()}`;
          if (luts.current[c]?.key !== key) luts.current[c] = { key, lut: buildLut(base.dtype, spec) };
          lut = luts.current[c].lut;
        }
        return { plane: planeOf(base, t, c, z), spec, lut };
      });
      composeChannels(layers, stage.base.buffer(width, height));
      stage.base.commit();
    } else {
      stage.base.hide();
    }
    stage.present();
    // the draw is added by the flush below
    timing.current.lastRenderMs = performance.now() - start;
    timing.current.pending = true;
    timing.current.renderCount++;
    canvasRef.current!.dataset.renderCount = String(timing.current.renderCount);
  }, [base, t, z, channels]);

  // the labels layer: repainted when its plane or the outline choice changes
  useLayoutEffect(() => {
    const stage = stageRef.current!;
    if (labels) {
      const plane = planeOf(labels, t, 0, z);
      renderLabels(plane, outline, stage.labels.buffer(plane.width, plane.height));
      stage.labels.commit();
    } else {
      stage.labels.hide();
    }
    stage.present();
  }, [labels, t, z, outline]);

  // opacity only redraws the screen
  useLayoutEffect(() => {
    const stage = stageRef.current!;
    stage.opacity = opacity;
    stage.present();
  }, [opacity]);

  // one draw for whatever the effects above changed
  useLayoutEffect(() => {
    const start = performance.now();
    stageRef.current!.flush();
    if (timing.current.pending) {
      timing.current.pending = false;
      timing.current.lastRenderMs += performance.now() - start;
      canvasRef.current!.dataset.lastRenderMs = timing.current.lastRenderMs.toFixed(1);
    }
  });

  const onChannel = useCallback((c: number, patch: Partial<ChannelState>) => {
    setChannels((chs) => chs.map((ch, i) => (i === c ? { ...ch, ...patch } : ch)));
  }, []);

  const autoContrast = useCallback((only: number | null) => {
    if (!base) return;
    setChannels((chs) => chs.map((ch, c) => {
      if (only !== null && c !== only) return ch;
      const [lo, hi] = autoLimits(statsOf(statsCache, base, c, t, z));
      return { ...ch, lo, hi };
    }));
  }, [base, statsCache, t, z]);
  const onAuto = useCallback((c: number) => autoContrast(c), [autoContrast]);
  const onAutoAll = useCallback(() => autoContrast(null), [autoContrast]);
  const onFit = useCallback(() => stageRef.current?.fit(), []);
  const onOneToOne = useCallback(() => stageRef.current?.zoomTo(1), []);

  // panning by drag, and the pixel under the cursor
  const drag = useRef<{ x: number; y: number } | null>(null);
  const onPointerDown = (e: PointerEvent<HTMLCanvasElement>) => {
    if (e.button !== 0) return;
    e.currentTarget.setPointerCapture(e.pointerId);
    drag.current = { x: e.clientX, y: e.clientY };
    setDragging(true);
  };
  const onPointerMove = (e: PointerEvent<HTMLCanvasElement>) => {
    const stage = stageRef.current;
    if (!stage) return;
    if (drag.current) {
      stage.panBy(e.clientX - drag.current.x, e.clientY - drag.current.y);
      drag.current = { x: e.clientX, y: e.clientY };
    }
    const r = e.currentTarget.getBoundingClientRect();
    const [ix, iy] = stage.toImage(e.clientX - r.left, e.clientY - r.top);
    const [w, h] = stage.imageSize;
    const x = Math.floor(ix), y = Math.floor(iy);
    const inside = x >= 0 && y >= 0 && x < w && y < h;
    setHover((old) => (!inside ? null : old && old[0] === x && old[1] === y ? old : [x, y]));
  };
  // keys on the focused canvas: F fits, + and - zoom, arrows step z (up, down) and t (left, right)
  const onKeyDown = (e: KeyboardEvent<HTMLCanvasElement>) => {
    const stage = stageRef.current;
    if (!stage || e.ctrlKey || e.metaKey || e.altKey) return;
    const step = (set: (f: (i: number) => number) => void, n: number, d: number) =>
      set((i) => Math.max(0, Math.min(n - 1, i + d)));
    switch (e.key) {
      case "f": case "F": stage.fit(); break;
      case "+": case "=": stage.zoomTo(stage.zoom * 1.25); break;
      case "-": stage.zoomTo(stage.zoom / 1.25); break;
      case "ArrowUp": step(setZ, nz, 1); break;
      case "ArrowDown": step(setZ, nz, -1); break;
      case "ArrowRight": step(setT, nt, 1); break;
      case "ArrowLeft": step(setT, nt, -1); break;
      default: return;
    }
    e.preventDefault();
  };
  const onPointerUp = () => {
    drag.current = null;
    setDragging(false);
  };

  const shown = base ?? labels;
  const info = shown
    ? `${axisSize(shown, "x")} × ${axisSize(shown, "y")} · ${shown.dtype}` +
      (base && channels.length > 1 ? ` · ${channels.length} channels` : "")
    : "";

  return (
    <div className={"sf-viewer" + (className ? " " + className : "")}>
      <Toolbar empty={!shown} zoom={zoom} onFit={onFit} onOneToOne={onOneToOne} z={z} nz={nz} onZ={setZ} t={t} nt={nt} onT={setT}
        canAutoContrast={!!base && base.dtype !== "bool"} onAutoContrast={onAutoAll} info={info} />
      <div className="sf-viewer-main">
        <div className="sf-viewer-stage" ref={boxRef}>
          <canvas ref={canvasRef} data-testid="viewer-canvas" className={dragging ? "sf-viewer-dragging" : undefined}
            onPointerDown={onPointerDown} onPointerMove={onPointerMove} onPointerUp={onPointerUp}
            onPointerCancel={onPointerUp} onPointerLeave={() => setHover(null)} onDoubleClick={onFit}
            tabIndex={0} onKeyDown={onKeyDown} aria-label={shown ? `Image ${shown.name}` : "No image"} />
          {!shown && <div className="sf-viewer-empty">No image</div>}
        </div>
        <Sidebar channels={channels} stats={stats} integer={!!base && base.dtype !== "float32" && base.dtype !== "float64"}
          onChannel={onChannel} onAuto={onAuto} labelsName={labels ? labels.name : null} opacity={opacity}
          onOpacity={setOpacity} outline={outline} onOutline={setOutline} />
      </div>
      <Status base={base} labels={labels} channels={channels} hover={hover} z={z} nz={nz} t={t} nt={nt} />
    </div>
  );
}

function Status(p: {
  base: NdImage | null; labels: NdImage | null; channels: ChannelState[]; hover: [number, number] | null;
  z: number; nz: number; t: number; nt: number;
}) {
  const { base, labels, hover } = p;
  if (!hover || !(base || labels)) {
    return (
      <div className="sf-viewer-status" data-testid="viewer-status">
        <span className="sf-viewer-hint">
          Scroll to zoom · drag to pan · double-click or F to fit{p.nz > 1 && " · ↑↓ z"}{p.nt > 1 && " · ←→ time"}
        </span>
      </div>
    );
  }
  const [x, y] = hover;
  const at = (img: NdImage, c: number): number | null => {
    const plane = planeOf(img, p.t, c, p.z);
    return x < plane.width && y < plane.height ? Number(plane.data[plane.offset + y * plane.width + x]) : null;
  };
  const label = labels ? at(labels, 0) : null;
  return (
    <div className="sf-viewer-status" data-testid="viewer-status">
      <span className="sf-viewer-coord">x {x}</span>
      <span className="sf-viewer-coord">y {y}</span>
      {p.nz > 1 && <span className="sf-viewer-coord">z {p.z + 1}/{p.nz}</span>}
      {p.nt > 1 && <span className="sf-viewer-coord">t {p.t + 1}/{p.nt}</span>}
      {base && p.channels.map((ch, c) => {
        const v = at(base, c);
        return (
          <span key={c} className="sf-viewer-value" data-testid={`viewer-value-${c}`}>
            {p.channels.length > 1 && (
              <i className="sf-viewer-dot" style={{ background: `rgb(${ch.color.join(",")})` }} title={ch.name} />
            )}
            {v === null ? "–" : formatValue(v, base.dtype)}
          </span>
        );
      })}
      {labels && (
        <span className="sf-viewer-value" data-testid="viewer-label">
          {labelDot(label)}label {label === null ? "–" : label}
        </span>
      )}
    </div>
  );
}

function labelDot(id: number | null) {
  const rgb = id === null ? null : labelColor(id);
  return rgb && <i className="sf-viewer-dot" style={{ background: `rgb(${rgb.join(",")})` }} />;
}
