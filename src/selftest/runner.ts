/**
 * The kernel page's self-test and benchmark, run by its module Worker
 * (workers/selftest_worker.ts) on this browser's WebGPU adapter:
 * - mode 'test': every kernel case of ALL_SUITES (the odd-size grid) against its CPU reference,
 *   one result per case;
 * - mode 'bench': the adapter's copy bandwidth and peak compute (the roofline's two roofs), then
 *   the suites' benchmark cases at model sizes (timing.ts, the same runner as `npm run bench`):
 *   validated first, then median time (GPU timestamps where the adapter has timestamp-query),
 *   GFLOP/s, GB/s and the fraction of the adapter's copy bandwidth; each linear case (matvec and
 *   matmul) also run by the kernel peer, onnxruntime-web (./peer.ts), when the request names it.
 * The page (src/ui/selftest.ts) and the Worker share these message types.
 */
import { GpuContext } from '../gpu/index.ts';
import { runCase } from './kernel_case.ts';
import { type OrtModule, type PeerEp, type PeerResult, benchLinearPeer, loadOrt } from './peer.ts';
import { ALL_SUITES } from './suites.ts';
import { benchKernelCase, measureCopyBandwidth, measurePeakCompute, type CopyBandwidth, type KernelBenchResult, type PeakCompute } from './timing.ts';

/**
 * Worker → page, in order: 'adapter', then 'result' (test) or 'copy', 'peak' and 'bench' (+ 'peer'
 * after a linear case) (bench), then 'done'; or 'error'. Bench posts one 'peer-status': first
 * when no peer was asked for, else when onnxruntime-web loaded or failed to (before the first
 * 'peer'), or just before 'done' when no case needed it.
 */
export type SelfTestMessage =
  | { type: 'adapter'; adapter: GpuContext['adapter'] }
  | { type: 'result'; suite: string; name: string; ok: boolean; message: string; ms: number }
  | { type: 'copy'; copy: CopyBandwidth; timing: 'gpu-timestamp' | 'wall' }
  | { type: 'peak'; peak: PeakCompute | null; error?: string }
  | { type: 'peer-status'; available: boolean; eps: PeerEp[]; message: string }
  | { type: 'bench'; result: KernelBenchResult }
  | { type: 'peer'; result: PeerResult }
  | { type: 'done'; passed: number; failed: number }
  | { type: 'error'; message: string };

/** Where the Worker loads onnxruntime-web from (see ./peer.ts loadOrt) and which backends to run. */
export interface PeerRequest {
  /** URL of onnxruntime-web's ES module with the WebGPU and wasm backends (ort.webgpu.min.mjs). */
  moduleUrl: string;
  /** URL prefix of ORT's .wasm / .mjs runtime files. */
  wasmPaths: string;
  eps: PeerEp[];
}

/** Starts a run; `suites` (names, e.g. ['rope', 'linear']) limits it, all suites otherwise. */
export interface SelfTestRequest {
  type: 'run';
  /** 'test' (default): correctness of every case; 'bench': timing of the benchmark cases. */
  mode?: 'test' | 'bench';
  suites?: string[];
  /** Bench only: keep cases whose '<suite>: <name>' contains one of these (case-insensitive). */
  cases?: string[];
  /** Bench only: run the kernel peer on the linear cases; none without it. */
  peer?: PeerRequest;
}

/**
 * Runs `req` on a fresh GpuContext, reporting through `post`. Never throws: an unknown suite name
 * or a context that cannot be created ends in one 'error' message; a failing case is a 'result'
 * (or 'bench') with ok false and the run goes on.
 */
export async function runSelfTest(req: SelfTestRequest | undefined, post: (m: SelfTestMessage) => void): Promise<void> {
  try {
    const wanted = req?.suites?.length ? req.suites : null;
    const unknown = (wanted ?? []).filter((n) => !ALL_SUITES.some((s) => s.name === n));
    if (unknown.length) throw new Error(`unknown kernel suite ${unknown.join(', ')}; suites: ${ALL_SUITES.map((s) => s.name).join(', ')}`);
    const bench = req?.mode === 'bench';
    const ctx = await GpuContext.create({ profile: bench });
    post({ type: 'adapter', adapter: ctx.adapter });
    let passed = 0;
    let failed = 0;
    const suites = ALL_SUITES.filter((s) => !wanted || wanted.includes(s.name));
    if (bench) {
      const copy = await measureCopyBandwidth(ctx);
      post({ type: 'copy', copy, timing: ctx.profiler ? 'gpu-timestamp' : 'wall' });
      try {
        post({ type: 'peak', peak: await measurePeakCompute(ctx) });
      } catch (e) {
        failed++;
        post({ type: 'peak', peak: null, error: String((e as Error).message ?? e) });
      }
      // onnxruntime-web is loaded on the first case the peer can run (a linear one), not before.
      const eps = req?.peer?.eps ?? [];
      const peerReq = eps.length ? req?.peer : undefined;
      let ort: OrtModule | 'unloaded' | 'failed' = peerReq ? 'unloaded' : 'failed';
      if (!peerReq) post({ type: 'peer-status', available: false, eps: [], message: 'no kernel peer requested' });
      const peerOrt = async (): Promise<OrtModule | null> => {
        if (ort === 'unloaded' && peerReq) {
          try {
            ort = await loadOrt(peerReq.moduleUrl, peerReq.wasmPaths);
            post({ type: 'peer-status', available: true, eps, message: `onnxruntime-web ${ort.env.versions?.web ?? '?'} (${eps.join(', ')}) on the linear cases` });
          } catch (e) {
            ort = 'failed';
            post({ type: 'peer-status', available: false, eps, message: String((e as Error).message ?? e) });
          }
        }
        return typeof ort === 'string' ? null : ort;
      };
      const keep = req?.cases?.length ? req.cases.map((x) => x.toLowerCase()) : null;
      const timing = { runs: 10, minRuns: 3, budgetMs: 3000 };
      for (const suite of suites) {
        for (const c of suite.bench) {
          if (keep && !keep.some((k) => `${suite.name}: ${c.name}`.toLowerCase().includes(k))) continue;
          const peers: PeerResult[] = [];
          const result = await benchKernelCase(ctx, suite.name, c, copy, timing, async (inst) => {
            if (!inst.linear) return;
            const o = await peerOrt();
            if (o) for (const ep of eps) peers.push(await benchLinearPeer(o, ep, suite.name, c.name, inst.linear, timing));
          });
          if (result.status === 'ok') passed++;
          else failed++;
          post({ type: 'bench', result });
          for (const p of peers) {
            if (p.status !== 'ok') failed++;
            post({ type: 'peer', result: p });
          }
        }
      }
      if (ort === 'unloaded') post({ type: 'peer-status', available: false, eps, message: 'no linear (matvec / matmul) case in this run' });
    } else {
      for (const suite of suites) {
        for (const c of suite.tests) {
          const t0 = performance.now();
          try {
            await runCase(ctx, c);
            passed++;
            post({ type: 'result', suite: suite.name, name: c.name, ok: true, message: '', ms: performance.now() - t0 });
          } catch (err) {
            failed++;
            post({ type: 'result', suite: suite.name, name: c.name, ok: false, message: String((err as Error).message ?? err), ms: performance.now() - t0 });
          }
        }
      }
    }
    post({ type: 'done', passed, failed });
    ctx.destroy();
  } catch (err) {
    post({ type: 'error', message: `${(err as Error).name}: ${(err as Error).message}` });
  }
}
