/**
 * `npm run bench -- mimi-peer [--sets ref,ref2b] [--sides ours,ort,ort-wasm] [--warmup 1] [--runs 5]`
 *
 * Ours against the peers a user would otherwise run in a browser, in ONE headless Chromium
 * session: our MimiModel.encodeAll/decodeAll (WGSL kernels) and onnxruntime-web's WebGPU backend
 * (same adapter) and wasm backend (the CPU; on a machine whose WebGPU adapter is itself a CPU
 * emulator this is the fastest peer) on the official Mimi exported to ONNX
 * (../shared/peers/mimi_<set>_{encode,decode}.onnx), same weights (the golden set's tiny Mimi),
 * same input (the set's 24 kHz speech). Both run in one module Worker (bench/peer/), one after the
 * other; each op gets `warmup` untimed runs, then the median of `runs` timed runs, host input to
 * host output. Outputs are checked: codes must equal `mimi/ns_codes` exactly, decoded audio must be
 * within 5e-4 of `mimi/ns_decoded_audio`. Prints a table with the ratio ours ÷ theirs and writes
 * JSON to bench/results/mimi-peer-<time>.json. Exit code 1 when a check fails.
 *
 * onnxruntime-web is loaded from node_modules through the Vite dev server (its wasm files too:
 * `ort.env.wasm.wasmPaths`), under the COOP/COEP headers vite.config.ts sets.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { FIXTURES_DIR, launchChromium, ROOT, startDevServer } from '../tests/harness/browser.ts';
import { printTable, writeResults } from './common.ts';
import type { PeerRequest, PeerSetup, PeerSide, PeerTiming } from './peer/protocol.ts';

interface PeerState {
  done: boolean;
  error: string | null;
  adapter: unknown;
  setups: PeerSetup[];
  timings: PeerTiming[];
  log: string[];
}

const USAGE = 'usage: npm run bench -- mimi-peer [--sets ref,ref2b] [--sides ours,ort,ort-wasm] [--warmup N] [--runs N] [--timeout-s S]';

/** Runs the comparison; returns the JSON written. Throws when a check fails or the page errors. */
export async function run(args: string[]): Promise<unknown> {
  const { values } = parseArgs({
    args,
    options: {
      sets: { type: 'string', default: 'ref,ref2b' },
      sides: { type: 'string', default: 'ours,ort,ort-wasm' },
      warmup: { type: 'string', default: '1' },
      runs: { type: 'string', default: '5' },
      'timeout-s': { type: 'string', default: '3000' },
    },
    strict: true,
  });
  const sets = String(values.sets).split(',').filter(Boolean);
  const sides = String(values.sides).split(',').filter(Boolean) as PeerSide[];
  for (const s of sets) if (!['ref', 'ref2b'].includes(s)) throw new Error(`unknown set '${s}' (ref, ref2b)\n${USAGE}`);
  for (const s of sides) if (!['ours', 'ort', 'ort-wasm'].includes(s)) throw new Error(`unknown side '${s}' (ours, ort, ort-wasm)\n${USAGE}`);
  const warmup = Number(values.warmup);
  const runs = Number(values.runs);
  if (!Number.isInteger(warmup) || warmup < 0 || !Number.isInteger(runs) || runs < 1) throw new Error(`--warmup must be >= 0 and --runs >= 1\n${USAGE}`);

  const { server, url } = await startDevServer();
  const browser = await launchChromium();
  let state: PeerState;
  try {
    const page = await browser.newPage();
    const consoleLines: string[] = [];
    page.on('console', (m) => consoleLines.push(`[${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => consoleLines.push(`[pageerror] ${e.message}`));
    const dist = `${url}/node_modules/onnxruntime-web/dist/`;
    const req: PeerRequest = {
      fixturesUrl: `/@fs${FIXTURES_DIR}`,
      peersUrl: `/@fs${resolve(ROOT, '../shared/peers')}`,
      ortModuleUrl: `${dist}ort.webgpu.min.mjs`,
      ortWasmPaths: dist,
      sets,
      sides,
      warmup,
      runs,
    };
    await page.goto(`${url}/bench/peer/mimi_peer.html?request=${encodeURIComponent(JSON.stringify(req))}`);
    let shown = 0;
    const deadline = Date.now() + Number(values['timeout-s']) * 1000;
    for (;;) {
      const s = (await page.evaluate(() => window.__peer)) as PeerState;
      for (; shown < s.log.length; shown++) process.stderr.write(`  ${s.log[shown]}\n`);
      if (s.done) {
        state = s;
        break;
      }
      if (Date.now() > deadline) throw new Error(`mimi-peer: no result within ${values['timeout-s']} s; page console:\n${consoleLines.slice(-20).join('\n')}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    if (state.error) throw new Error(`mimi-peer page failed: ${state.error}\nconsole:\n${consoleLines.slice(-20).join('\n')}`);
  } finally {
    await browser.close();
    await server.close();
  }

  const rows: (string | number)[][] = [];
  const comparisons: Record<string, unknown>[] = [];
  const ms = (t: PeerTiming | undefined) => (t ? t.medianMs.toFixed(1) : '-');
  const ratio = (a: PeerTiming | undefined, b: PeerTiming | undefined) => (a && b ? a.medianMs / b.medianMs : null);
  const check = (t: PeerTiming | undefined) => (t ? (t.ok ? 'ok' : 'FAIL') : '-');
  for (const set of sets) {
    for (const op of ['encode', 'decode'] as const) {
      const find = (side: PeerSide) => state.timings.find((t) => t.set === set && t.side === side && t.op === op);
      const [o, g, w] = [find('ours'), find('ort'), find('ort-wasm')];
      const rg = ratio(o, g);
      const rw = ratio(o, w);
      comparisons.push({ set, op, oursMedianMs: o?.medianMs ?? null, ortWebgpuMedianMs: g?.medianMs ?? null, ortWasmMedianMs: w?.medianMs ?? null, ratioOursOverOrtWebgpu: rg, ratioOursOverOrtWasm: rw });
      rows.push([set, op, ms(o), ms(g), ms(w), rg !== null ? rg.toFixed(3) : '-', rw !== null ? rw.toFixed(3) : '-', `${check(o)} / ${check(g)} / ${check(w)}`]);
    }
  }
  const adapter = state.adapter as { vendor?: string; architecture?: string; isFallbackAdapter?: boolean } | null;
  console.log(`\nMimi non-streaming, ours vs onnxruntime-web (WebGPU EP on the same adapter, wasm EP on the CPU), one Chromium session, adapter ${adapter ? `${adapter.vendor}/${adapter.architecture}${adapter.isFallbackAdapter ? ' (fallback)' : ''}` : '(not reported)'}; warm-up ${warmup}, median of ${runs}`);
  printTable(['set', 'op', 'ours ms', 'ORT webgpu ms', 'ORT wasm ms', 'ours ÷ webgpu', 'ours ÷ wasm', 'checks (ours / webgpu / wasm)'], rows);
  for (const s of state.setups) console.log(`setup ${s.set} ${s.side}: ${s.loadMs.toFixed(0)} ms (${s.detail})`);
  const failed = state.timings.filter((t) => !t.ok);
  for (const t of failed) console.log(`CHECK FAILED: ${t.set} ${t.side} ${t.op}: ${t.check}`);
  const result = { bench: 'mimi-peer', date: new Date().toISOString(), adapter: state.adapter, warmup, runs, setups: state.setups, timings: state.timings, comparisons };
  console.log(`wrote ${writeResults('mimi-peer', result)}`);
  if (failed.length) throw new Error(`mimi-peer: ${failed.length} output check(s) failed`);
  return result;
}
