import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { rpc } from "./actions";
import { findPlugin } from "./browserApi";
import { takeToken } from "./hub";
import { addImage, set, useStore } from "./store";
import "./app.css";

// for the browser tests, the benchmark and curious users in the console
(window as unknown as { __scopeflow: unknown }).__scopeflow = {
  state: () => useStore.getState(),
  addImage,
  /** a plugin's api as plugins get it: a web worker or an open window of this tab, else the hub's */
  getPlugin: (name: string) => findPlugin(name, rpc),
};

// before the first render: the app starts connecting in its first commit, and never flashes the token prompt
set({ token: takeToken() });

// the moment the app is usable (connected, plugins listed), for bench/web.py: a performance mark, read in the page
const ready = useStore.subscribe((state) => {
  if (state.connection === "connected" && state.plugins.length > 0) {
    ready();
    requestAnimationFrame(() => performance.mark("scopeflow:ready"));
  }
});

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
