// Vite bundles src/ into dist/: index.html, content-hashed files under dist/assets/ (cache them forever),
// and public/config.json copied as is (each environment replaces it; see README.md).
import { defineConfig } from "vite";

// `npm run dev` serves the client with hot reload and forwards everything else to a running `make up`.
const stack = process.env.YOCTOGRAM_STACK_URL || "http://127.0.0.1:8000";

export default defineConfig({
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsDir: "assets",
    target: "es2022",
    sourcemap: true,
  },
  server: {
    port: 5173,
    strictPort: true,
    proxy: Object.fromEntries(["/api", "/public", "/private", "/config.json"].map((p) => [p, stack])),
  },
});
