// A line plot sent by a plugin (`api.createWindow({type: "scopeflow/plot", ...})`), e.g. a loss curve.

import type { Plot } from "../store";

const COLOURS = ["#2f7ed8", "#e4572e", "#29a36a", "#a05195", "#f2a541"];

export function PlotView({ plot }: { plot: Plot }) {
  const width = 300;
  const height = 150;
  const pad = { l: 42, r: 8, t: 8, b: 22 };
  const series = Object.entries(plot.series).filter(([, ys]) => Array.isArray(ys) && ys.length > 0);
  const xs = plot.x.length ? plot.x : Array.from({ length: Math.max(0, ...series.map(([, y]) => y.length)) }, (_, i) => i);
  const values = series.flatMap(([, ys]) => ys.filter((v) => Number.isFinite(v)));
  if (values.length === 0) return null;
  const finiteX = xs.filter((x) => Number.isFinite(x));
  const [x0, x1] = [Math.min(...finiteX), Math.max(...finiteX)];
  const [y0, y1] = [Math.min(...values), Math.max(...values)];
  const sx = (x: number) => pad.l + ((x - x0) / (x1 - x0 || 1)) * (width - pad.l - pad.r);
  const sy = (y: number) => height - pad.b - ((y - y0) / (y1 - y0 || 1)) * (height - pad.t - pad.b);
  return (
    <figure className="sf-plot" data-testid="plot">
      <figcaption>{plot.name}</figcaption>
      <svg width={width} height={height} role="img" aria-label={plot.name}>
        <line x1={pad.l} y1={height - pad.b} x2={width - pad.r} y2={height - pad.b} stroke="#999" />
        <line x1={pad.l} y1={pad.t} x2={pad.l} y2={height - pad.b} stroke="#999" />
        <text x={pad.l - 4} y={pad.t + 8} textAnchor="end" fontSize="10">{y1.toPrecision(3)}</text>
        <text x={pad.l - 4} y={height - pad.b} textAnchor="end" fontSize="10">{y0.toPrecision(3)}</text>
        <text x={pad.l} y={height - 6} fontSize="10">{x0}</text>
        <text x={width - pad.r} y={height - 6} textAnchor="end" fontSize="10">{plot.xlabel ? `${plot.xlabel} ${x1}` : x1}</text>
        {series.map(([name, ys], k) => (
          <polyline
            key={name}
            fill="none"
            stroke={COLOURS[k % COLOURS.length]}
            strokeWidth={1.5}
            points={ys
              .map((y, i) => [xs[i] ?? i, y])
              .filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y))
              .map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`)
              .join(" ")}
          />
        ))}
      </svg>
      <div className="sf-plot-legend">
        {series.map(([name], k) => (
          <span key={name} style={{ color: COLOURS[k % COLOURS.length] }}>
            ● {name}
          </span>
        ))}
      </div>
    </figure>
  );
}
