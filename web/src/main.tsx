import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { addImage, useStore } from "./store";
import "./app.css";

// for the browser tests, the benchmark and curious users in the console
(window as unknown as { __scopeflow: unknown }).__scopeflow = { state: () => useStore.getState(), addImage };

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
