import { describe, expect, it } from "vitest";
import { sha256Hex } from "./sha256";
import {
  Edit, History, brushOffsets, deleteLabel, floodFill, labelsGeometry, nextLabel, strokeLine, type LabelPlane,
} from "./viewer/labels";

function plane(width: number, height: number, rows?: string[]): LabelPlane {
  const data = new Int32Array(width * height);
  rows?.forEach((row, y) => [...row].forEach((c, x) => (data[y * width + x] = c === "." ? 0 : Number(c))));
  return { data, offset: 0, width, height };
}

function rows(p: LabelPlane): string[] {
  return Array.from({ length: p.height }, (_, y) =>
    Array.from(p.data.subarray(p.offset + y * p.width, p.offset + (y + 1) * p.width), (v) => (v === 0 ? "." : String(v))).join(""),
  );
}

describe("brush strokes", () => {
  it("a brush of size 1 paints one pixel, size 3 a 3x3 block, size 5 a disc", () => {
    expect(brushOffsets(1)).toEqual([[0, 0]]);
    expect(brushOffsets(3)).toHaveLength(9);
    const disc = brushOffsets(5);
    expect(disc).toHaveLength(21); // 5x5 without its corners
    expect(disc).not.toContainEqual([2, 2]);
  });

  it("a stroke leaves no gap however fast the pointer moved, and stays inside the plane", () => {
    const p = plane(12, 3);
    const edit = new Edit();
    const rect = strokeLine(p, -3, 1.5, 20, 1.5, 1, 7, edit);
    expect(rows(p)).toEqual(["............", "777777777777", "............"]);
    expect(rect).toEqual({ x0: 0, y0: 1, x1: 12, y1: 2 });
    expect(edit.size).toBe(12);
  });

  it("paints into the right plane of a stack", () => {
    const data = new Int32Array(2 * 3 * 4);
    const second: LabelPlane = { data, offset: 12, width: 4, height: 3 };
    strokeLine(second, 1.2, 1.7, 1.2, 1.7, 1, 5, new Edit());
    expect(Array.from(data).indexOf(5)).toBe(12 + 1 * 4 + 1);
    expect(data.reduce((a, b) => a + b, 0)).toBe(5);
  });
});

describe("undo and redo by stroke", () => {
  it("undoes a stroke as a whole, each pixel back to what it was, and redoes it", () => {
    const p = plane(5, 1, ["12..."]);
    const history = new History();
    const edit = new Edit();
    strokeLine(p, 0, 0, 3, 0, 1, 9, edit);
    strokeLine(p, 0, 0, 1, 0, 1, 9, edit); // the same pixels twice: still their first old value
    history.push(p.data, edit);
    expect(rows(p)).toEqual(["9999."]);
    expect(history.undo(p.data)).toBe(true);
    expect(rows(p)).toEqual(["12..."]);
    expect(history.canRedo).toBe(true);
    expect(history.redo(p.data)).toBe(true);
    expect(rows(p)).toEqual(["9999."]);
    expect(history.redo(p.data)).toBe(false);
  });

  it("a new edit forgets the redo; an empty one is not an entry; the oldest go past the limit", () => {
    const p = plane(3, 1);
    const history = new History(2);
    for (const v of [1, 2, 3]) {
      const edit = new Edit();
      strokeLine(p, 0, 0, 0, 0, 1, v, edit);
      history.push(p.data, edit);
    }
    history.push(p.data, new Edit());
    expect(history.undo(p.data) && history.undo(p.data)).toBe(true);
    expect(rows(p)).toEqual(["1.."]);
    expect(history.undo(p.data)).toBe(false); // the first stroke fell off
    const edit = new Edit();
    strokeLine(p, 2, 0, 2, 0, 1, 4, edit);
    history.push(p.data, edit);
    expect(history.canRedo).toBe(false);
  });
});

describe("fill, delete, next label", () => {
  it("fills the 4-connected region of the clicked value only", () => {
    const p = plane(6, 4, [
      "11.2..",
      "1..2..",
      "1.22..",
      ".1....",
    ]);
    const edit = new Edit();
    floodFill(p, 1, 1, 5, edit);
    // the column of 2s walls the region in; (0, 3) and (2, 3) touch it only diagonally
    expect(rows(p)).toEqual([
      "1152..",
      "1552..",
      "1522..",
      ".1....",
    ]);
    floodFill(p, 5, 3, 6, new Edit());
    expect(rows(p)).toEqual([
      "115266",
      "155266",
      "152266",
      ".16666",
    ]);
    expect(floodFill(p, 1, 1, 5, new Edit())).toBeNull(); // already that value
    expect(floodFill(p, -1, 0, 5, new Edit())).toBeNull();
  });

  it("fills a whole 1024x1024 plane without recursion limits", () => {
    const p = plane(1024, 1024);
    const edit = new Edit();
    floodFill(p, 512, 512, 3, edit);
    expect(edit.size).toBe(1024 * 1024);
    expect(p.data.every((v) => v === 3)).toBe(true);
  });

  it("deletes a label in every plane, and the next label is one past the largest", () => {
    const data = Int32Array.from([0, 4, 4, 2, 0, 4, 9, 0]);
    expect(nextLabel(data)).toBe(10);
    expect(deleteLabel(data, 4, new Edit())).toBe(3);
    expect(Array.from(data)).toEqual([0, 0, 0, 2, 0, 0, 9, 0]);
    expect(nextLabel(new Int32Array(4))).toBe(1);
  });

  it("labels have the image's axes without channels", () => {
    expect(labelsGeometry({ shape: [2, 12, 256, 256], axes: "czyx" })).toEqual({ shape: [12, 256, 256], axes: "zyx" });
    expect(labelsGeometry({ shape: [512, 512], axes: "yx" })).toEqual({ shape: [512, 512], axes: "yx" });
  });
});

describe("sha256", () => {
  it("matches WebCrypto's for empty, short, block-edge and chunked inputs", async () => {
    const bytes = Uint8Array.from({ length: 1000 }, (_, i) => (i * 31 + 7) & 255);
    for (const n of [0, 3, 55, 56, 63, 64, 65, 119, 128, 1000]) {
      const part = bytes.subarray(0, n);
      const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", part.slice()));
      const expected = Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("");
      expect(sha256Hex([part])).toBe(expected);
      expect(sha256Hex([part.subarray(0, n >> 1), part.subarray(n >> 1)])).toBe(expected);
    }
  });
});
