/**
 * The Mimi encoder/decoder transformers (src/modules/transformer.ts) against the official goldens
 * of ../shared/fixtures/{ref,ref2b}: `ns_encoder_seanet_out` -> `ns_encoder_transformer_out` and
 * `ns_upsampled` -> `ns_decoder_transformer_out` (both [C, T] conv layout, transposed on the GPU
 * with transpose2d as `ProjectedTransformer(conv_layout=True)` does), and streaming in chunks
 * equal to one full forward.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/gpu/index.ts';
import { transpose2d } from '../../src/kernels/elementwise.ts';
import { StreamingTransformer, type TransformerConfig } from '../../src/modules/transformer.ts';
import { SafetensorsFile } from '../../src/weights/safetensors.ts';
import { VarBuilder } from '../../src/weights/var_builder.ts';
import { assertClose } from '../../src/selftest/check.ts';
import { fixtureF32, fixtureJson, nodeFixtures } from '../harness/fixtures.ts';
import { sentinelTensor } from '../../src/selftest/kernel_case.ts';
import { NODE_ADAPTER, NODE_ADAPTER_MISSING, nodeContext } from '../harness/node_gpu.ts';

const read = nodeFixtures();

interface MimiTinyConfig {
  mimi_config: {
    transformer: {
      d_model: number; num_heads: number; num_layers: number; causal: boolean; layer_scale: number | null; context: number;
      max_period: number; gating: 'none' | 'silu'; norm: TransformerConfig['norm']; positional_embedding: 'rope' | 'none'; dim_feedforward: number;
    };
  };
}

function transformerConfig(c: MimiTinyConfig): TransformerConfig {
  const t = c.mimi_config.transformer;
  return {
    dModel: t.d_model, numHeads: t.num_heads, numLayers: t.num_layers, dimFeedforward: t.dim_feedforward, causal: t.causal,
    context: t.context, maxPeriod: t.max_period, positionalEmbedding: t.positional_embedding, norm: t.norm, gating: t.gating,
    layerScale: t.layer_scale,
  };
}

/** Host [C, T] -> [T, C]. */
function timeMajor(a: Float32Array, c: number, t: number): Float32Array {
  const out = new Float32Array(c * t);
  for (let i = 0; i < c; i++) for (let j = 0; j < t; j++) out[j * c + i] = a[i * t + j];
  return out;
}

const SIDES = [
  { module: 'encoder_transformer', input: 'ns_encoder_seanet_out', output: 'ns_encoder_transformer_out' },
  { module: 'decoder_transformer', input: 'ns_upsampled', output: 'ns_decoder_transformer_out' },
] as const;

for (const set of ['ref', 'ref2b']) {
  describe.skipIf(NODE_ADAPTER_MISSING)(`Mimi transformers vs ${set} goldens (node ${NODE_ADAPTER})`, () => {
    let ctx: GpuContext;
    let cfg: TransformerConfig;
    let file: SafetensorsFile;
    const keep: { destroy(): void }[] = [];
    beforeAll(async () => {
      ctx = await nodeContext();
      cfg = transformerConfig(await fixtureJson<MimiTinyConfig>(read, `${set}/mimi_tiny_config.json`));
      file = SafetensorsFile.parse(await read(`${set}/mimi_tiny.safetensors`), `${set}/mimi_tiny.safetensors`);
    });
    afterAll(() => {
      for (const k of keep.splice(0)) k.destroy();
    });

    // fusion 'on': LayerNorm in the next matmul's prologue (norm1 + in_proj, norm2 + linear1); 'off': the norm kernel, then the matmul.
    for (const side of SIDES) for (const fusion of ['on', 'off'] as const) {
      it(`${side.module}: ${side.input} [C, T] -> ${side.output} (one forward, conv layout through transpose2d, fusion ${fusion})`, async () => {
        const vb = VarBuilder.fromSafetensors(ctx, [file]);
        const tr = StreamingTransformer.load(ctx, vb.pp(side.module).pp('transformer'), cfg);
        const unused = vb.unconsumed().filter((k) => k.startsWith(`${side.module}.`));
        expect(unused).toEqual([]);
        const D = cfg.dModel;
        const xin = await fixtureF32(read, `${set}/mimi/${side.input}.f32.bin`);
        const want = await fixtureF32(read, `${set}/mimi/${side.output}.f32.bin`);
        const T = xin.length / D;
        const xc = ctx.upload(xin, [D, T], 'f32', 'x_conv'); // [C, T]
        const x = sentinelTensor(ctx, [T, D], 'x'); // [T, C]
        const y = sentinelTensor(ctx, [T, D], 'y'); // [T, C]
        const yc = sentinelTensor(ctx, [D, T], 'y_conv'); // [C, T]
        keep.push(tr, xc, x, y, yc);
        const prev = ctx.kernelChoice;
        const tally = new Map<string, number>();
        ctx.kernelChoice = { ...prev, fusion };
        ctx.dispatchTally = tally;
        const rec = ctx.record(side.module);
        try {
          transpose2d(rec, xc, x);
          tr.forward(rec, x, y);
          transpose2d(rec, y, yc);
        } finally {
          ctx.kernelChoice = prev;
          ctx.dispatchTally = null;
        }
        const p = rec.readback(yc);
        await rec.submit();
        const count = (re: RegExp) => [...tally].reduce((n, [l, c]) => n + (re.test(l) ? c : 0), 0);
        // Per layer: norm1 and norm2 as prologues (fusion on) or as norm kernels (off).
        expect([count(/\+layer_norm\+/), count(/^norm\.layer_norm$/)], `fusion ${fusion}: fused LayerNorm vs norm kernels`).toEqual(fusion === 'on' ? [2 * cfg.numLayers, 0] : [0, 2 * cfg.numLayers]);
        expect(tr.offset).toBe(T);
        const r = assertClose(`${set} ${side.module}`, await p, want, { scaleTol: 1e-4, shape: [D, T] });
        console.log(`[${set}, fusion ${fusion}] ${r.message}`);
      });
    }

    it('encoder_transformer streaming in chunks of 1, 2, 5, 3, ... steps equals one full forward and the golden', async () => {
      const vb = VarBuilder.fromSafetensors(ctx, [file]);
      const tr = StreamingTransformer.load(ctx, vb.pp('encoder_transformer').pp('transformer'), cfg);
      keep.push(tr);
      const D = cfg.dModel;
      const xin = await fixtureF32(read, `${set}/mimi/ns_encoder_seanet_out.f32.bin`);
      const T = xin.length / D;
      const xt = timeMajor(xin, D, T);
      const want = timeMajor(await fixtureF32(read, `${set}/mimi/ns_encoder_transformer_out.f32.bin`), D, T);

      // Full forward.
      const xf = ctx.upload(xt, [T, D], 'f32', 'x_full');
      const yf = sentinelTensor(ctx, [T, D], 'y_full');
      keep.push(xf, yf);
      let rec = ctx.record('full');
      tr.forward(rec, xf, yf);
      const pf = rec.readback(yf);
      await rec.submit();
      const full = await pf;

      // Chunks: the first recording holds several forwards (scratch grows mid-recording), the rest one each.
      tr.reset();
      expect(tr.offset).toBe(0);
      const pattern = [1, 2, 5, 3];
      const chunks: number[] = [];
      for (let t = 0, i = 0; t < T; i++) {
        const n = Math.min(pattern[i % pattern.length], T - t);
        chunks.push(n);
        t += n;
      }
      const got = new Float32Array(T * D);
      const reads: { p: Promise<Float32Array | Int32Array | Uint32Array>; t0: number }[] = [];
      rec = ctx.record('chunks 0-3');
      for (let i = 0, t0 = 0; i < chunks.length; t0 += chunks[i], i++) {
        if (i >= 4) {
          await rec.submit();
          rec = ctx.record(`chunk ${i}`);
        }
        const n = chunks[i];
        const x = ctx.upload(xt.subarray(t0 * D, (t0 + n) * D), [n, D], 'f32', `x${i}`);
        const y = sentinelTensor(ctx, [n, D], `y${i}`);
        keep.push(x, y);
        tr.forward(rec, x, y);
        reads.push({ p: rec.readback(y), t0 });
      }
      await rec.submit();
      for (const { p, t0 } of reads) got.set(await p, t0 * D);
      expect(tr.offset).toBe(T);
      assertClose(`${set} streaming vs full`, got, full, { atol: 2e-6, scaleTol: 2e-6, shape: [T, D] });
      assertClose(`${set} streaming vs golden`, got, want, { scaleTol: 1e-4, shape: [T, D] });
    });

    it('rejects a wrong input width and more steps than the KV cache holds', async () => {
      const vb = VarBuilder.fromSafetensors(ctx, [file]);
      const tr = StreamingTransformer.load(ctx, vb.pp('encoder_transformer').pp('transformer'), cfg);
      keep.push(tr);
      const D = cfg.dModel;
      const bad = ctx.tensor([2, D + 1], 'f32', 'bad');
      const y = ctx.tensor([2, D], 'f32', 'y');
      const big = ctx.tensor([cfg.context! + 1, D], 'f32', 'big');
      const ybig = ctx.tensor([cfg.context! + 1, D], 'f32', 'ybig');
      keep.push(bad, y, big, ybig);
      const rec = ctx.record('errors');
      expect(() => tr.forward(rec, bad, y)).toThrow(/transformer input 'bad' is expected to have shape \[\?, \d+\]/);
      expect(() => tr.forward(rec, big, ybig)).toThrow(/exceed the KV cache capacity 250/);
      await rec.submit();
    });
  });
}

