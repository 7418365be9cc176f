import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { createServer, type ViteDevServer } from 'vite';
import type { CaseResult } from '../browser/protocol.ts';

export const ROOT = resolve(import.meta.dirname, '../..');
export const FIXTURES_DIR = resolve(ROOT, '../shared/fixtures');

/** Flags that give headless Chromium a WebGPU adapter on GPU-less machines (SwiftShader). */
export const CHROMIUM_ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
  '--autoplay-policy=no-user-gesture-required',
];

export function chromiumPath(): string {
  const p = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
  if (!existsSync(p)) throw new Error(`Chromium not found at ${p}: apt-get install chromium (or set CHROMIUM_PATH). Run node scripts/ensure_chromium.mjs.`);
  return p;
}

export async function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath(), args: [...CHROMIUM_ARGS, ...extraArgs], headless: true });
}

export async function startDevServer(): Promise<{ server: ViteDevServer; url: string }> {
  const server = await createServer({
    root: ROOT,
    configFile: resolve(ROOT, 'vite.config.ts'),
    logLevel: 'error',
    server: { port: 0, host: '127.0.0.1', strictPort: false, hmr: false },
    clearScreen: false,
  });
  await server.listen();
  const addr = server.httpServer?.address();
  if (!addr || typeof addr === 'string') throw new Error('vite dev server has no TCP address');
  return { server, url: `http://127.0.0.1:${addr.port}` };
}

export interface BrowserRun {
  results: CaseResult[];
  adapter: unknown;
  error: string | null;
  console: string[];
}

/**
 * Runs tests/browser/suites/<suite>.ts in a module Worker of headless Chromium (WebGPU on
 * SwiftShader) and returns every case's result.
 */
export async function runBrowserSuite(suite: string, timeoutMs = 600_000): Promise<BrowserRun> {
  const { server, url } = await startDevServer();
  const browser = await launchChromium();
  const logs: string[] = [];
  try {
    const page = await browser.newPage();
    page.on('console', (m) => logs.push(`[${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`[pageerror] ${e.message}`));
    const fixtures = `/@fs${FIXTURES_DIR}`;
    await page.goto(`${url}/tests/browser/runner.html?suite=${encodeURIComponent(suite)}&fixtures=${encodeURIComponent(fixtures)}`);
    await page.waitForFunction(() => window.__done === true, undefined, { timeout: timeoutMs, polling: 250 });
    const out = await page.evaluate(() => ({ results: window.__results, adapter: window.__adapter, error: window.__error }));
    return { ...out, console: logs };
  } finally {
    await browser.close();
    await server.close();
  }
}

/** A readable summary of failed cases, or '' when all passed. */
export function failureSummary(run: BrowserRun): string {
  const failed = run.results.filter((r) => !r.ok);
  const parts = failed.map((r) => `- ${r.suite} ${r.name}: ${r.message.split('\n')[0]}`);
  if (run.error) parts.unshift(`runner error: ${run.error}`);
  if (parts.length && run.console.length) parts.push('console:', ...run.console.slice(-20));
  return parts.join('\n');
}
