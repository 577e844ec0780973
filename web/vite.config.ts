import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// The hub serves dist/ at "/": asset URLs stay relative to it, and nothing comes from another origin.
export default defineConfig({
  plugins: [react()],
  base: "/",
  build: {
    outDir: "dist",
    assetsDir: "assets",
    sourcemap: true,
    chunkSizeWarningLimit: 1500,
    rollupOptions: {
      onwarn(warning, warn) {
        // imjoy-rpc's bundles use eval for plugin code by design (window plugins run in sandboxed iframes)
        if (warning.code === "EVAL" && String(warning.id ?? warning.message).includes("imjoy-rpc")) return;
        warn(warning);
      },
    },
  },
});
