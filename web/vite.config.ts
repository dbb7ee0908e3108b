/**
 * Builds the web page (web/) into dist/web, served by the daemon at `/` (src/api/routes/web.ts).
 * Everything is bundled: no CDN, no outside request, no inline script or style (the page runs
 * under a Content-Security-Policy that allows only 'self'). Asset names carry a content hash,
 * so only they are cached for long.
 */
import { defineConfig } from 'vite';
import { fileURLToPath } from 'node:url';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  publicDir: false,
  logLevel: 'warn',
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    assetsDir: 'assets',
    // Inlined assets would become data: URLs, which the CSP does not allow.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    target: 'es2022',
    sourcemap: false,
  },
});
