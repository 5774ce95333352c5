import { defineConfig } from 'vitest/config';
import react from '@vitejs/plugin-react';
import tailwindcss from '@tailwindcss/vite';

// The app is served by the Go server (../cmd/dashboards), which also proxies the APIs; for
// `npx vite` during development, the same paths are proxied to a running dashboards server.
const backend = process.env.SWITCHYARD_DASHBOARDS_URL ?? 'http://127.0.0.1:8085';

export default defineConfig({
  plugins: [react(), tailwindcss()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    // Inline no scripts: the server's Content-Security-Policy allows only 'self'.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 400,
    // dist/.vite/manifest.json: which chunks each route loads (scripts/budget.mjs reads it).
    manifest: true,
  },
  server: {
    proxy: { '/api': backend, '/stats': backend, '/jobs': backend, '/usage': backend },
  },
  test: {
    environment: 'happy-dom',
    setupFiles: ['src/test/setup.ts'],
    include: ['src/**/*.test.{ts,tsx}'],
    css: false,
  },
});
