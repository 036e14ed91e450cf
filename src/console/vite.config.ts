// Builds the console SPA into dist/console, served by src/server/console-routes.ts under
// /console/. Preact with TSX (esbuild's automatic runtime); no CDN at run time.
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { defineConfig } from 'vite';

const consoleRoot = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(consoleRoot, '..', '..');

export default defineConfig({
  root: consoleRoot,
  base: '/console/',
  logLevel: 'warn',
  publicDir: false,
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  resolve: { alias: { react: 'preact/compat', 'react-dom': 'preact/compat' } },
  build: {
    outDir: path.join(repoRoot, 'dist', 'console'),
    emptyOutDir: true,
    assetsDir: 'assets',
    target: 'es2020',
    sourcemap: false,
    chunkSizeWarningLimit: 400,
  },
});
