// The capture and playback worklets in headless Chromium, loaded the way the app loads them
// (src/ui/worklet_loader.ts): once from the Vite dev server, once from a `vite build` output
// served statically. A fake microphone (Chromium's built-in beep device) feeds capture; playback is
// checked through an AnalyserNode. Both transport modes: shared rings and port messages.
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join, resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, launchChromium, startDevServer } from '../harness/browser.ts';

const ISOLATION = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
};
const FAKE_MIC = ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'];

interface Report {
  isolated: boolean;
  mode: string;
  ringSamples: number;
  stats: Record<string, number>;
  frames: number;
  frameLen: number;
  rms: number;
  error?: string;
}

/** Runs in the page: builds the audio graph with the loader module at `loaderUrl`. */
async function exercise(page: Page, loaderUrl: string, forceMessageMode: boolean): Promise<Report> {
  return page.evaluate(
    async ({ loaderUrl, forceMessageMode }) => {
      try {
        // (An import() written here would be rewritten by vitest's transform; build it in the page.)
        const m = await (0, eval)('(u) => import(u)')(loaderUrl);
        const ctx = new AudioContext({ sampleRate: 48000 });
        await ctx.resume();
        const stream = await m.openMicrophone({ echoCancellation: false, noiseSuppression: false, autoGainControl: false });
        let frames = 0;
        let frameLen = 0;
        const io = await m.createAudioIO(ctx, {
          stream,
          forceMessageMode,
          connectOutput: false,
          // The whole second of test tone is queued at once: lift the latency cap.
          jitter: { maxExcess: 48000 },
          outputCapacity: 65536,
          onCaptureFrame: (pcm: Float32Array) => {
            frames++;
            frameLen = pcm.length;
          },
        });
        const analyser = ctx.createAnalyser();
        analyser.fftSize = 2048;
        io.playback.connect(analyser);
        // 1 s of a 440 Hz tone at 24 kHz into playback (ring or frames).
        const tone = new Float32Array(24000);
        for (let i = 0; i < tone.length; i++) tone[i] = 0.5 * Math.sin((2 * Math.PI * 440 * i) / 24000);
        if (io.mode === 'shared') io.outputRing.push(tone);
        else for (let f = 0; f + 1920 <= tone.length; f += 1920) io.playFrame(tone.subarray(f, f + 1920));
        await new Promise((r) => setTimeout(r, 600));
        const buf = new Float32Array(analyser.fftSize);
        analyser.getFloatTimeDomainData(buf);
        let e = 0;
        for (const v of buf) e += v * v;
        await new Promise((r) => setTimeout(r, 500));
        // Stop the render thread before reading: the ring count and the capture counter are two
        // reads, and a render quantum landing between them would make them differ by one block.
        if (io.mode === 'shared') await ctx.suspend();
        const report = {
          isolated: crossOriginIsolated,
          mode: io.mode,
          ringSamples: io.inputRing ? io.inputRing.availableRead() : 0,
          stats: io.mode === 'shared' ? m.readAudioStats(io.stats) : await new Promise<Record<string, number>>((ok) => {
            io.capture.port.addEventListener('message', (ev: MessageEvent) => ev.data.type === 'stats' && ok(ev.data.stats));
            io.capture.port.postMessage({ type: 'stats' });
          }),
          frames,
          frameLen,
          rms: Math.sqrt(e / buf.length),
        };
        io.close();
        stream.getTracks().forEach((t: MediaStreamTrack) => t.stop());
        await ctx.close();
        return report;
      } catch (e) {
        return { error: String((e as Error)?.stack ?? e) } as Report;
      }
    },
    { loaderUrl, forceMessageMode },
  );
}

function check(r: Report, mode: 'shared' | 'message') {
  expect(r.error).toBeUndefined();
  expect(r.mode).toBe(mode);
  // ~1.1 s of 48 kHz render quanta (375/s) were captured and resampled to 24 kHz.
  expect(r.stats.DEVICE_RATE).toBe(48000);
  expect(r.stats.CAPTURE_BLOCKS).toBeGreaterThan(250);
  expect(r.stats.CAPTURE_SAMPLES).toBeGreaterThan(r.stats.CAPTURE_BLOCKS * 64 - 200);
  expect(r.stats.CAPTURE_SAMPLES).toBeLessThanOrEqual(r.stats.CAPTURE_BLOCKS * 64);
  if (mode === 'shared') {
    expect(r.isolated).toBe(true);
    expect(r.ringSamples).toBe(r.stats.CAPTURE_SAMPLES);
    expect(r.stats.PLAY_SAMPLES).toBeGreaterThan(10000);
  } else {
    expect(r.frames).toBeGreaterThanOrEqual(Math.floor(r.stats.CAPTURE_SAMPLES / 1920) - 1);
    expect(r.frames).toBeGreaterThan(8);
    expect(r.frameLen).toBe(1920);
  }
  // The tone reached the playback output (0.5 amplitude sine: rms ≈ 0.35).
  expect(r.rms).toBeGreaterThan(0.25);
  expect(r.rms).toBeLessThan(0.45);
}

let browser: Browser;
beforeAll(async () => {
  browser = await launchChromium(FAKE_MIC);
});
afterAll(async () => {
  await browser?.close();
});

/** A blank cross-origin-isolated page at `origin` to import modules from. */
async function blankPage(origin: string): Promise<Page> {
  const page = await browser.newPage();
  await page.route(`${origin}/__blank.html`, (route) =>
    route.fulfill({ status: 200, contentType: 'text/html', headers: ISOLATION, body: '<!doctype html><title>worklet test</title>' }),
  );
  await page.goto(`${origin}/__blank.html`);
  return page;
}

describe('audio worklets in Chromium', () => {
  it('load from the Vite dev server and move audio in shared and message modes', async () => {
    const { server, url } = await startDevServer();
    try {
      const page = await blankPage(url);
      check(await exercise(page, '/src/ui/worklet_loader.ts', false), 'shared');
      check(await exercise(page, '/src/ui/worklet_loader.ts', true), 'message');
      await page.close();
    } finally {
      await server.close();
    }
  });

  it('load from a vite build (self-contained worklet bundles) and move audio', async () => {
    const out = mkdtempSync(join(tmpdir(), 'solace-worklet-build-'));
    let http: Server | null = null;
    try {
      await build({
        root: ROOT,
        configFile: false, // only the loader entry (the app's pages are built by `npm run build`)
        logLevel: 'error',
        worker: { format: 'es' },
        build: {
          outDir: out,
          emptyOutDir: true,
          minify: true,
          target: 'es2022',
          rollupOptions: { input: { loader: resolve(ROOT, 'src/ui/worklet_loader.ts') }, preserveEntrySignatures: 'strict', output: { entryFileNames: 'loader.js' } },
        },
      });
      const files = readdirSync(join(out, 'assets'));
      const worklets = files.filter((f) => /audio_(capture|playback)_worklet.*\.js$/.test(f));
      expect(worklets.length).toBe(2);
      for (const f of worklets) {
        const src = readFileSync(join(out, 'assets', f), 'utf8');
        // Self-contained: no import statements left, and no TextEncoder/TextDecoder use.
        expect(src).not.toMatch(/\bimport\s*[{*("'a-zA-Z]/);
        expect(src).not.toMatch(/TextEncoder|TextDecoder/);
        expect(src).toMatch(/registerProcessor/);
      }
      const types: Record<string, string> = { '.js': 'text/javascript', '.html': 'text/html' };
      http = createServer((req, res) => {
        const p = join(out, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
        if (!p.startsWith(out) || !statSync(p, { throwIfNoEntry: false })?.isFile()) {
          res.writeHead(404).end();
          return;
        }
        res.writeHead(200, { 'Content-Type': types[extname(p)] ?? 'application/octet-stream', ...ISOLATION });
        res.end(readFileSync(p));
      });
      await new Promise<void>((ok) => http!.listen(0, '127.0.0.1', ok));
      const port = (http.address() as { port: number }).port;
      const page = await blankPage(`http://127.0.0.1:${port}`);
      check(await exercise(page, '/loader.js', false), 'shared');
      check(await exercise(page, '/loader.js', true), 'message');
      await page.close();
    } finally {
      http?.close();
      rmSync(out, { recursive: true, force: true });
    }
  });
});
