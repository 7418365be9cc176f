/// <reference lib="webworker" />
/**
 * Runs the Mimi peer comparison inside one module Worker: for each golden set, ours
 * (MimiModel.encodeAll/decodeAll) and onnxruntime-web's WebGPU backend on the official ONNX
 * export, same adapter, same weights, same input. Each op: `warmup` untimed runs, then `runs`
 * timed runs (host input to host output); every output is checked against the golden
 * non-streaming codes (exact) and audio (AUDIO_ATOL).
 */
import { median } from '../../src/selftest/timing.ts';
import { AUDIO_ATOL, type PeerMessage, type PeerRequest, type PeerSide } from './protocol.ts';
import { type MimiRunner, fetchBytes } from './runner.ts';

const post = (m: PeerMessage) => (self as unknown as Worker).postMessage(m);

const f32 = (b: Uint8Array) => new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
const i32 = (b: Uint8Array) => new Int32Array(b.buffer, b.byteOffset, b.byteLength / 4);

function checkCodes(got: Int32Array, want: Int32Array): { ok: boolean; check: string } {
  if (got.length !== want.length) return { ok: false, check: `${got.length} codes, expected ${want.length}` };
  let bad = 0;
  let first = -1;
  for (let i = 0; i < want.length; i++) {
    if (got[i] !== want[i]) {
      bad++;
      if (first < 0) first = i;
    }
  }
  return bad ? { ok: false, check: `${bad}/${want.length} codes differ, first at flat index ${first} (${got[first]} vs ${want[first]})` } : { ok: true, check: `${want.length} codes equal` };
}

function checkAudio(got: Float32Array, want: Float32Array): { ok: boolean; check: string } {
  if (got.length !== want.length) return { ok: false, check: `${got.length} samples, expected ${want.length}` };
  let maxAbs = 0;
  for (let i = 0; i < want.length; i++) maxAbs = Math.max(maxAbs, Math.abs(got[i] - want[i]) || (Number.isNaN(got[i]) ? Infinity : 0));
  return { ok: maxAbs <= AUDIO_ATOL, check: `max |Δ| ${maxAbs.toExponential(2)} (atol ${AUDIO_ATOL})` };
}

async function makeRunner(side: PeerSide, req: PeerRequest, set: string): Promise<MimiRunner> {
  if (side === 'ort' || side === 'ort-wasm') {
    const { createOrtRunner } = await import('./ort_side.ts');
    return createOrtRunner({ moduleUrl: req.ortModuleUrl, wasmPaths: req.ortWasmPaths, peersUrl: req.peersUrl, set, ep: side === 'ort' ? 'webgpu' : 'wasm' });
  }
  const { createOursRunner } = await import('./ours_side.ts');
  return createOursRunner({ fixturesUrl: req.fixturesUrl, set, onAdapter: (a) => post({ type: 'adapter', adapter: a }) });
}

async function timeOp<T>(warmup: number, runs: number, fn: () => Promise<T>): Promise<{ times: number[]; last: T }> {
  let last!: T;
  for (let i = 0; i < warmup; i++) last = await fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    last = await fn();
    times.push(performance.now() - t0);
  }
  return { times, last };
}

self.onmessage = async (e: MessageEvent<PeerRequest>) => {
  const req = e.data;
  try {
    post({ type: 'log', text: `crossOriginIsolated=${(self as unknown as { crossOriginIsolated: boolean }).crossOriginIsolated}` });
    for (const set of req.sets) {
      const base = `${req.fixturesUrl}/${set}/mimi`;
      const pcm = f32(await fetchBytes(`${base}/input_pcm_f32.f32.bin`));
      const goldCodes = i32(await fetchBytes(`${base}/ns_codes.i32.bin`));
      const goldAudio = f32(await fetchBytes(`${base}/ns_decoded_audio.f32.bin`));
      const frames = pcm.length / 1920;
      for (const side of req.sides) {
        post({ type: 'log', text: `${set}: loading ${side}` });
        const runner = await makeRunner(side, req, set);
        post({ type: 'setup', setup: { set, side, loadMs: runner.loadMs, detail: runner.detail } });
        try {
          const enc = await timeOp(req.warmup, req.runs, () => runner.encode(pcm));
          post({ type: 'timing', timing: { set, side, op: 'encode', timesMs: enc.times, medianMs: median(enc.times), ...checkCodes(enc.last, goldCodes) } });
          const dec = await timeOp(req.warmup, req.runs, () => runner.decode(goldCodes, frames));
          post({ type: 'timing', timing: { set, side, op: 'decode', timesMs: dec.times, medianMs: median(dec.times), ...checkAudio(dec.last, goldAudio) } });
        } finally {
          await runner.destroy();
        }
      }
    }
    post({ type: 'done' });
  } catch (err) {
    post({ type: 'done', error: String((err as Error)?.stack ?? err) });
  }
};
