import { defineConfig } from "vite";

// A static bundle: no inline script or style (the console is served with a Content-Security-Policy
// that forbids both, SECURITY.md WEB-02), hashed file names, no source maps in the bundle.
export default defineConfig({
  base: "./",
  build: {
    outDir: "dist",
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    target: "es2022",
  },
});
