// The kernel peer's own parts, in Node on onnxruntime-web's wasm backend: the hand-encoded
// one-node ONNX Gemm computes y = x · Wᵀ (+ b) exactly as our linear does, and benchLinearPeer
// times a problem, reports ours ÷ peer, and refuses a peer whose output differs from ours.
import * as ortPackage from 'onnxruntime-web';
import { describe, expect, it } from 'vitest';
import { encodeGemmModel } from '../../src/selftest/onnx_gemm.ts';
import { type OrtModule, benchLinearPeer } from '../../src/selftest/peer.ts';
import type { LinearProblem } from '../../src/selftest/kernel_case.ts';
import { Rng } from '../../src/selftest/rng.ts';

const ort = ortPackage as unknown as OrtModule;

function cpuLinear(x: Float32Array, w: Float32Array, b: Float32Array | null, m: number, k: number, n: number): Float32Array {
  const y = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = b ? b[j] : 0;
      for (let t = 0; t < k; t++) s += x[i * k + t] * w[j * k + t];
      y[i * n + j] = s;
    }
  }
  return y;
}

function problem(m: number, k: number, n: number, bias: boolean, seed: number, ours?: (y: Float32Array) => Float32Array): LinearProblem {
  const rng = new Rng(seed);
  const x = rng.normals(m * k);
  const w = rng.normals(n * k);
  const b = bias ? rng.normals(n) : null;
  const y = cpuLinear(x, w, b, m, k, n);
  return { m, k, n, weightDtype: 'f32', x, bias: b, weightF32: () => w, runHostToHost: async () => (ours ? ours(y) : y) };
}

describe('kernel peer (onnxruntime-web wasm in Node)', () => {
  for (const [m, k, n, bias] of [[1, 17, 3, false], [3, 63, 315, true], [72, 5, 1, true]] as const) {
    it(`the ONNX Gemm is y = x · Wᵀ${bias ? ' + b' : ''} for M=${m} K=${k} N=${n}`, async () => {
      const p = problem(m, k, n, bias, m + k + n);
      const model = encodeGemmModel(m, k, n, p.weightF32(), p.bias);
      const s = await ort.InferenceSession.create(model.bytes, { executionProviders: ['wasm'] });
      try {
        const out = await s.run({ [model.input]: new ort.Tensor('float32', p.x, [m, k]) });
        const got = out[model.output].data as Float32Array;
        const want = await p.runHostToHost(p.x);
        expect(got.length).toBe(m * n);
        for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThan(1e-4 * (1 + Math.abs(want[i])));
      } finally {
        await s.release();
      }
    });
  }

  it('encodeGemmModel refuses a weight of the wrong size', () => {
    expect(() => encodeGemmModel(1, 4, 3, new Float32Array(11), null)).toThrow(/weight has 11 values, expected N·K = 3·4/);
  });

  it('benchLinearPeer times both sides and reports ours ÷ peer', async () => {
    const r = await benchLinearPeer(ort, 'wasm', 'linear', 'M=4 K=64 N=32', problem(4, 64, 32, true, 1), { runs: 3 });
    expect(r.status, r.error).toBe('ok');
    expect(r.runs).toBe(3);
    expect(r.ratio).toBeCloseTo(r.oursMedianMs! / r.peerMedianMs!, 9);
    expect(r.flops).toBe(2 * 4 * 64 * 32);
    expect(r.bytes).toBe(4 * (4 * 64 + 32 * 64 + 4 * 32 + 32));
    expect(r.detail).toMatch(/^onnxruntime-web \d+\.\d+\.\d+ wasm, .* f32 weights$/);
  });

  it('benchLinearPeer reports check-failed when the peer and ours disagree', async () => {
    const r = await benchLinearPeer(ort, 'wasm', 'linear', 'M=2 K=8 N=5', problem(2, 8, 5, false, 2, (y) => y.map((v, i) => (i === 7 ? v + 1 : v))), { runs: 3 });
    expect(r.status).toBe('check-failed');
    expect(r.error).toMatch(/1\/10 not close/);
    expect(r.ratio).toBeUndefined();
  });
});
