import react from "@vitejs/plugin-react";
import { defineConfig, type Plugin } from "vite";

// imjoy-rpc finds its typed-array constructors with eval() when it loads, which the app's Content-Security-Policy
// (no 'unsafe-eval') refuses: look them up on globalThis instead. Its other evals run only plugin code, which the
// app never does (window plugins run in their own frames).
function imjoyRpcWithoutEval(): Plugin {
  const lookup = "typedArrayToDtypeKeys.push(eval(arrType))";
  return {
    name: "scopeflow:imjoy-rpc-without-eval",
    transform(code, id) {
      if (!id.includes("/imjoy-rpc/dist/") || !code.includes(lookup)) return null;
      return { code: code.replaceAll(lookup, "typedArrayToDtypeKeys.push(globalThis[arrType])"), map: null };
    },
  };
}

// The hub serves dist/ at "/": asset URLs stay relative to it, and nothing comes from another origin.
export default defineConfig({
  plugins: [react(), imjoyRpcWithoutEval()],
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
