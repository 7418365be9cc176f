// The page's Cancel reaches the engine Worker (headless Chromium, WebGPU on SwiftShader, the app
// from the vite dev server): a slow Mimi download is aborted in the Worker (the server sees the
// connection dropped), no later file is requested, and the next Load then works (twice: one load
// at a time, the previous engine disposed). Model files come from a local server on 127.0.0.1.
import { readFileSync } from 'node:fs';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { FIXTURES_DIR, launchChromium, startDevServer } from '../harness/browser.ts';

const REF = join(FIXTURES_DIR, 'ref');
const FILES: Record<string, Uint8Array> = {
  'mimi.json': readFileSync(join(REF, 'mimi_tiny_config.json')),
  'mimi.safetensors': readFileSync(join(REF, 'mimi_tiny.safetensors')),
  'lm.json': readFileSync(join(REF, 'moshi_tiny_config.json')),
  'lm.safetensors': readFileSync(join(REF, 'moshi_tiny.safetensors')),
};

it('Cancel aborts the Worker\'s download; later loads replace the engine', async () => {
  // Downloads are GETs; the page's size probe before the first download (HEAD) is logged too.
  const log: { method: string; path: string; sent: number; closedEarly: boolean }[] = [];
  const files: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const cors = { 'Access-Control-Allow-Origin': '*', 'Cross-Origin-Resource-Policy': 'cross-origin', 'Access-Control-Expose-Headers': 'Content-Length, ETag' };
    if (req.method === 'OPTIONS') return void res.writeHead(204, { ...cors, 'Access-Control-Allow-Headers': '*' }).end();
    const m = /^\/(slow|fast)\/(.+)$/.exec(path);
    const body = m ? FILES[m[2]] : undefined;
    const entry = { method: req.method ?? 'GET', path, sent: 0, closedEarly: false };
    log.push(entry);
    res.on('close', () => {
      if (!res.writableFinished) entry.closedEarly = true;
    });
    if (!body) return void res.writeHead(404, cors).end('not found');
    res.writeHead(200, { ...cors, 'Content-Type': 'application/octet-stream', 'Content-Length': String(body.length) });
    if (m![1] === 'fast' || req.method === 'HEAD') return void res.end(body);
    const tick = () => {
      if (res.destroyed) return;
      if (entry.sent >= body.length) return void res.end();
      res.write(body.subarray(entry.sent, entry.sent + 4096));
      entry.sent += 4096;
      setTimeout(tick, 50); // ~80 KB/s: the download takes minutes unless cancelled
    };
    tick();
  });
  await new Promise<void>((ok) => files.listen(0, '127.0.0.1', ok));
  const fbase = `http://127.0.0.1:${(files.address() as { port: number }).port}`;
  const { server, url } = await startDevServer();
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    const q = new URLSearchParams({
      mimiConfig: `${fbase}/fast/mimi.json`,
      mimiWeights: `${fbase}/slow/mimi.safetensors`,
      lmConfig: `${fbase}/fast/lm.json`,
      lmWeights: `${fbase}/fast/lm.safetensors`,
      autoload: '1',
    });
    await page.goto(`${url}/?${q}`);
    const hook = () => page.evaluate(() => ({ state: window.__solacelive?.state, error: window.__solacelive?.error }));
    // Wait for the slow Mimi download to be under way, then press Cancel.
    const t0 = Date.now();
    while (!log.some((r) => r.method === 'GET' && r.path === '/slow/mimi.safetensors' && r.sent >= 8192)) {
      if (Date.now() - t0 > 120_000) throw new Error(`the slow download never started: ${JSON.stringify(await hook())} ${JSON.stringify(log)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await page.click('button.cancel');
    await expect.poll(async () => (await hook()).state, { timeout: 10_000 }).toBe('error');
    expect((await hook()).error).toMatch(/cancel|abort/i);
    // The Worker's fetch was aborted: the server sees the connection dropped, long before the end.
    await expect.poll(() => log.find((r) => r.method === 'GET' && r.path === '/slow/mimi.safetensors')?.closedEarly, { timeout: 10_000 }).toBe(true);
    const slow = log.find((r) => r.method === 'GET' && r.path === '/slow/mimi.safetensors')!;
    expect(slow.sent).toBeLessThan(FILES['mimi.safetensors'].length);
    await new Promise((r) => setTimeout(r, 500));
    expect(log.some((r) => r.method === 'GET' && r.path.endsWith('lm.safetensors'))).toBe(false); // nothing downloaded after Cancel
    // Load again from the fast server: ready; and once more (the previous engine is replaced).
    await page.fill('[name="mimiWeights"]', `${fbase}/fast/mimi.safetensors`);
    for (let round = 0; round < 2; round++) {
      await page.click('button.load');
      await expect.poll(async () => (await hook()).state, { timeout: 180_000, interval: 250 }).toBe('ready');
    }
    expect(log.filter((r) => r.method === 'GET' && r.path === '/fast/lm.safetensors').length).toBeGreaterThanOrEqual(1);
  } finally {
    await browser.close();
    await server.close();
    files.closeAllConnections();
    await new Promise<void>((ok) => files.close(() => ok()));
  }
}, 300_000);
