/**
 * Headless end-to-end run of the live loop in Chromium:
 *   vite build -> vite preview (COOP/COEP, 127.0.0.1) that also serves the given model files ->
 *   system Chromium (WebGPU on SwiftShader) with a WAV file as fake microphone ->
 *   the page loads the models through its URL source (or, with --source files, through its
 *   "Local files" picker, clicked like a person would) and starts the microphone ->
 *   capture worklet -> input ring -> engine Worker (Mimi encode, LMGen, Mimi decode) ->
 *   output ring -> playback worklet, text and metrics as packets ->
 *   after S seconds the page's test hook (window.__solacelive) is read into a JSON report.
 *
 * CLI: npm run e2e -- --mimi-config C --mimi-weights W --lm-config C --lm-weights W
 *        --mic speech.wav --seconds S --json out.json [--condition NAME=VALUE] [--tokenizer T]
 *        [--screenshot page.png] [--transport packets] [--source urls|files] [--input mic|file] [--dist built-app-dir]
 * `speech.wav` may have any rate: it is converted with sox to the 48 kHz mono 16-bit WAV that
 * Chromium's fake capture device plays (in a loop).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Plugin, PreviewServer } from 'vite';
import { launchChromium, ROOT } from '../harness/browser.ts';

export interface E2EOptions {
  mimiConfig: string;
  mimiWeights: string;
  lmConfig: string;
  lmWeights: string;
  tokenizer?: string;
  /** Fake-microphone WAV (any rate; converted to 48 kHz mono). */
  mic: string;
  /** Seconds of live loop after the microphone started. */
  seconds: number;
  condition?: string;
  /** Where to save a PNG of the page at the end (optional). */
  screenshot?: string;
  /** Longest time for build + model load, ms. */
  loadTimeoutMs?: number;
  /** Reuse an existing build in this folder instead of running vite build. */
  distDir?: string;
  /** 'packets': PCM as AUDIO_CHUNK packets even though SharedArrayBuffer exists (the fallback path). */
  transport?: 'shared' | 'packets';
  /**
   * How the page gets the models: 'urls' (default: the URL source, filled in and started from
   * the query string) or 'files' (as a person does it: pick "Local files", choose the files in
   * the file input, click "Load model", then "Start microphone").
   */
  source?: 'urls' | 'files';
  /**
   * 'mic' (default): the WAV plays as Chromium's fake microphone; 'file': file-input mode, the
   * WAV is picked in the page's "play a recording" input and sent to the engine as AUDIO_CHUNK
   * packets in real time.
   */
  input?: 'mic' | 'file';
  log?: (line: string) => void;
  /** Calls `onSample` every this many seconds of the live loop (the soak). */
  sampleEverySeconds?: number;
  onSample?: (s: E2ESample) => void;
}

/** Memory and progress at one moment of a run (the soak's per-minute line). */
export interface E2ESample {
  elapsedS: number;
  steps: number;
  /** GPU memory the engine Worker's device holds (MetricsSnapshot.gpuBytes). */
  gpuBytes: number | null;
  /** JS heap of the page's main thread (CDP Performance.getMetrics JSHeapUsedSize). */
  pageHeapBytes: number;
  /** Resident memory of every Chromium process launched with the harness's flags (ps). */
  browserRssBytes: number;
  underruns: number;
}

/** Sum of the RSS of the Chromium processes started with --enable-unsafe-webgpu (this harness's). */
export function chromiumRssBytes(): number {
  const out = execFileSync('ps', ['-eo', 'rss=,args='], { encoding: 'utf8' });
  let kb = 0;
  for (const line of out.split('\n')) {
    const m = line.trim().match(/^(\d+)\s+(.*)$/);
    if (m && /chrom/i.test(m[2]) && m[2].includes('--enable-unsafe-webgpu')) kb += Number(m[1]);
  }
  return kb * 1024;
}

export interface StatPct {
  p50: number;
  p95: number;
  max: number;
}

/** The e2e JSON report. */
export interface E2EReport {
  seconds: number;
  steps: number;
  /** Steps real time would have produced between the first captured frame and the end: elapsed / 80 ms. */
  expectedSteps: number;
  underruns: number;
  /** Playback underruns per minute of the run. */
  underrunsPerMinute: number;
  overruns: number;
  /** Steps whose decode was skipped to catch up with real time (backpressure). */
  skippedDecodes: number;
  droppedPackets: Record<string, number>;
  protocolErrors: number;
  overBudget: number;
  stepMs: StatPct;
  encodeMs: StatPct;
  lmMs: StatPct;
  decodeMs: StatPct;
  /**
   * Mic → speaker pipeline latency over the run's reply frames (ms, MetricsSnapshot.latencyMs:
   * play start of a reply frame − capture time of its input frame's first sample, on the
   * AudioContext clock); null when no reply frame was reported as played.
   */
  latencyMs: StatPct | null;
  /** Reply frames the latency covers. */
  latencyFrames: number;
  /** The model's own delay beside it (max LM delay × 80 ms), ms; null when the page did not get it. */
  modelDelayMs: number | null;
  /** Share of the playback time since it started that was underrun silence, percent (MetricsSnapshot.underrunPercent). */
  underrunPercent: number | null;
  /** RMS of the samples the playback worklet took from the output ring. */
  outputRms: number;
  outputSamples: number;
  capturedSamples: number;
  textTokens: number;
  textPackets: number;
  text: string;
  transport: string;
  adapter: unknown;
  errors: string[];
  console: string[];
}

/** Converts `wav` to a 48 kHz mono PCM16 WAV with sox (Chromium's fake capture file). */
export function make48kWav(wav: string, dir: string): string {
  const out = join(dir, 'mic48k.wav');
  try {
    execFileSync('sox', [resolve(wav), '-r', '48000', '-c', '1', '-b', '16', '-e', 'signed-integer', out], { stdio: 'pipe' });
  } catch (e) {
    throw new Error(`sox could not convert ${wav} to 48 kHz (${(e as Error).message}); install it with apt-get install sox`);
  }
  return out;
}

/** A preview-server plugin serving `files` (url name -> absolute path) under /__e2e/ with COOP/COEP. */
function serveFiles(files: Map<string, string>): Plugin {
  return {
    name: 'e2e-model-files',
    configurePreviewServer(server) {
      server.middlewares.use((req: IncomingMessage, res: ServerResponse, next: () => void) => {
        const m = /^\/__e2e\/([^?]+)/.exec(req.url ?? '');
        const path = m ? files.get(decodeURIComponent(m[1])) : undefined;
        if (!path) return next();
        const size = statSync(path).size;
        res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
        res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
        res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
        res.setHeader('Content-Type', path.endsWith('.json') ? 'application/json' : 'application/octet-stream');
        res.setHeader('Content-Length', String(size));
        res.end(readFileSync(path));
      });
    },
  };
}

/** Runs vite build into `outDir`. */
export async function buildApp(outDir: string): Promise<void> {
  const { build } = await import('vite');
  await build({ root: ROOT, configFile: resolve(ROOT, 'vite.config.ts'), logLevel: 'warn', build: { outDir, emptyOutDir: true } });
}

/** Builds (unless distDir is given), serves and drives the page; returns the report. */
export async function runE2E(o: E2EOptions): Promise<E2EReport> {
  const log = o.log ?? ((l: string) => console.error(l));
  for (const [k, v] of Object.entries({ mimiConfig: o.mimiConfig, mimiWeights: o.mimiWeights, lmConfig: o.lmConfig, lmWeights: o.lmWeights, mic: o.mic, tokenizer: o.tokenizer })) {
    if (v !== undefined && !existsSync(v)) throw new Error(`e2e: --${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} ${v} does not exist`);
  }
  if (!(o.seconds > 0)) throw new Error(`e2e: --seconds must be positive, got ${o.seconds}`);
  const tmp = mkdtempSync(join(tmpdir(), 'solacelive-e2e-'));
  const { preview } = await import('vite');
  let server: PreviewServer | null = null;
  const browser = await launchChromium([
    '--use-fake-ui-for-media-stream',
    '--use-fake-device-for-media-stream',
    `--use-file-for-fake-audio-capture=${make48kWav(o.mic, tmp)}`,
  ]);
  const consoleLines: string[] = [];
  try {
    const dist = o.distDir ?? join(tmp, 'dist');
    if (!o.distDir) {
      log('e2e: vite build');
      await buildApp(dist);
    }
    const files = new Map<string, string>();
    const add = (key: string, p: string | undefined) => {
      if (!p) return undefined;
      const name = `${key}-${basename(p)}`;
      files.set(name, resolve(p));
      return `/__e2e/${encodeURIComponent(name)}`;
    };
    const viaFiles = o.source === 'files';
    const query = new URLSearchParams();
    if (!viaFiles) {
      query.set('mimiConfig', add('mimi', o.mimiConfig)!);
      query.set('mimiWeights', add('mimi', o.mimiWeights)!);
      query.set('lmConfig', add('lm', o.lmConfig)!);
      query.set('lmWeights', add('lm', o.lmWeights)!);
      const tok = add('tok', o.tokenizer);
      if (tok) query.set('tokenizer', tok);
      query.set('autoload', '1');
      if (o.input !== 'file') query.set('autostart', '1');
    }
    if (o.condition) query.set('condition', o.condition);
    query.set('temp', '0');
    query.set('tempText', '0');
    query.set('rawMic', '1');
    if (o.transport === 'packets') query.set('transport', 'packets');
    server = await preview({
      root: ROOT,
      configFile: resolve(ROOT, 'vite.config.ts'),
      logLevel: 'warn',
      build: { outDir: dist },
      preview: { port: 0, host: '127.0.0.1', strictPort: false },
      plugins: [serveFiles(files)],
    });
    const addr = server.httpServer.address();
    if (!addr || typeof addr === 'string') throw new Error('vite preview has no TCP address');
    const url = `http://127.0.0.1:${addr.port}/?${query}`;
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('console', (m) => consoleLines.push(`[${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => consoleLines.push(`[pageerror] ${e.message}`));
    log(`e2e: open ${url}`);
    await page.goto(url);
    const loadTimeout = o.loadTimeoutMs ?? 600_000;
    if (viaFiles) {
      // The user's path: choose the source, pick the files, load, start the microphone.
      const picked = [o.mimiConfig, o.mimiWeights, o.lmConfig, o.lmWeights, o.tokenizer].filter((p): p is string => !!p).map((p) => resolve(p));
      await page.locator('input[name="src"][value="files"]').check();
      await page.locator('input[name="files"]').setInputFiles(picked);
      await page.locator('button.load').click();
      await page.waitForFunction(() => ['ready', 'error'].includes(window.__solacelive?.state ?? ''), undefined, { timeout: loadTimeout, polling: 200 });
      if ((await page.evaluate(() => window.__solacelive!.state)) === 'ready' && o.input !== 'file') await page.locator('button.mic').click();
    }
    if (o.input === 'file') {
      await page.waitForFunction(() => ['ready', 'error'].includes(window.__solacelive?.state ?? ''), undefined, { timeout: loadTimeout, polling: 200 });
      if ((await page.evaluate(() => window.__solacelive!.state)) === 'ready') {
        await page.locator('input[name="talkFile"]').setInputFiles(resolve(o.mic));
        await page.locator('button.file').click();
      }
    }
    await page.waitForFunction(() => {
      const h = window.__solacelive;
      return !!h && (h.state === 'running' || h.state === 'error');
    }, undefined, { timeout: loadTimeout, polling: 200 });
    const first = await page.evaluate(() => window.__solacelive!);
    if (first.state === 'error' && o.screenshot) await page.screenshot({ path: o.screenshot, fullPage: true });
    if (first.state === 'error') throw new Error(`e2e: the page reported an error: ${first.error}\nbanners: ${first.banners.join(' | ')}\n${consoleLines.slice(-30).join('\n')}`);
    log(`e2e: running for ${o.seconds} s`);
    const t0 = await page.evaluate(() => performance.now());
    if (o.sampleEverySeconds && o.onSample) {
      const cdp = await page.context().newCDPSession(page);
      await cdp.send('Performance.enable');
      for (let done = 0; done < o.seconds; ) {
        const dt = Math.min(o.sampleEverySeconds, o.seconds - done);
        await page.waitForTimeout(dt * 1000);
        done += dt;
        const hs = await page.evaluate(() => ({ steps: window.__solacelive!.metrics?.steps ?? 0, gpuBytes: window.__solacelive!.metrics?.gpuBytes ?? null, underruns: window.__solacelive!.played.underruns }));
        const pm = (await cdp.send('Performance.getMetrics')) as { metrics: { name: string; value: number }[] };
        const heap = pm.metrics.find((x) => x.name === 'JSHeapUsedSize')?.value ?? 0;
        o.onSample({ elapsedS: done, steps: hs.steps, gpuBytes: hs.gpuBytes, pageHeapBytes: heap, browserRssBytes: chromiumRssBytes(), underruns: hs.underruns });
      }
    } else {
      await page.waitForTimeout(o.seconds * 1000);
    }
    // Let the metrics refresh once more (the page polls every 250 ms).
    await page.waitForTimeout(400);
    const t1 = await page.evaluate(() => performance.now());
    const h = await page.evaluate(() => window.__solacelive!);
    if (o.screenshot) await page.screenshot({ path: o.screenshot, fullPage: true });
    const m = h.metrics;
    if (!m) throw new Error('e2e: the page published no metrics');
    const pick = (p: { p50: number; p95: number; max: number }): StatPct => ({ p50: p.p50, p95: p.p95, max: p.max });
    const runMs = h.runStartedAt !== null ? t1 - h.runStartedAt : t1 - t0;
    return {
      seconds: o.seconds,
      steps: m.steps,
      expectedSteps: Math.floor(runMs / 80),
      underruns: h.played.underruns,
      underrunsPerMinute: h.played.underruns / (runMs / 60000),
      // The page's metrics already merge capture and playback overruns (EngineClient.stats).
      overruns: m.overruns,
      skippedDecodes: m.skippedDecodes,
      droppedPackets: m.droppedPackets,
      protocolErrors: h.protocolErrors,
      overBudget: m.overBudget,
      stepMs: pick(m.stepMs),
      encodeMs: pick(m.encodeMs),
      lmMs: pick(m.lmMs),
      decodeMs: pick(m.decodeMs),
      latencyMs: m.latencyMs && m.latencyMs.count > 0 ? pick(m.latencyMs) : null,
      latencyFrames: m.latencyMs?.count ?? 0,
      modelDelayMs: m.modelDelayMs ?? null,
      underrunPercent: m.underrunPercent ?? null,
      outputRms: h.played.rms,
      outputSamples: h.played.samples,
      capturedSamples: h.captured.samples,
      textTokens: m.textTokens,
      textPackets: h.textPackets,
      text: h.text,
      transport: h.transport,
      adapter: h.adapter,
      errors: h.error ? [h.error] : [],
      console: consoleLines.slice(-40),
    };
  } finally {
    await browser.close();
    if (server) await new Promise<void>((ok) => server!.httpServer.close(() => ok()));
    rmSync(tmp, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'mimi-config': { type: 'string' },
      'mimi-weights': { type: 'string' },
      'lm-config': { type: 'string' },
      'lm-weights': { type: 'string' },
      tokenizer: { type: 'string' },
      mic: { type: 'string' },
      seconds: { type: 'string', default: '10' },
      json: { type: 'string' },
      condition: { type: 'string' },
      screenshot: { type: 'string' },
      transport: { type: 'string' },
      dist: { type: 'string' },
      source: { type: 'string' },
      input: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const usage = 'usage: npm run e2e -- --mimi-config C --mimi-weights W --lm-config C --lm-weights W --mic speech.wav --seconds S --json out.json [--condition NAME=VALUE] [--tokenizer T] [--screenshot page.png] [--transport packets] [--source urls|files] [--input mic|file] [--dist built-app-dir]';
  if (values.help) {
    console.log(usage);
    return;
  }
  const need = ['mimi-config', 'mimi-weights', 'lm-config', 'lm-weights', 'mic'] as const;
  const missing = need.filter((k) => !values[k]);
  if (missing.length) throw new Error(`missing ${missing.map((k) => `--${k}`).join(', ')}\n${usage}`);
  const seconds = Number(values.seconds);
  if (values.source !== undefined && values.source !== 'files' && values.source !== 'urls') throw new Error(`--source must be 'urls' or 'files', got '${values.source}'`);
  const report = await runE2E({
    mimiConfig: values['mimi-config']!,
    mimiWeights: values['mimi-weights']!,
    lmConfig: values['lm-config']!,
    lmWeights: values['lm-weights']!,
    tokenizer: values.tokenizer,
    mic: values.mic!,
    seconds,
    condition: values.condition,
    screenshot: values.screenshot,
    transport: values.transport === 'packets' ? 'packets' : 'shared',
    distDir: values.dist,
    source: values.source === 'files' ? 'files' : 'urls',
    input: values.input === 'file' ? 'file' : 'mic',
  });
  const text = JSON.stringify(report, null, 2);
  if (values.json) writeFileSync(values.json, text);
  console.log(text);
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  main().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}

