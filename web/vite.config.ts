/** The dashboard build: web/ → dist/web, which `fleetd server` serves at `/`. */
import { defineConfig } from 'vite';

export default defineConfig({
  root: import.meta.dirname,
  base: './',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: '../dist/web',
    emptyOutDir: true,
    // One bundle of ~100 kB gzip at most (preact + chart.js parts); warn if it grows past that.
    chunkSizeWarningLimit: 400,
  },
  // `npm run dev:web`: the Vite dev server proxies the API to a `fleetd server` on :8080.
  server: { proxy: { '/api': 'http://127.0.0.1:8080' } },
});
