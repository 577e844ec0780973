// Placeholder viewer: first plane, grey, min–max contrast (the full viewer replaces this file).
import { useEffect, useRef } from "react";
import type { NdImage } from "./types";

export function Viewer({ image }: { image: NdImage | null; labels?: NdImage | null }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const c = canvas.current;
    if (!c || !image) return;
    const [h, w] = image.shape.slice(-2);
    c.width = w;
    c.height = h;
    const out = new ImageData(w, h);
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < w * h; i++) {
      const v = Number(image.data[i]);
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    for (let i = 0; i < w * h; i++) {
      const g = ((Number(image.data[i]) - lo) / (hi - lo || 1)) * 255;
      out.data.set([g, g, g, 255], i * 4);
    }
    c.getContext("2d")!.putImageData(out, 0, 0);
    (window as unknown as { __scopeflowViewer: unknown }).__scopeflowViewer = {
      renderedPixel: (x: number, y: number) => Array.from(out.data.slice((y * w + x) * 4, (y * w + x) * 4 + 4)),
    };
  }, [image]);
  return <canvas ref={canvas} data-testid="viewer-canvas" style={{ maxWidth: "100%", maxHeight: "100%" }} />;
}
