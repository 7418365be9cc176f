/**
 * Messages between the Mimi peer benchmark's driver (bench/mimi_peer.ts, Node), its page
 * (bench/peer/mimi_peer.html) and the module Worker that runs both implementations
 * (bench/peer/mimi_peer_worker.ts). Plain data only (structured clone).
 */

/** Which implementation: ours (MimiModel on our WGSL kernels), onnxruntime-web's WebGPU backend, or its wasm (CPU) backend. */
export type PeerSide = 'ours' | 'ort' | 'ort-wasm';

export interface PeerRequest {
  /** URL prefix of ../shared/fixtures (served by the dev server through /@fs). */
  fixturesUrl: string;
  /** URL prefix of ../shared/peers (the ONNX exports). */
  peersUrl: string;
  /** URL of onnxruntime-web's WebGPU ES module (node_modules/onnxruntime-web/dist/ort.webgpu.min.mjs). */
  ortModuleUrl: string;
  /** URL prefix where ORT finds its .wasm/.mjs runtime files (node_modules/onnxruntime-web/dist/). */
  ortWasmPaths: string;
  /** Golden sets to run: 'ref', 'ref2b'. */
  sets: string[];
  sides: PeerSide[];
  warmup: number;
  runs: number;
}

/** One timed operation of one side on one set. */
export interface PeerTiming {
  set: string;
  side: PeerSide;
  op: 'encode' | 'decode';
  /** Wall time of each timed run, host input to host output (ms). */
  timesMs: number[];
  medianMs: number;
  /** Output checked against the golden (codes exact / audio within tolerance). */
  ok: boolean;
  /** What the check found (mismatch count, max |Δ|). */
  check: string;
}

export interface PeerSetup {
  set: string;
  side: PeerSide;
  /** Time to create the model / sessions (weights fetched already), ms. */
  loadMs: number;
  detail: string;
}

export type PeerMessage =
  | { type: 'log'; text: string }
  | { type: 'adapter'; adapter: unknown }
  | { type: 'setup'; setup: PeerSetup }
  | { type: 'timing'; timing: PeerTiming }
  | { type: 'done'; error?: string };

/** Audio tolerance for decode checks: the fixture README's suggested WebGPU atol. */
export const AUDIO_ATOL = 5e-4;
