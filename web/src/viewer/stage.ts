// The viewer's canvases: two image-sized layers (composed channels, labels) kept offscreen and drawn onto the
// visible canvas under the current zoom and pan. Redrawing the visible canvas never recomputes a layer.

const BACKGROUND = "#26282b";
const MIN_ZOOM = 1 / 64;
const MAX_ZOOM = 256;

/** An offscreen image-sized canvas and the pixel buffer last put into it. */
class Layer {
  readonly canvas = document.createElement("canvas");
  private readonly ctx = this.canvas.getContext("2d")!;
  pixels: ImageData | null = null;
  shown = false;

  /** The buffer to write, width*height*4 bytes; reused while the size stays the same. */
  buffer(width: number, height: number): Uint8ClampedArray {
    if (!this.pixels || this.pixels.width !== width || this.pixels.height !== height) {
      this.canvas.width = width;
      this.canvas.height = height;
      this.pixels = this.ctx.createImageData(width, height);
    }
    return this.pixels.data;
  }

  hide(): void {
    this.shown = false;
  }

  /** Moves the buffer written since buffer() onto the layer's canvas; with a rectangle, only that part. */
  commit(rect?: { x0: number; y0: number; x1: number; y1: number }): void {
    if (rect) this.ctx.putImageData(this.pixels!, 0, 0, rect.x0, rect.y0, rect.x1 - rect.x0, rect.y1 - rect.y0);
    else this.ctx.putImageData(this.pixels!, 0, 0);
    this.shown = true;
  }
}

export class Stage {
  readonly base = new Layer();
  readonly labels = new Layer();
  /** screen (CSS px) = image px * zoom + pan */
  zoom = 1;
  panX = 0;
  panY = 0;
  opacity = 0.5;
  /** called after zoom or pan change */
  onView: ((zoom: number) => void) | null = null;
  private readonly ctx: CanvasRenderingContext2D;
  private cssWidth = 0;
  private cssHeight = 0;
  private frame = 0;
  /** the view follows fit() (on resize and new layers) until the user zooms or pans */
  private autoFit = true;
  private dirty = false;
  /** milliseconds the last draw onto the visible canvas took */
  lastDrawMs = 0;

  constructor(readonly canvas: HTMLCanvasElement) {
    this.ctx = canvas.getContext("2d", { alpha: false })!;
  }

  /** The size of the displayed image: the channel layer's, else the labels'. */
  get imageSize(): [number, number] {
    const p = (this.base.shown && this.base.pixels) || (this.labels.shown && this.labels.pixels);
    return p ? [p.width, p.height] : [0, 0];
  }

  resize(cssWidth: number, cssHeight: number): void {
    const dpr = window.devicePixelRatio || 1;
    this.cssWidth = cssWidth;
    this.cssHeight = cssHeight;
    this.canvas.width = Math.max(1, Math.round(cssWidth * dpr));
    this.canvas.height = Math.max(1, Math.round(cssHeight * dpr));
    if (this.autoFit) this.fit();
    else this.draw();
  }

  /** Zoom so the whole image shows, centred, and keep it so while the canvas resizes. */
  fit(): void {
    const [w, h] = this.imageSize;
    if (w === 0 || this.cssWidth === 0) {
      this.draw();
      return;
    }
    const fill = Math.min(this.cssWidth / w, this.cssHeight / h) * 0.96;
    const z = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, fill));
    this.setView(z, (this.cssWidth - w * z) / 2, (this.cssHeight - h * z) / 2);
    this.autoFit = true;
  }

  /** Zoom to factor (1 = one image pixel per CSS pixel) about screen point (sx, sy), default the centre. */
  zoomTo(zoom: number, sx = this.cssWidth / 2, sy = this.cssHeight / 2): void {
    const z = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, zoom));
    const [ix, iy] = this.toImage(sx, sy);
    this.autoFit = false;
    this.setView(z, sx - ix * z, sy - iy * z);
  }

  panBy(dx: number, dy: number): void {
    this.autoFit = false;
    this.setView(this.zoom, this.panX + dx, this.panY + dy);
  }

  /** Image coordinates (fractional) of a screen point in CSS px relative to the canvas. */
  toImage(sx: number, sy: number): [number, number] {
    return [(sx - this.panX) / this.zoom, (sy - this.panY) / this.zoom];
  }

  /** Ask for a draw at flush(). */
  present(): void {
    this.dirty = true;
  }

  /** Draw now if present() was called since the last draw. */
  flush(): void {
    if (!this.dirty) return;
    if (this.autoFit) this.fit();
    this.draw();
  }

  private setView(zoom: number, panX: number, panY: number): void {
    this.zoom = zoom;
    this.panX = panX;
    this.panY = panY;
    this.onView?.(zoom);
    this.requestDraw();
  }

  /** Draw at the next animation frame (many pointer events, one draw). */
  requestDraw(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  draw(): void {
    const start = performance.now();
    this.dirty = false;
    if (this.frame) {
      cancelAnimationFrame(this.frame);
      this.frame = 0;
    }
    const { ctx } = this;
    const dpr = this.canvas.width / Math.max(1, this.cssWidth);
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.globalAlpha = 1;
    ctx.fillStyle = BACKGROUND;
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    const s = this.zoom * dpr;
    ctx.setTransform(s, 0, 0, s, this.panX * dpr, this.panY * dpr);
    // shrunk images look better smoothed; enlarged ones must show their pixels as squares
    ctx.imageSmoothingEnabled = s < 1;
    ctx.imageSmoothingQuality = "medium";
    const [w, h] = this.imageSize;
    if (this.base.shown) ctx.drawImage(this.base.canvas, 0, 0);
    else if (w > 0) {
      ctx.fillStyle = "#000";
      ctx.fillRect(0, 0, w, h);
    }
    if (this.labels.shown && this.opacity > 0) {
      ctx.globalAlpha = this.opacity;
      ctx.drawImage(this.labels.canvas, 0, 0);
      ctx.globalAlpha = 1;
    }
    this.lastDrawMs = performance.now() - start;
  }

  /** RGBA that image pixel (x, y) gets in the composed image before zoom, or null outside it. */
  renderedPixel(x: number, y: number): [number, number, number, number] | null {
    const [w, h] = this.imageSize;
    if (!(x >= 0 && y >= 0 && x < w && y < h)) return null;
    x = Math.floor(x);
    y = Math.floor(y);
    let rgb = [0, 0, 0];
    const base = this.base.shown ? this.base.pixels : null;
    if (base) {
      const q = (y * base.width + x) * 4;
      rgb = [base.data[q], base.data[q + 1], base.data[q + 2]];
    }
    const labels = this.labels.shown ? this.labels.pixels : null;
    if (labels && x < labels.width && y < labels.height) {
      const q = (y * labels.width + x) * 4;
      const a = (this.opacity * labels.data[q + 3]) / 255;
      rgb = rgb.map((v, i) => Math.round(v * (1 - a) + labels.data[q + i] * a));
    }
    return [rgb[0], rgb[1], rgb[2], 255];
  }

  dispose(): void {
    if (this.frame) cancelAnimationFrame(this.frame);
    this.onView = null;
  }
}
