import { beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext, Tensor } from '../../src/gpu/index.ts';
import { mimiDerived } from '../../src/models/mimi_config.ts';
import { Workspace } from '../../src/modules/conv.ts';
import { ConvDownsample1d, ConvTrUpsample1d } from '../../src/modules/resample.ts';
import { SEANetDecoder, SEANetEncoder } from '../../src/modules/seanet.ts';
import { SplitResidualVectorQuantizer } from '../../src/quantization/vq.ts';
import { assertClose, assertEqualInts } from '../harness/check.ts';
import { fixtureF32, fixtureI32, nodeFixtures } from '../harness/fixtures.ts';
import { nodeContext } from '../harness/node_gpu.ts';
import { type MimiFixture, loadMimiFixture, toTimeMajor } from './mimi_helpers.ts';

const read = nodeFixtures();
/** Intermediates: within 1e-4 of their scale (max |expected|). */
const INTER = { scaleTol: 1e-4 };

for (const set of ['ref', 'ref2b']) {
  describe(`Mimi components vs ${set} goldens (node)`, () => {
    let ctx: GpuContext;
    let fx: MimiFixture;
    const f32 = (name: string) => fixtureF32(read, `${set}/mimi/${name}.f32.bin`);
    beforeAll(async () => {
      ctx = await nodeContext();
      fx = await loadMimiFixture(read, set);
    });

    it('SEANet encoder (non-streaming, whole clip) matches ns_encoder_seanet_out', async () => {
      const cfg = fx.config;
      const pcm = await f32('input_pcm_f32');
      const enc = SEANetEncoder.load(ctx, fx.vb(ctx).pp('encoder'), cfg.seanet);
      const ws = new Workspace(ctx, 'test');
      const x = ctx.upload(pcm, [pcm.length, 1], 'f32', 'pcm');
      const rec = ctx.record('seanet enc');
      const out = enc.forward(rec, ws, x);
      const p = rec.readback(out);
      await rec.submit();
      const D = cfg.seanet.dimension;
      const T = pcm.length / 960;
      expect(out.shape).toEqual([T, D]);
      const r = assertClose('encoder seanet', await p, toTimeMajor(await f32('ns_encoder_seanet_out'), D, T), { ...INTER, shape: [T, D] });
      console.log(`[${set}] ${r.message}`);
      enc.destroy();
      ws.destroy();
      x.destroy();
    });

    it('downsample + split RVQ: latent_prequant, input projections, codes, latent_quantized', async () => {
      const cfg = fx.config;
      const D = cfg.seanet.dimension;
      const { downsampleStride } = mimiDerived(cfg);
      const vb = fx.vb(ctx);
      const down = ConvDownsample1d.load(ctx, vb.pp('downsample'), downsampleStride, D);
      const quant = SplitResidualVectorQuantizer.load(ctx, vb.pp('quantizer'), cfg.quantizer, cfg.num_codebooks);
      const encOut = await f32('ns_encoder_transformer_out');
      const T25 = encOut.length / D;
      const F = T25 / downsampleStride;
      const ws = new Workspace(ctx, 'test');
      const x = ctx.upload(toTimeMajor(encOut, D, T25), [T25, D], 'f32', 'enc_tr_out');
      const K = cfg.num_codebooks;
      const codes = ctx.tensor([K, F], 'i32', 'codes');
      const rec = ctx.record('down+rvq');
      const lat = down.forward(rec, ws, x);
      const proj = quant.encode(rec, ws, lat, codes, 0);
      const dec = quant.decode(rec, ws, codes, F, 0);
      const reads = [rec.readback(lat), rec.readback(proj.first), rec.readback(proj.rest as Tensor), rec.readback(codes), rec.readback(dec)];
      await rec.submit();
      const [gLat, gP1, gP2, gCodes, gDec] = await Promise.all(reads);
      const Dq = cfg.quantizer.dimension;
      const msgs = [
        assertClose('latent_prequant', gLat, toTimeMajor(await f32('ns_latent_prequant'), D, F), { ...INTER, shape: [F, D] }).message,
        assertClose('rvq_first input_proj', gP1, toTimeMajor(await f32('ns_rvq_first_input_proj'), Dq, F), { ...INTER, shape: [F, Dq] }).message,
        assertClose('rvq_rest input_proj', gP2, toTimeMajor(await f32('ns_rvq_rest_input_proj'), Dq, F), { ...INTER, shape: [F, Dq] }).message,
      ];
      assertEqualInts('codes', gCodes, await fixtureI32(read, `${set}/mimi/ns_codes.i32.bin`), [K, F]);
      msgs.push(assertClose('latent_quantized', gDec, toTimeMajor(await f32('ns_latent_quantized'), D, F), { ...INTER, shape: [F, D] }).message);
      console.log(msgs.map((m) => `[${set}] ${m}`).join('\n'));
      for (const t of [x, codes]) t.destroy();
      down.destroy();
      quant.destroy();
      ws.destroy();
    });

    it('upsample matches ns_upsampled; SEANet decoder from ns_decoder_transformer_out matches ns_decoded_audio', async () => {
      const cfg = fx.config;
      const D = cfg.seanet.dimension;
      const { downsampleStride } = mimiDerived(cfg);
      const vb = fx.vb(ctx);
      const up = ConvTrUpsample1d.load(ctx, vb.pp('upsample'), downsampleStride, D, true);
      const dec = SEANetDecoder.load(ctx, vb.pp('decoder'), cfg.seanet);
      const q = await f32('ns_latent_quantized');
      const F = q.length / D;
      const trOut = await f32('ns_decoder_transformer_out');
      const T25 = trOut.length / D;
      const ws = new Workspace(ctx, 'test');
      const xq = ctx.upload(toTimeMajor(q, D, F), [F, D], 'f32', 'q');
      const xt = ctx.upload(toTimeMajor(trOut, D, T25), [T25, D], 'f32', 'tr');
      const rec = ctx.record('up+dec');
      const u = up.forward(rec, ws, xq);
      const audio = dec.forward(rec, ws, xt);
      const pu = rec.readback(u);
      const pa = rec.readback(audio);
      await rec.submit();
      const m1 = assertClose('upsampled', await pu, toTimeMajor(await f32('ns_upsampled'), D, T25), { ...INTER, shape: [T25, D] }).message;
      const m2 = assertClose('decoded audio (SEANet only)', await pa, await f32('ns_decoded_audio'), { atol: 5e-4 }).message;
      console.log(`[${set}] ${m1}\n[${set}] ${m2}`);
      for (const t of [xq, xt]) t.destroy();
      up.destroy();
      dec.destroy();
      ws.destroy();
    });
  });
}
