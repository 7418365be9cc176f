// vitest hooks around the browser harness (kept apart from browser.ts, which benchmarks and the
// e2e CLI import outside vitest).
import type { Browser } from 'playwright-core';
import type { ViteDevServer } from 'vite';
import { afterAll, beforeAll } from 'vitest';
import { launchChromium, startDevServer } from './browser.ts';

/**
 * Registers vitest hooks that start a Vite dev server and a headless Chromium for the calling
 * test file (closed after it). Read `url` and `browser` inside tests, not at module load.
 */
export function useDevServerAndChromium(): { readonly url: string; readonly browser: Browser } {
  let server: ViteDevServer | null = null;
  const state = { url: '', browser: null as Browser | null };
  beforeAll(async () => {
    const s = await startDevServer();
    server = s.server;
    state.url = s.url;
    state.browser = await launchChromium();
  });
  afterAll(async () => {
    await state.browser?.close();
    await server?.close();
  });
  return {
    get url() {
      return state.url;
    },
    get browser() {
      if (!state.browser) throw new Error('useDevServerAndChromium: read browser inside a test (after beforeAll)');
      return state.browser;
    },
  };
}
