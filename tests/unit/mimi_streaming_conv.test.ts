import { beforeAll, describe, it } from 'vitest';
import type { GpuContext } from '../../src/gpu/index.ts';
import { hostToEntry, VarBuilder } from '../../src/weights/var_builder.ts';
import { StreamingConv1d, StreamingConvTranspose1d, rowsView } from '../../src/modules/conv.ts';
import { conv1dRef } from '../../src/selftest/cases/conv1d.cases.ts';
import { convTr1dRef } from '../../src/selftest/cases/conv_transpose1d.cases.ts';
import { assertClose } from '../../src/selftest/check.ts';
import { nodeContext } from '../harness/node_gpu.ts';
import { Rng } from '../../src/selftest/rng.ts';

// Streaming equals batch (moshi/modules/conv.py test(): conv and convtr fed in chunks of frames
// give the one-pass output): chunked StreamingConv1d / StreamingConvTranspose1d calls, state
// carried in their GPU buffers, against a CPU reference of the whole sequence from zero state.

function weights(entries: Map<string, ReturnType<typeof hostToEntry>>, name: string, vals: Float32Array, shape: number[]): void {
  entries.set(name, hostToEntry(name, vals, shape, 'F32'));
}

describe('streaming convolutions equal one pass over the whole input', () => {
  let ctx: GpuContext;
  beforeAll(async () => {
    ctx = await nodeContext();
  });

  const convGrid = [
    { k: 7, stride: 1, dilation: 1, chunks: [2, 2, 4, 1, 6], pad: 'constant' as const }, // chunks shorter than the context (P = 6)
    { k: 3, stride: 1, dilation: 2, chunks: [5, 1, 3], pad: 'constant' as const },
    { k: 8, stride: 4, dilation: 1, chunks: [4, 12, 8], pad: 'constant' as const },
    { k: 4, stride: 2, dilation: 1, chunks: [2, 4, 2, 6], pad: 'replicate' as const },
  ];
  for (const g of convGrid) {
    it(`StreamingConv1d K=${g.k} S=${g.stride} D=${g.dilation} ${g.pad}, chunks ${g.chunks.join('+')}`, async () => {
      const cIn = 5, cOut = 7;
      const rng = new Rng(g.k * 31 + g.stride);
      const T = g.chunks.reduce((a, b) => a + b, 0);
      const xs = rng.normals(T * cIn);
      const w = rng.normals(cOut * cIn * g.k, 0.3);
      const b = rng.normals(cOut, 0.1);
      const entries = new Map();
      weights(entries, 'c.conv.conv.weight', w, [cOut, cIn, g.k]);
      weights(entries, 'c.conv.conv.bias', b, [cOut]);
      const conv = StreamingConv1d.load(ctx, VarBuilder.fromEntries(ctx, entries).pp('c'), { inChannels: cIn, outChannels: cOut, kernelSize: g.k, stride: g.stride, dilation: g.dilation, padMode: g.pad, act: 'elu' });
      const P = conv.context;
      // Reference: one pass from the initial state (zeros, or x[0] replicated).
      const prev0 = new Float32Array(Math.max(P, 1) * cIn);
      const want = conv1dRef(xs, prev0, w, b, null, { tIn: T, cIn, cOut, k: g.k, stride: g.stride, dilation: g.dilation, bias: true, act: 'elu', replicate: g.pad === 'replicate', first: true });
      const got = new Float32Array(want.length);
      for (let round = 0; round < 2; round++) {
        // Round 1 checks reset(): the same chunks again give the same output.
        let t0 = 0;
        let o = 0;
        const rec = ctx.record('chunks');
        const outs: Promise<unknown>[] = [];
        const tensors = [];
        for (const n of g.chunks) {
          const x = ctx.upload(xs.subarray(t0 * cIn, (t0 + n) * cIn), [n, cIn], 'f32', 'x');
          const y = ctx.tensor([conv.outLen(n), cOut], 'f32', 'y');
          conv.forward(rec, x, y);
          outs.push(rec.readback(y));
          tensors.push(x, y);
          t0 += n;
        }
        await rec.submit();
        for (const p of outs) {
          const v = (await p) as Float32Array;
          got.set(v, o);
          o += v.length;
        }
        assertClose(`chunked conv round ${round}`, got, want, { atol: 2e-5, shape: [want.length / cOut, cOut] });
        for (const t of tensors) t.destroy();
        conv.reset();
      }
      conv.destroy();
    });
  }

  for (const g of [{ k: 16, stride: 8, chunks: [1, 3, 2] }, { k: 4, stride: 2, chunks: [2, 1, 1, 4] }, { k: 7, stride: 3, chunks: [1, 1, 5] }]) {
    it(`StreamingConvTranspose1d K=${g.k} S=${g.stride}, chunks ${g.chunks.join('+')} (partial carried without bias)`, async () => {
      const cIn = 6, cOut = 5;
      const rng = new Rng(g.k * 17 + g.stride);
      const T = g.chunks.reduce((a, b) => a + b, 0);
      const xs = rng.normals(T * cIn);
      const w = rng.normals(cIn * cOut * g.k, 0.3);
      const b = rng.normals(cOut, 0.5);
      const entries = new Map();
      weights(entries, 'c.convtr.convtr.weight', w, [cIn, cOut, g.k]);
      weights(entries, 'c.convtr.convtr.bias', b, [cOut]);
      const convtr = StreamingConvTranspose1d.load(ctx, VarBuilder.fromEntries(ctx, entries).pp('c'), { inChannels: cIn, outChannels: cOut, kernelSize: g.k, stride: g.stride, act: 'elu' });
      // Reference: the whole sequence at once, tail dropped (official non-streaming unpad1d).
      const full = convTr1dRef(xs, w, b, null, { t: T, cIn, cOut, k: g.k, stride: g.stride, bias: true, act: 'elu' });
      const want = full.subarray(0, T * g.stride * cOut);
      const got = new Float32Array(want.length);
      let t0 = 0;
      let o = 0;
      const rec = ctx.record('chunks');
      const outs: Promise<unknown>[] = [];
      const tensors = [];
      for (const n of g.chunks) {
        const x = ctx.upload(xs.subarray(t0 * cIn, (t0 + n) * cIn), [n, cIn], 'f32', 'x');
        const y = ctx.tensor([convtr.extLen(n), cOut], 'f32', 'y');
        convtr.forward(rec, x, y);
        outs.push(rec.readback(rowsView(y, 0, n * g.stride)));
        tensors.push(x, y);
        t0 += n;
      }
      await rec.submit();
      for (const p of outs) {
        const v = (await p) as Float32Array;
        got.set(v, o);
        o += v.length;
      }
      assertClose('chunked convtr', got, want, { atol: 2e-5, shape: [T * g.stride, cOut] });
      for (const t of tensors) t.destroy();
      convtr.destroy();
    });
  }
});
