import { resolve } from 'node:path';
import { defineConfig, type Plugin } from 'vite';
import { VitePWA } from 'vite-plugin-pwa';

/** COOP/COEP make the page cross-origin isolated, which SharedArrayBuffer needs. */
const isolation: Plugin = {
  name: 'cross-origin-isolation',
  configureServer(server) {
    server.middlewares.use((_req, res, next) => {
      res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
      res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
      res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
      next();
    });
  },
  configurePreviewServer(server) {
    server.middlewares.use((_req, res, next) => {
      res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
      res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
      res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
      next();
    });
  },
};

/**
 * The service worker (workers/sw.ts → sw.js): Workbox precaching of every build file with a
 * revisioned manifest (injectManifest keeps our own worker code). The page registers it
 * (src/ui/pwa.ts); public/manifest.webmanifest is the web app manifest.
 */
const pwa = VitePWA({
  strategies: 'injectManifest',
  srcDir: 'workers',
  filename: 'sw.ts',
  injectRegister: false,
  registerType: 'prompt',
  manifest: false,
  injectManifest: {
    globPatterns: ['**/*.{html,js,css,wasm,png,svg,ico,webmanifest,json}'],
    // The tokenizer chunk (@mlc-ai/web-tokenizers with its wasm inlined) is about 5 MB.
    maximumFileSizeToCacheInBytes: 32 * 1024 * 1024,
  },
  devOptions: { enabled: false },
});

export default defineConfig({
  plugins: [isolation, pwa],
  server: {
    host: '127.0.0.1',
    // Tests read golden fixtures from ../shared beside the project.
    fs: { allow: [resolve(import.meta.dirname), resolve(import.meta.dirname, '../shared')] },
  },
  worker: { format: 'es' },
  build: {
    target: 'es2022',
    rollupOptions: {
      input: {
        main: resolve(import.meta.dirname, 'index.html'),
        bench: resolve(import.meta.dirname, 'bench.html'),
      },
    },
  },
});
