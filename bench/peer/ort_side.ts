/**
 * The peer: the official Mimi exported to ONNX (../shared/peers, see its README) run by
 * onnxruntime-web's WebGPU execution provider in this Worker. ORT is loaded from the dev server's
 * copy of node_modules/onnxruntime-web/dist (no CDN), its wasm runtime files from the same folder.
 */
import type * as Ort from 'onnxruntime-web';
import { type MimiRunner, fetchBytes } from './runner.ts';

interface PeerModelInfo {
  encode: { file: string; input: [string, string, number[]]; output: [string, string, number[]] };
  decode: { file: string; input: [string, string, number[]]; output: [string, string, number[]] };
}

let ortModule: typeof Ort | null = null;

async function loadOrt(moduleUrl: string, wasmPaths: string): Promise<typeof Ort> {
  if (ortModule) return ortModule;
  const ort = (await import(/* @vite-ignore */ moduleUrl)) as typeof Ort;
  ort.env.wasm.wasmPaths = wasmPaths;
  ort.env.logLevel = 'warning';
  ortModule = ort;
  return ort;
}

/**
 * Creates sessions for `peers/mimi_<set>_{encode,decode}.onnx` on ORT's `ep` execution provider:
 * 'webgpu' (same adapter as ours) or 'wasm' (ORT's CPU backend, SIMD + threads where the page is
 * cross-origin isolated).
 * @throws Error when a file is missing or ORT cannot create the session
 */
export async function createOrtRunner(opts: { moduleUrl: string; wasmPaths: string; peersUrl: string; set: string; ep: 'webgpu' | 'wasm' }): Promise<MimiRunner> {
  const ort = await loadOrt(opts.moduleUrl, opts.wasmPaths);
  const info = JSON.parse(new TextDecoder().decode(await fetchBytes(`${opts.peersUrl}/mimi_${opts.set}.json`))) as PeerModelInfo;
  const encBytes = await fetchBytes(`${opts.peersUrl}/${info.encode.file}`);
  const decBytes = await fetchBytes(`${opts.peersUrl}/${info.decode.file}`);
  const t0 = performance.now();
  const sessionOptions: Ort.InferenceSession.SessionOptions = { executionProviders: [opts.ep], graphOptimizationLevel: 'all' };
  const enc = await ort.InferenceSession.create(encBytes, sessionOptions);
  const dec = await ort.InferenceSession.create(decBytes, sessionOptions);
  const loadMs = performance.now() - t0;
  const [encIn, , encInShape] = info.encode.input;
  const [encOut, , encOutShape] = info.encode.output;
  const [decIn, , decInShape] = info.decode.input;
  const [decOut] = info.decode.output;
  const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);
  return {
    loadMs,
    detail: `onnxruntime-web ${ort.env.versions?.web ?? '?'} ${opts.ep} EP, wasm threads ${ort.env.wasm.numThreads ?? 'default'}`,
    numCodebooks: encOutShape[1],
    async encode(pcm) {
      if (pcm.length !== numel(encInShape)) throw new Error(`ORT encode export takes exactly ${numel(encInShape)} samples, got ${pcm.length}`);
      const out = await enc.run({ [encIn]: new ort.Tensor('float32', pcm, encInShape) });
      const codes = out[encOut];
      const data = codes.data as BigInt64Array;
      const r = new Int32Array(data.length);
      for (let i = 0; i < data.length; i++) r[i] = Number(data[i]);
      codes.dispose();
      return r; // [n_q, frames]
    },
    async decode(codes, frames) {
      if (codes.length !== numel(decInShape) || frames !== decInShape[2]) throw new Error(`ORT decode export takes codes [${decInShape.join(', ')}], got ${codes.length} values / ${frames} frames`);
      const big = new BigInt64Array(codes.length);
      for (let i = 0; i < codes.length; i++) big[i] = BigInt(codes[i]);
      const out = await dec.run({ [decIn]: new ort.Tensor('int64', big, decInShape) });
      const pcm = out[decOut];
      const r = (pcm.data as Float32Array).slice();
      pcm.dispose();
      return r;
    },
    async destroy() {
      await enc.release();
      await dec.release();
    },
  };
}
