import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { useStore } from "./store";
import "./app.css";

// read-only access for the browser tests and for curious users in the console
(window as unknown as { __scopeflow: unknown }).__scopeflow = { state: () => useStore.getState() };

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
