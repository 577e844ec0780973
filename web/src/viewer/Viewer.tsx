// The image viewer: channels composed additively with per-channel colour and contrast, z and t sliders,
// a labels overlay, zoom and pan, and the values under the cursor.

import "./viewer.css";
import {
  useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState, type KeyboardEvent, type PointerEvent,
} from "react";
import { Sidebar, Toolbar, type ChannelState } from "./Controls";
import { LabelTools, MAX_BRUSH } from "./LabelTools";
import {
  Edit, deleteLabel, floodFill, historyOf, labelsHost, nextLabel, strokeLine, type LabelPlane, type Rect, type Tool,
} from "./labels";
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
  /** the labels' value at image pixel (x, y) of the plane shown; null outside or without labels */
  labelAt(x: number, y: number): number | null;
  /** the painting state when the labels are editable, else null */
  readonly editing: { tool: Tool; label: number; brush: number; strokes: number; lastPaintMs: number } | null;
  /** where image pixel (x, y)'s centre is on the page (CSS px), to point at it */
  pagePoint(x: number, y: number): [number, number];
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
  // painting editable labels (int32, see labels.ts)
  const editable = !!labels?.editable && labels.data instanceof Int32Array;
  const [tool, setTool] = useState<Tool>("paint");
  const [brush, setBrush] = useState(10);
  const [label, setLabel] = useState(1);
  const [version, setVersion] = useState(0); // bumped when an edit changed more than a stroke's rectangle
  const [, setHistoryTick] = useState(0);
  const stroke = useRef<{ edit: Edit; x: number; y: number; value: number } | null>(null);
  const spaceHeld = useRef(false);
  const cursorRef = useRef<HTMLDivElement>(null);
  const live = useRef({ labels, t, z, tool, label, brush, editable, outline, strokes: 0, lastPaintMs: 0 });
  live.current = { ...live.current, labels, t, z, tool, label, brush, editable, outline };
  useEffect(() => {
    if (labels?.editable && labels.data instanceof Int32Array) setLabel(nextLabel(labels.data));
  }, [labels]);

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
      labelAt: (x, y) => {
        const { labels: l, t: lt, z: lz } = live.current;
        if (!l) return null;
        const plane = planeOf(l, lt, 0, lz);
        if (!(x >= 0 && y >= 0 && x < plane.width && y < plane.height)) return null;
        return Number(plane.data[plane.offset + Math.floor(y) * plane.width + Math.floor(x)]);
      },
      get editing() {
        const c = live.current;
        return c.editable ? { tool: c.tool, label: c.label, brush: c.brush, strokes: c.strokes, lastPaintMs: c.lastPaintMs } : null;
      },
      pagePoint: (x, y) => {
        const r = canvas.getBoundingClientRect();
        return [r.left + stage.panX + (x + 0.5) * stage.zoom, r.top + stage.panY + (y + 0.5) * stage.zoom];
      },
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
  }, [labels, t, z, outline, version]);

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

  // editing: the plane shown, redrawn in part (a stroke) or whole (fill, undo, delete)
  const labelPlane = (): LabelPlane | null => {
    if (!editable || !labels) return null;
    const p = planeOf(labels, t, 0, z);
    return { data: labels.data as Int32Array, offset: p.offset, width: p.width, height: p.height };
  };
  const redrawRect = (rect: Rect) => {
    const stage = stageRef.current;
    if (!stage || !labels) return;
    const plane = planeOf(labels, t, 0, z);
    // outlines of the neighbours may change too: one pixel more on every side
    const r = {
      x0: Math.max(0, rect.x0 - 1), y0: Math.max(0, rect.y0 - 1),
      x1: Math.min(plane.width, rect.x1 + 1), y1: Math.min(plane.height, rect.y1 + 1),
    };
    renderLabels(plane, outline, stage.labels.buffer(plane.width, plane.height), r);
    stage.labels.commit(r);
    stage.requestDraw();
  };
  const edited = () => {
    live.current.strokes++;
    setHistoryTick((n) => n + 1);
    if (labels) labelsHost()?.edited(labels);
  };
  const finishEdit = (edit: Edit, whole: boolean) => {
    if (!labels || edit.size === 0) return;
    historyOf(labels.data as Int32Array).push(labels.data as Int32Array, edit);
    if (whole) setVersion((v) => v + 1);
    edited();
  };
  const undoRedo = (redo: boolean) => {
    if (!editable || !labels) return;
    const data = labels.data as Int32Array;
    const history = historyOf(data);
    if (redo ? history.redo(data) : history.undo(data)) {
      setVersion((v) => v + 1);
      edited();
    }
  };
  const newLabel = () => {
    if (editable && labels) setLabel(nextLabel(labels.data as Int32Array));
  };
  const removeLabel = () => {
    if (!editable || !labels || label === 0) return;
    const edit = new Edit();
    deleteLabel(labels.data as Int32Array, label, edit);
    finishEdit(edit, true);
  };
  const sizeBrush = (size: number) => setBrush(Math.max(1, Math.min(MAX_BRUSH, Math.round(size))));
  const moveCursor = (sx: number | null, sy = 0) => {
    const cursor = cursorRef.current, stage = stageRef.current;
    if (!cursor || !stage) return;
    const painting = editable && (tool === "paint" || tool === "erase") && !spaceHeld.current;
    if (sx === null || !painting) {
      cursor.style.display = "none";
      return;
    }
    const d = Math.max(2, brush * stage.zoom);
    cursor.style.display = "block";
    cursor.style.width = cursor.style.height = `${d}px`;
    cursor.style.transform = `translate(${sx - d / 2}px, ${sy - d / 2}px)`;
  };

  // panning by drag (or painting), and the pixel under the cursor
  const drag = useRef<{ x: number; y: number } | null>(null);
  const onPointerDown = (e: PointerEvent<HTMLCanvasElement>) => {
    const stage = stageRef.current;
    if (!stage || (e.button !== 0 && e.button !== 1)) return;
    e.currentTarget.setPointerCapture(e.pointerId);
    e.currentTarget.focus({ preventScroll: true });
    const plane = labelPlane();
    if (plane && e.button === 0 && tool !== "pan" && !spaceHeld.current) {
      const r = e.currentTarget.getBoundingClientRect();
      const [ix, iy] = stage.toImage(e.clientX - r.left, e.clientY - r.top);
      if (tool === "pick") {
        const x = Math.floor(ix), y = Math.floor(iy);
        if (x >= 0 && y >= 0 && x < plane.width && y < plane.height) setLabel(plane.data[plane.offset + y * plane.width + x]);
      } else if (tool === "fill") {
        const edit = new Edit();
        const rect = floodFill(plane, ix, iy, label, edit);
        if (rect) redrawRect(rect);
        finishEdit(edit, false);
      } else {
        const value = tool === "erase" ? 0 : label;
        const edit = new Edit();
        const rect = strokeLine(plane, ix, iy, ix, iy, brush, value, edit);
        if (rect) redrawRect(rect);
        stroke.current = { edit, x: ix, y: iy, value };
      }
      return;
    }
    drag.current = { x: e.clientX, y: e.clientY };
    setDragging(true);
  };
  const onPointerMove = (e: PointerEvent<HTMLCanvasElement>) => {
    const stage = stageRef.current;
    if (!stage) return;
    const r = e.currentTarget.getBoundingClientRect();
    if (drag.current) {
      stage.panBy(e.clientX - drag.current.x, e.clientY - drag.current.y);
      drag.current = { x: e.clientX, y: e.clientY };
    }
    const plane = stroke.current && labelPlane();
    if (stroke.current && plane) {
      const start = performance.now();
      // every position the pointer (mouse or pen) passed through since the last event
      const events = e.nativeEvent.getCoalescedEvents?.() ?? [];
      const points = events.length > 0 ? events : [e.nativeEvent];
      let rect: Rect | null = null;
      const s = stroke.current;
      for (const p of points) {
        const [px, py] = stage.toImage(p.clientX - r.left, p.clientY - r.top);
        const got = strokeLine(plane, s.x, s.y, px, py, brush, s.value, s.edit);
        s.x = px;
        s.y = py;
        if (got) rect = rect ? { x0: Math.min(rect.x0, got.x0), y0: Math.min(rect.y0, got.y0), x1: Math.max(rect.x1, got.x1), y1: Math.max(rect.y1, got.y1) } : got;
      }
      if (rect) redrawRect(rect);
      live.current.lastPaintMs = performance.now() - start;
    }
    moveCursor(e.clientX - r.left, e.clientY - r.top);
    const [ix, iy] = stage.toImage(e.clientX - r.left, e.clientY - r.top);
    const [w, h] = stage.imageSize;
    const x = Math.floor(ix), y = Math.floor(iy);
    const inside = x >= 0 && y >= 0 && x < w && y < h;
    setHover((old) => (!inside ? null : old && old[0] === x && old[1] === y ? old : [x, y]));
  };
  // keys on the focused canvas: F fits, + and - zoom, arrows step z (up, down) and t (left, right)
  const onKeyDown = (e: KeyboardEvent<HTMLCanvasElement>) => {
    const stage = stageRef.current;
    if (!stage || e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented) return;
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
    if (stroke.current) {
      const { edit } = stroke.current;
      stroke.current = null;
      finishEdit(edit, false);
    }
  };
  // napari's keys for labels (see LabelTools.tsx), anywhere in the viewer but a text field
  const onLabelKey = (e: KeyboardEvent<HTMLElement>): boolean => {
    const target = e.target as HTMLElement;
    if (target.tagName === "TEXTAREA" || target.tagName === "SELECT") return false;
    if (target.tagName === "INPUT" && !["range", "checkbox", "button"].includes((target as HTMLInputElement).type)) return false;
    if (e.key === " " && !e.repeat) {
      spaceHeld.current = true;
      moveCursor(null);
      return true;
    }
    if ((e.ctrlKey || e.metaKey) && !e.altKey) {
      const key = e.key.toLowerCase();
      if (key === "z") undoRedo(e.shiftKey);
      else if (key === "y") undoRedo(true);
      else return false;
      return true;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return false;
    const tools: Record<string, Tool> = {
      "1": "erase", e: "erase", "2": "paint", p: "paint", "4": "fill", f: "fill", "5": "pick", l: "pick", "6": "pan", z: "pan",
    };
    const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
    if (tools[key]) setTool(tools[key]);
    else if (key === "m") newLabel();
    else if (key === "[") sizeBrush(brush > 10 ? brush * 0.8 : brush - 1);
    else if (key === "]") sizeBrush(brush >= 10 ? brush * 1.25 : brush + 1);
    else if (key === "-") setLabel((l) => Math.max(0, l - 1));
    else if (key === "=") setLabel((l) => Math.min(2 ** 31 - 1, l + 1));
    else return false;
    return true;
  };
  const onRootKeyDown = (e: KeyboardEvent<HTMLDivElement>) => {
    if (editable && onLabelKey(e)) e.preventDefault();
  };
  const onRootKeyUp = (e: KeyboardEvent<HTMLDivElement>) => {
    if (e.key === " ") spaceHeld.current = false;
  };

  const shown = base ?? labels;
  const info = shown
    ? `${axisSize(shown, "x")} × ${axisSize(shown, "y")} · ${shown.dtype}` +
      (base && channels.length > 1 ? ` · ${channels.length} channels` : "")
    : "";

  return (
    <div className={"sf-viewer" + (className ? " " + className : "")} onKeyDownCapture={onRootKeyDown} onKeyUp={onRootKeyUp}>
      <Toolbar empty={!shown} zoom={zoom} onFit={onFit} onOneToOne={onOneToOne} z={z} nz={nz} onZ={setZ} t={t} nt={nt} onT={setT}
        canAutoContrast={!!base && base.dtype !== "bool"} onAutoContrast={onAutoAll} info={info} />
      <div className="sf-viewer-main">
        <div className="sf-viewer-stage" ref={boxRef}>
          <canvas ref={canvasRef} data-testid="viewer-canvas"
            className={(dragging ? "sf-viewer-dragging" : "") + (editable && tool !== "pan" ? " sf-viewer-painting" : "")}
            onPointerDown={onPointerDown} onPointerMove={onPointerMove} onPointerUp={onPointerUp}
            onPointerCancel={onPointerUp} onPointerLeave={() => { setHover(null); moveCursor(null); }}
            onDoubleClick={editable && tool !== "pan" ? undefined : onFit}
            tabIndex={0} onKeyDown={onKeyDown} aria-label={shown ? `Image ${shown.name}` : "No image"} />
          <div ref={cursorRef} className="sf-viewer-brush" aria-hidden="true" />
          {!shown && <div className="sf-viewer-empty">No image</div>}
        </div>
        <Sidebar channels={channels} stats={stats} integer={!!base && base.dtype !== "float32" && base.dtype !== "float64"}
          onChannel={onChannel} onAuto={onAuto} labelsName={labels ? labels.name : null} opacity={opacity}
          onOpacity={setOpacity} outline={outline} onOutline={setOutline}
          labelsTools={editable && labels ? (
            <LabelTools tool={tool} onTool={setTool} label={label} onLabel={setLabel} onNewLabel={newLabel} brush={brush}
              onBrush={sizeBrush} canUndo={historyOf(labels.data as Int32Array).canUndo}
              canRedo={historyOf(labels.data as Int32Array).canRedo} onUndo={() => undoRedo(false)}
              onRedo={() => undoRedo(true)} onDeleteLabel={removeLabel}
              onSave={labelsHost() ? () => labelsHost()!.save(labels) : null} />
          ) : null}
          labelsAction={labelsAction(base, labels)} />
      </div>
      <Status base={base} labels={labels} channels={channels} hover={hover} z={z} nz={nz} t={t} nt={nt}
        painting={editable ? tool : null} />
    </div>
  );
}

function Status(p: {
  base: NdImage | null; labels: NdImage | null; channels: ChannelState[]; hover: [number, number] | null;
  z: number; nz: number; t: number; nt: number; painting: Tool | null;
}) {
  const { base, labels, hover } = p;
  if (!hover || !(base || labels)) {
    return (
      <div className="sf-viewer-status" data-testid="viewer-status">
        <span className="sf-viewer-hint">
          {p.painting && p.painting !== "pan"
            ? `${p.painting === "fill" ? "Click to fill" : p.painting === "pick" ? "Click to pick a label" : `Drag to ${p.painting}`}` +
              " · hold Space and drag to pan · scroll to zoom · Ctrl+Z undo"
            : "Scroll to zoom · drag to pan · double-click" + (p.painting ? "" : " or F") + " to fit"}
          {p.nz > 1 && " · ↑↓ z"}{p.nt > 1 && " · ←→ time"}
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

/** What the side strip offers when the labels cannot be painted: new labels over the image, or a copy to paint. */
function labelsAction(base: NdImage | null, labels: NdImage | null): { text: string; title: string; run(): void } | null {
  const host = labelsHost();
  if (!host || (labels && labels.editable && labels.data instanceof Int32Array)) return null;
  if (labels) {
    if (!base) return null; // labels alone: open the image they belong to first
    return {
      text: "Paint on a copy",
      title: "Correct these labels: an editable copy (int32) opens over the image, the original stays as it is",
      run: () => host.copy(labels, base),
    };
  }
  if (!base) return null;
  return {
    text: "Paint labels",
    title: "New empty labels over this image (same size and planes) to paint objects by hand",
    run: () => host.create(base),
  };
}
