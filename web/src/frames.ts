// The iframes of open window plugins, by window id (windows.ts creates them; WindowView mounts them).

import { set } from "./store";

interface Live {
  frame: HTMLIFrameElement;
  dispose: () => void;
}

const live = new Map<string, Live>();

export function registerFrame(id: string, frame: HTMLIFrameElement, dispose: () => void) {
  live.set(id, { frame, dispose });
}

/** The iframe element of a window (the WindowView component mounts it). */
export function windowFrame(id: string): HTMLIFrameElement | undefined {
  return live.get(id)?.frame;
}

export function closeWindow(id: string) {
  live.get(id)?.dispose();
  live.delete(id);
  set((s) => ({ windows: s.windows.filter((w) => w.id !== id) }));
}
