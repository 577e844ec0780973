// The viewer's controls: the toolbar above the canvas and the strip of channel and label settings beside it.

import { memo, type ReactNode } from "react";
import type { ChannelSpec, PlaneStats, Rgb } from "./render";

/** A channel's settings as the viewer holds them. */
export interface ChannelState extends ChannelSpec {
  name: string;
}

function toHex([r, g, b]: Rgb): string {
  return "#" + [r, g, b].map((v) => v.toString(16).padStart(2, "0")).join("");
}

function fromHex(hex: string): Rgb {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

function formatZoom(zoom: number): string {
  const pct = zoom * 100;
  return (pct >= 10 ? Math.round(pct) : pct.toFixed(1)) + " %";
}

export interface ToolbarProps {
  /** nothing to show: the view buttons are off */
  empty: boolean;
  zoom: number;
  onFit(): void;
  onOneToOne(): void;
  z: number;
  nz: number;
  onZ(z: number): void;
  t: number;
  nt: number;
  onT(t: number): void;
  canAutoContrast: boolean;
  onAutoContrast(): void;
  /** e.g. "512 × 512 · uint16" */
  info: string;
}

export const Toolbar = memo(function Toolbar(p: ToolbarProps) {
  return (
    <div className="sf-viewer-toolbar">
      <button type="button" data-testid="viewer-fit" disabled={p.empty} onClick={p.onFit} title="Show the whole image (double-click)">
        Fit
      </button>
      <button type="button" disabled={p.empty} onClick={p.onOneToOne} title="One image pixel per screen pixel">1:1</button>
      {!p.empty && (
        <span className="sf-viewer-zoom" data-testid="viewer-zoom" title="Zoom (scroll to change)">{formatZoom(p.zoom)}</span>
      )}
      {p.nz > 1 && <AxisSlider axis="z" index={p.z} size={p.nz} onChange={p.onZ} />}
      {p.nt > 1 && <AxisSlider axis="t" index={p.t} size={p.nt} onChange={p.onT} />}
      <span className="sf-viewer-spacer" />
      <span className="sf-viewer-info">{p.info}</span>
      {p.canAutoContrast && (
        <button type="button" data-testid="viewer-auto-contrast" onClick={p.onAutoContrast}
          title="Set every channel's contrast from this plane (0.1 % to 99.9 %)">
          Auto contrast
        </button>
      )}
    </div>
  );
});

function AxisSlider(p: { axis: "z" | "t"; index: number; size: number; onChange(i: number): void }) {
  const label = p.axis === "z" ? "Z" : "Time";
  return (
    <label className="sf-viewer-axis" title={p.axis === "z" ? "Focal plane" : "Time point"}>
      <span>{label}</span>
      <input type="range" data-testid={`viewer-${p.axis}`} min={0} max={p.size - 1} step={1} value={p.index}
        onChange={(e) => p.onChange(Number(e.target.value))} />
      <span className="sf-viewer-axis-index">{p.index + 1} / {p.size}</span>
    </label>
  );
}

export interface SidebarProps {
  channels: ChannelState[];
  /** each channel's statistics in the current plane */
  stats: (PlaneStats | null)[];
  integer: boolean;
  onChannel(c: number, patch: Partial<ChannelState>): void;
  onAuto(c: number): void;
  /** the labels image's name, or null when there is none */
  labelsName: string | null;
  opacity: number;
  onOpacity(v: number): void;
  outline: boolean;
  onOutline(v: boolean): void;
  /** the painting tools, when the labels are editable */
  labelsTools?: ReactNode;
  /** a button to start painting: new labels over the image, or a copy of the labels shown */
  labelsAction?: { text: string; title: string; run(): void } | null;
}

export const Sidebar = memo(function Sidebar(p: SidebarProps) {
  if (p.channels.length === 0 && p.labelsName === null) return null;
  const action = p.labelsAction && (
    <button type="button" className="sf-viewer-start" data-testid="labels-start" onClick={p.labelsAction.run} title={p.labelsAction.title}>
      {p.labelsAction.text}
    </button>
  );
  return (
    <div className="sf-viewer-side">
      {p.channels.map((ch, c) => (
        <ChannelCard key={c} c={c} ch={ch} stats={p.stats[c] ?? null} integer={p.integer} single={p.channels.length === 1}
          onChange={(patch) => p.onChannel(c, patch)} onAuto={() => p.onAuto(c)} />
      ))}
      {p.labelsName !== null && (
        <section className="sf-viewer-card">
          <div className="sf-viewer-card-head">
            <span className="sf-viewer-name" title={p.labelsName}>Labels · {p.labelsName}</span>
          </div>
          <label className="sf-viewer-row">
            <span className="sf-viewer-key">Opacity</span>
            <input type="range" data-testid="viewer-opacity" min={0} max={1} step={0.01} value={p.opacity}
              onChange={(e) => p.onOpacity(Number(e.target.value))} />
            <span className="sf-viewer-num">{Math.round(p.opacity * 100)} %</span>
          </label>
          <label className="sf-viewer-row sf-viewer-check">
            <input type="checkbox" data-testid="viewer-outline" checked={p.outline}
              onChange={(e) => p.onOutline(e.target.checked)} />
            <span>Outlines only</span>
          </label>
          {p.labelsTools}
          {action}
        </section>
      )}
      {p.labelsName === null && action && (
        <section className="sf-viewer-card" data-testid="labels-card">
          <div className="sf-viewer-card-head">
            <span className="sf-viewer-name">Labels</span>
          </div>
          <span className="sf-viewer-hint">Mark objects by hand: paint one label per object.</span>
          {action}
        </section>
      )}
    </div>
  );
});

function ChannelCard(p: {
  c: number; ch: ChannelState; stats: PlaneStats | null; integer: boolean; single: boolean;
  onChange(patch: Partial<ChannelState>): void; onAuto(): void;
}) {
  const { ch, c } = p;
  // the sliders span the plane's values, widened to include the limits
  const rmin = Math.min(ch.lo, p.stats ? p.stats.min : ch.lo);
  const rmax = Math.max(ch.hi, p.stats ? p.stats.max : ch.hi);
  const step = p.integer ? 1 : niceStep(rmax - rmin);
  const id = `viewer-channel-${c}`;
  // floats shortened to fit the box: 5 significant digits, 3 when written with an exponent
  const shown = (v: number) =>
    p.integer || v === 0 ? v : Number(v.toPrecision(Math.abs(v) < 1e-3 || Math.abs(v) >= 1e6 ? 3 : 5));
  const limit = (key: "lo" | "hi", raw: string) => {
    const v = Number(raw);
    if (raw !== "" && Number.isFinite(v)) p.onChange({ [key]: v });
  };
  return (
    <section className={"sf-viewer-card" + (ch.visible ? "" : " sf-viewer-hidden")} data-testid={id}>
      <div className="sf-viewer-card-head">
        {!p.single && (
          <input type="checkbox" data-testid={`${id}-visible`} checked={ch.visible} title="Show this channel"
            onChange={(e) => p.onChange({ visible: e.target.checked })} />
        )}
        <input type="color" className="sf-viewer-color" data-testid={`${id}-color`} value={toHex(ch.color)}
          title="Channel colour" onChange={(e) => p.onChange({ color: fromHex(e.target.value) })} />
        <span className="sf-viewer-name" title={ch.name}>{ch.name}</span>
        <button type="button" className="sf-viewer-small" data-testid={`${id}-auto`} onClick={p.onAuto}
          title="Contrast from this plane (0.1 % to 99.9 %)">auto</button>
      </div>
      {p.stats && <Histogram stats={p.stats} lo={ch.lo} hi={ch.hi} from={rmin} to={rmax} color={ch.color} />}
      <label className="sf-viewer-row">
        <span className="sf-viewer-key">Min</span>
        <input type="range" aria-label={`${ch.name} minimum`} min={rmin} max={rmax} step={step} value={ch.lo}
          onChange={(e) => limit("lo", e.target.value)} />
        <input type="number" aria-label={`${ch.name} minimum`} className="sf-viewer-num" data-testid={`${id}-min`} step={step} value={shown(ch.lo)}
          onChange={(e) => limit("lo", e.target.value)} />
      </label>
      <label className="sf-viewer-row">
        <span className="sf-viewer-key">Max</span>
        <input type="range" aria-label={`${ch.name} maximum`} min={rmin} max={rmax} step={step} value={ch.hi}
          onChange={(e) => limit("hi", e.target.value)} />
        <input type="number" aria-label={`${ch.name} maximum`} className="sf-viewer-num" data-testid={`${id}-max`} step={step} value={shown(ch.hi)}
          onChange={(e) => limit("hi", e.target.value)} />
      </label>
    </section>
  );
}

/** A round slider step giving about a thousand steps over span. */
function niceStep(span: number): number {
  if (!(span > 0)) return 1;
  return 10 ** Math.floor(Math.log10(span / 1000));
}

/** The plane's histogram (log counts) over the slider span, the contrast window shaded in the channel colour. */
function Histogram(p: { stats: PlaneStats; lo: number; hi: number; from: number; to: number; color: Rgb }) {
  const { hist, min, max } = p.stats;
  const span = p.to - p.from || 1;
  const x = (v: number) => ((v - p.from) / span) * 100;
  const peak = Math.log1p(Math.max(...hist));
  const bin = (max - min) / hist.length;
  let d = `M${x(min)},30`;
  hist.forEach((n, i) => {
    const y = 30 - (peak > 0 ? (Math.log1p(n) / peak) * 28 : 0);
    d += `L${x(min + i * bin)},${y}L${x(min + (i + 1) * bin || max)},${y}`;
  });
  d += `L${x(max)},30Z`;
  const rgb = `rgb(${p.color.join(",")})`;
  const lo = Math.max(0, Math.min(100, x(p.lo))), hi = Math.max(0, Math.min(100, x(p.hi)));
  return (
    <svg className="sf-viewer-hist" viewBox="0 0 100 30" preserveAspectRatio="none" aria-hidden="true">
      <rect x={lo} y={0} width={Math.max(0, hi - lo)} height={30} fill={rgb} opacity={0.14} />
      <path d={d} fill="#8a9099" />
      <line x1={lo} x2={lo} y1={0} y2={30} stroke={rgb} strokeWidth={1} vectorEffect="non-scaling-stroke" />
      <line x1={hi} x2={hi} y1={0} y2={30} stroke={rgb} strokeWidth={1} vectorEffect="non-scaling-stroke" />
    </svg>
  );
}
