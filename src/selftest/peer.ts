/**
 * The kernel peer: onnxruntime-web running the same matrix products as our linear cases (matvec
 * M = 1 and matmul M > 1), in the same run, for the kernel page (src/selftest/runner.ts) and
 * `npm run bench -- kernels` (bench/kernels.ts). The product is a one-node ONNX Gemm
 * (./onnx_gemm.ts) with our weights' exact values as f32 initializers (ORT has no bf16 MatMul, so
 * the peer reads twice our bytes for a bf16 case: the table says so).
 *
 * Both sides are timed host to host, the way a caller sees one call: x from a host Float32Array
 * in, y back out to a host array, weights resident (ours: `LinearProblem.runHostToHost`, write +
 * dispatch + readback, no timestamp queries; ORT: `session.run` with CPU tensors). One warm-up
 * each, then timed runs alternating ours and the peer so drift hits both alike. The peer's
 * output is checked against ours (which the case validated against its CPU reference).
 *
 * onnxruntime-web is a dev-only package: src/ never imports it. The page's Worker loads it at run
 * time by URL from the dev server's node_modules (`loadOrt`), and only the small surface declared
 * here (`OrtModule`) is used; bench/kernels.ts passes the package it imports in Node.
 */
import { compareClose } from './check.ts';
import type { LinearProblem } from './kernel_case.ts';
import { encodeGemmModel } from './onnx_gemm.ts';
import { median } from './timing.ts';

/** The part of onnxruntime-web's API the peer uses (structurally the package's own types). */
export interface OrtModule {
  env: { wasm: { wasmPaths?: unknown; numThreads?: number }; logLevel?: string; versions?: { web?: string } };
  InferenceSession: { create(model: Uint8Array, options?: { executionProviders?: string[]; graphOptimizationLevel?: 'all' }): Promise<OrtSession> };
  Tensor: new (type: 'float32', data: Float32Array, dims: readonly number[]) => OrtTensor;
}
export interface OrtTensor {
  data: unknown;
  dispose(): void;
}
export interface OrtSession {
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}

/** ORT execution provider of a peer run: its WebGPU backend (same adapter as ours) or its wasm CPU backend. */
export type PeerEp = 'webgpu' | 'wasm';

/**
 * Loads onnxruntime-web from `moduleUrl` (an ES module, e.g. the dev server's
 * /node_modules/onnxruntime-web/dist/ort.webgpu.min.mjs, which holds both the WebGPU and wasm
 * backends), its .wasm/.mjs runtime files from `wasmPaths`.
 * @throws Error naming the URL when the module cannot be loaded (a build without node_modules)
 */
export async function loadOrt(moduleUrl: string, wasmPaths: string): Promise<OrtModule> {
  let ort: OrtModule;
  try {
    ort = (await import(/* @vite-ignore */ moduleUrl)) as OrtModule;
  } catch (e) {
    throw new Error(`onnxruntime-web not loadable from ${moduleUrl} (${(e as Error).message}); the kernel peer needs the dev server (npm start), which serves node_modules`);
  }
  ort.env.wasm.wasmPaths = wasmPaths;
  ort.env.logLevel = 'warning';
  return ort;
}

/** One linear case run by the peer beside ours. Times in ms; rates in 1e9 per second. */
export interface PeerResult {
  suite: string;
  name: string;
  ep: PeerEp;
  /** 'ok' only when the peer's y matched ours. */
  status: 'ok' | 'check-failed' | 'error';
  error?: string;
  /** e.g. 'onnxruntime-web 1.30.0 wasm, 4 threads'. */
  detail: string;
  /** Median host-to-host ms of one peer call (session.run). */
  peerMedianMs?: number;
  /** Median host-to-host ms of one call of ours, timed alternately with the peer's. */
  oursMedianMs?: number;
  /** oursMedianMs ÷ peerMedianMs: below 1, ours is faster. */
  ratio?: number;
  /** Timed runs of each side. */
  runs?: number;
  /** FLOPs of one call (2·M·N·K). */
  flops: number;
  /** Bytes the peer's call moves at least (x, f32 W, b, y). */
  bytes: number;
  /** flops / peerMedianMs: the peer's achieved GFLOP/s. */
  gflops?: number;
  /** bytes / peerMedianMs. */
  gbps?: number;
  /** Largest |peer − ours| over y. */
  maxAbsDiff?: number;
}

export interface PeerOptions {
  /** Timed runs per side, upper bound (default 10). */
  runs?: number;
  /** Lower bound when budgetMs cuts them short (default 3). */
  minRuns?: number;
  /** Stop adding runs once this much wall time was spent timing both sides (ms). */
  budgetMs?: number;
}

/**
 * Runs `p` on ORT's `ep` and ours alternately: session creation (untimed), one warm-up each,
 * then up to `runs` timed calls each. Never throws: session, run and check errors come back in
 * `status` / `error`. The session is released before returning.
 */
export async function benchLinearPeer(ort: OrtModule, ep: PeerEp, suite: string, name: string, p: LinearProblem, opts: PeerOptions = {}): Promise<PeerResult> {
  const { m, k, n } = p;
  const flops = 2 * m * n * k; // as our linear cases count it (the bias add is not counted)
  const bytes = 4 * (m * k + n * k + m * n + (p.bias ? n : 0));
  const detail = () => `onnxruntime-web ${ort.env.versions?.web ?? '?'} ${ep}${ep === 'wasm' ? `, ${ort.env.wasm.numThreads ?? 'default'} threads` : ''}, f32 weights`;
  const r: PeerResult = { suite, name, ep, status: 'ok', detail: detail(), flops, bytes };
  let session: OrtSession | null = null;
  try {
    const model = encodeGemmModel(m, k, n, p.weightF32(), p.bias);
    session = await ort.InferenceSession.create(model.bytes, { executionProviders: [ep], graphOptimizationLevel: 'all' });
    r.detail = detail(); // numThreads is settled once the wasm runtime started
    const s = session;
    const peerCall = async (): Promise<Float32Array> => {
      const out = await s.run({ [model.input]: new ort.Tensor('float32', p.x, [m, k]) });
      const t = out[model.output];
      const y = (t.data as Float32Array).slice();
      t.dispose();
      return y;
    };
    const oursY = await p.runHostToHost(p.x);
    const peerY = await peerCall();
    const cmp = compareClose(`${ep} peer vs ours`, peerY, oursY, { atol: 1e-5, scaleTol: 1e-4, shape: [m, n] });
    r.maxAbsDiff = cmp.maxAbs;
    if (!cmp.ok) return { ...r, status: 'check-failed', error: cmp.message };
    const runs = opts.runs ?? 10;
    const minRuns = Math.min(opts.minRuns ?? 3, runs);
    const budget = opts.budgetMs ?? Infinity;
    const ours: number[] = [];
    const peer: number[] = [];
    const start = performance.now();
    while (ours.length < runs) {
      let t0 = performance.now();
      await p.runHostToHost(p.x);
      ours.push(performance.now() - t0);
      t0 = performance.now();
      await peerCall();
      peer.push(performance.now() - t0);
      if (ours.length >= minRuns && performance.now() - start > budget) break;
    }
    r.oursMedianMs = median(ours);
    r.peerMedianMs = median(peer);
    r.ratio = r.oursMedianMs / r.peerMedianMs;
    r.runs = ours.length;
    r.gflops = flops / (r.peerMedianMs * 1e6);
    r.gbps = bytes / (r.peerMedianMs * 1e6);
    return r;
  } catch (e) {
    return { ...r, status: 'error', error: String((e as Error)?.message ?? e) };
  } finally {
    await session?.release().catch(() => undefined);
  }
}
