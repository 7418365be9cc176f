// Weights larger than one storage binding (the 7B's bf16 text_emb / text_linear: 262 MB against
// a 128 MiB default maxStorageBufferBindingSize) are bound in row ranges. A device whose binding
// limit is set low (GpuContextOptions.maxBindingBytes) exercises it on tiny tensors: results
// equal the whole-binding path, and a whole quantized LM reproduces its golden.
import { describe, expect, it } from 'vitest';
import { GpuLimitError, QuantizedTensor, type GpuContext, type WeightTensor } from '../../src/gpu/index.ts';
import { createNodeGpuContext } from '../../src/gpu/node.ts';
import { embedding, stackTables } from '../../src/kernels/embedding.ts';
import { linear } from '../../src/kernels/linear.ts';
import { unary } from '../../src/kernels/unary.ts';
import { weightRanges } from '../../src/kernels/weight_ranges.ts';
import { assertClose } from '../../src/selftest/check.ts';
import { makeQuantized } from '../../src/selftest/cases/linear_quant.cases.ts';
import { Rng } from '../../src/selftest/rng.ts';
import { nodeFixtures } from '../harness/fixtures.ts';
import { runQuantLmGolden } from '../golden/lm_quant_golden.ts';

const LIMIT = 16384;
let small: GpuContext | null = null;
const lowLimitContext = async () => (small ??= await createNodeGpuContext({ maxBindingBytes: LIMIT }));
let lmContext: GpuContext | null = null;

function weight(ctx: GpuContext, kind: 'bf16' | 'q8' | 'q4', n: number, k: number, seed: number): { w: WeightTensor; deq: Float32Array } {
  const rng = new Rng(seed);
  if (kind === 'q8') return makeQuantized(ctx, rng, { format: 'q8' }, n, k, 'w', { rangeBound: true });
  if (kind === 'q4') return makeQuantized(ctx, rng, { format: 'affine', bits: 4, groupSize: 32 }, n, k, 'w', { rangeBound: true });
  const vals = rng.normals(n * k);
  const w = ctx.upload(vals, [n, k], 'bf16', 'w', { rangeBound: true });
  return { w, deq: Float32Array.from(vals, (v) => new Float32Array(new Uint32Array([(new Uint32Array(new Float32Array([v]).buffer)[0] + 0x7fff + ((new Uint32Array(new Float32Array([v]).buffer)[0] >>> 16) & 1)) & 0xffff0000]).buffer)[0]) };
}

function free(w: WeightTensor): void {
  if (w instanceof QuantizedTensor) w.destroy();
  else w.destroy();
}

describe('weights bound in row ranges (low binding limit)', () => {
  for (const kind of ['bf16', 'q8', 'q4'] as const) {
    it(`${kind}: linear (M = 1) and embedding over several ranges equal the CPU reference`, async () => {
      const ctx = await lowLimitContext();
      const [n, k] = [300, 128];
      const { w, deq } = weight(ctx, kind, n, k, 7);
      const ranges = weightRanges(ctx, w, 64);
      expect(ranges.length).toBeGreaterThan(1);
      expect(ranges.reduce((a, r) => a + r.rows, 0)).toBe(n);
      const rng = new Rng(3);
      const xs = rng.normals(k);
      const bs = rng.normals(n);
      const x = ctx.upload(xs, [k], 'f32', 'x');
      const b = ctx.upload(bs, [n], 'f32', 'b');
      const y = ctx.tensor([n], 'f32', 'y');
      const ids = ctx.upload(Int32Array.from([5, 299, -1, 150, 300, 64, 128]), [7], 'i32', 'ids');
      const e = ctx.tensor([7, k], 'f32', 'e');
      const rec = ctx.record('ranges');
      linear(rec, x, w, b, y);
      embedding(rec, w, ids, e, { accumulate: false });
      await rec.submit();
      const want = new Float64Array(n);
      for (let r = 0; r < n; r++) {
        let s = bs[r];
        for (let j = 0; j < k; j++) s += xs[j] * deq[r * k + j];
        want[r] = s;
      }
      assertClose(`${kind} linear over ranges`, await ctx.readF32(y), want, { scaleTol: 1e-4 });
      const wantE = new Float32Array(7 * k);
      [5, 299, -1, 150, 300, 64, 128].forEach((id, m) => {
        if (id >= 0 && id < n) wantE.set(deq.subarray(id * k, (id + 1) * k), m * k);
      });
      assertClose(`${kind} embedding over ranges`, await ctx.readF32(e), wantE, { atol: 1e-6, rtol: 1e-6 });
      for (const t of [x, b, y, ids, e]) t.destroy();
      free(w);
    });
  }

  it('stacked embedding tables over several ranges: one dispatch per range that holds looked-up rows, the same sums as one dispatch per table', async () => {
    const ctx = await lowLimitContext();
    // 6 bf16 tables [33, 64] (4224 bytes each): the 25 KB stack spans 2 ranges of the 16 KiB limit.
    const T = 6, R = 33, d = 64;
    const rng = new Rng(11);
    const tables = Array.from({ length: T }, (_, t) => weight(ctx, 'bf16', R, d, 40 + t));
    const stack = (await stackTables(ctx, tables.map((t) => t.w), 'stack'))!;
    expect(stack).not.toBeNull();
    expect(weightRanges(ctx, stack).length).toBe(2);
    const idv = Int32Array.from({ length: T }, (_, t) => (t === 2 ? R : rng.int(R)));
    const ids = ctx.upload(idv, [T], 'i32', 'ids');
    const y = ctx.tensor([1, d], 'f32', 'y');
    const yLast = ctx.tensor([1, d], 'f32', 'y (last table only)');
    const tally = new Map<string, number>();
    ctx.dispatchTally = tally;
    const rec = ctx.record('stacked ranges');
    embedding(rec, stack, ids, y, { accumulate: false, stacked: { tables: T, tableRows: R } });
    const afterAll = [...tally.values()].reduce((a, b) => a + b, 0);
    embedding(rec, stack, ids, yLast, { accumulate: false, idsOffset: T - 1, stacked: { tables: 1, firstTable: T - 1, tableRows: R } });
    const lastOnly = [...tally.values()].reduce((a, b) => a + b, 0) - afterAll;
    ctx.dispatchTally = null;
    await rec.submit();
    expect([afterAll, lastOnly]).toEqual([2, 1]);
    const want = new Float32Array(d);
    for (let t = 0; t < T; t++) for (let j = 0; j < d; j++) if (idv[t] < R) want[j] = Math.fround(want[j] + tables[t].deq[idv[t] * d + j]);
    assertClose('stacked embedding over ranges', await ctx.readF32(y), want, { atol: 0, rtol: 0 });
    assertClose('last stacked table alone', await ctx.readF32(yLast), tables[T - 1].deq.subarray(idv[T - 1] * d, (idv[T - 1] + 1) * d), { atol: 0, rtol: 0 });
    // What stackTables leaves to one dispatch per table: quantized, mismatched, odd-width halves, a single table.
    const q = weight(ctx, 'q8', R, d, 50);
    const f = ctx.upload(new Float32Array(R * d), [R, d], 'f32', 'f32 table');
    const odd = [0, 1].map((i) => ctx.upload(new Float32Array(3 * 5), [3, 5], 'bf16', `odd ${i}`));
    expect(await stackTables(ctx, [tables[0].w, q.w], 'q')).toBeNull();
    expect(await stackTables(ctx, [tables[0].w, f], 'mixed')).toBeNull();
    expect(await stackTables(ctx, odd, 'odd')).toBeNull();
    expect(await stackTables(ctx, [tables[0].w], 'one')).toBeNull();
    for (const t of [stack, ids, y, yLast, f, ...odd]) t.destroy();
    for (const t of [...tables, q]) free(t.w);
  });

  it('a kernel that binds whole refuses a tensor over the limit by name; M > 1 over ranges is refused', async () => {
    const ctx = await lowLimitContext();
    const big = ctx.upload(new Float32Array(8192), [8192], 'f32', 'big', { rangeBound: true });
    const out = ctx.tensor([8192], 'f32', 'out', { rangeBound: true });
    expect(() => unary(ctx.record('x'), 'gelu', big, out)).toThrow(GpuLimitError);
    expect(() => unary(ctx.record('x'), 'gelu', big, out)).toThrow(/binding 'x' \('big'\) covers 32768 bytes, over the 16384 bytes one binding may cover/);
    expect(() => ctx.tensor([8192], 'f32', 'plain')).toThrow(/'plain' .* over the 16384 bytes one binding may cover/);
    const { w } = weight(ctx, 'bf16', 300, 128, 1);
    const x = ctx.tensor([3, 128], 'f32', 'x3');
    const y = ctx.tensor([3, 300], 'f32', 'y3');
    expect(() => linear(ctx.record('m3'), x, w, null, y)).toThrow(/bound in row ranges .* supports one input row; got M = 3/);
    for (const t of [big, out, x, y]) t.destroy();
    free(w);
  });

  for (const set of ['bf16', 'mlx_q4', 'q8'] as const) {
    it(`the quant fixture LM (${set}) with every large matrix in ranges reproduces its golden`, async () => {
      // 128 KiB: the KV caches (40 steps) and activations bind whole; the FFN and projection
      // matrices (up to 720 KB here) go in ranges.
      const ctx = (lmContext ??= await createNodeGpuContext({ maxBindingBytes: 131072 }));
      const r = await runQuantLmGolden(ctx, nodeFixtures(), set, 'f32', { context: 40 });
      expect(r.steps).toBe(36);
    }, 600_000);
  }
});
