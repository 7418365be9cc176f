import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext, Tensor } from '../../src/gpu/index.ts';
import { MimiInputError, MimiModel, type MimiTap } from '../../src/models/mimi.ts';
import { mimiDerived, parseMimiConfig } from '../../src/models/mimi_config.ts';
import { VarBuilder } from '../../src/weights/var_builder.ts';
import { Workspace } from '../../src/modules/conv.ts';
import { ConvDownsample1d, ConvTrUpsample1d } from '../../src/modules/resample.ts';
import { SEANetDecoder, SEANetEncoder } from '../../src/modules/seanet.ts';
import { SplitResidualVectorQuantizer } from '../../src/quantization/vq.ts';
import { assertClose, assertEqualInts } from '../../src/selftest/check.ts';
import { fixtureF32, fixtureI32, nodeFixtures } from '../harness/fixtures.ts';
import { NODE_ADAPTER, NODE_ADAPTER_MISSING, nodeContext } from '../harness/node_gpu.ts';
import { type MimiFixture, loadMimiFixture, toTimeMajor } from './mimi_helpers.ts';

const read = nodeFixtures();
/** Intermediates: within 1e-4 of their scale (max |expected|). */
const INTER = { scaleTol: 1e-4 };

for (const set of ['ref', 'ref2b']) {
  describe.skipIf(NODE_ADAPTER_MISSING)(`Mimi components vs ${set} goldens (node ${NODE_ADAPTER})`, () => {
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

const STAGE_FIXTURES: Record<string, string> = {
  encoder_seanet_out: 'ns_encoder_seanet_out',
  encoder_transformer_out: 'ns_encoder_transformer_out',
  latent_prequant: 'ns_latent_prequant',
  rvq_first_input_proj: 'ns_rvq_first_input_proj',
  rvq_rest_input_proj: 'ns_rvq_rest_input_proj',
  latent_quantized: 'ns_latent_quantized',
  upsampled: 'ns_upsampled',
  decoder_transformer_out: 'ns_decoder_transformer_out',
};

for (const set of ['ref', 'ref2b']) {
  describe.skipIf(NODE_ADAPTER_MISSING)(`MimiModel vs ${set} goldens (node ${NODE_ADAPTER})`, () => {
    let ctx: GpuContext;
    let fx: MimiFixture;
    let model: MimiModel;
    const f32 = (name: string) => fixtureF32(read, `${set}/mimi/${name}.f32.bin`);
    const i32 = (name: string) => fixtureI32(read, `${set}/mimi/${name}.i32.bin`);
    beforeAll(async () => {
      ctx = await nodeContext();
      fx = await loadMimiFixture(read, set);
      // Chunks of 16 frames: the whole-clip calls cover the multi-chunk path too.
      model = await MimiModel.load(ctx, fx.config, fx.vb(ctx), { maxChunkFrames: 16 });
    }, 300_000);
    afterAll(() => model?.destroy());

    it('non-streaming encodeAll: codes equal ns_codes, intermediates within 1e-4 of scale', async () => {
      const pcm = await f32('input_pcm_f32');
      const F = pcm.length / model.frameSize;
      const D = fx.config.seanet.dimension;
      const got = new Map<string, { chunk: number; p: Promise<unknown>; shape: readonly number[] }[]>();
      const tap: MimiTap = (rec, name, t, chunk) => {
        const list = got.get(name) ?? [];
        list.push({ chunk, p: rec.readback(t), shape: t.shape });
        got.set(name, list);
      };
      const codes = await model.encodeAll(pcm, tap);
      assertEqualInts(`[${set}] ns codes`, codes, await i32('ns_codes'), [model.numCodebooks, F]);
      for (const name of ['encoder_seanet_out', 'encoder_transformer_out', 'latent_prequant', 'rvq_first_input_proj', 'rvq_rest_input_proj'] as const) {
        const parts = got.get(name);
        expect(parts, name).toBeDefined();
        const vals = await Promise.all(parts!.map((x) => x.p as Promise<Float32Array>));
        const cols = parts![0].shape[1];
        const all = new Float32Array(vals.reduce((n, v) => n + v.length, 0));
        let o = 0;
        for (const v of vals) {
          all.set(v, o);
          o += v.length;
        }
        const rows = all.length / cols;
        const r = assertClose(`[${set}] ${name}`, all, toTimeMajor(await f32(STAGE_FIXTURES[name]), cols, rows), { ...INTER, shape: [rows, cols] });
        console.log(r.message);
      }
      expect(D).toBeGreaterThan(0);
    }, 600_000);

    it('non-streaming decodeAll: audio within 5e-4 of ns_decoded_audio, intermediates within 1e-4 of scale', async () => {
      const codes = await i32('ns_codes');
      const F = codes.length / model.numCodebooks;
      const got = new Map<string, Promise<unknown>[]>();
      let cols = 0;
      const tap: MimiTap = (rec, name, t) => {
        cols = t.shape[1];
        got.set(name, [...(got.get(name) ?? []), rec.readback(t)]);
      };
      const audio = await model.decodeAll(codes, F, tap);
      console.log(assertClose(`[${set}] ns decoded audio`, audio, await f32('ns_decoded_audio'), { atol: 5e-4 }).message);
      for (const name of ['latent_quantized', 'upsampled', 'decoder_transformer_out']) {
        const vals = (await Promise.all(got.get(name)!)) as Float32Array[];
        const all = new Float32Array(vals.reduce((n, v) => n + v.length, 0));
        let o = 0;
        for (const v of vals) {
          all.set(v, o);
          o += v.length;
        }
        const rows = all.length / cols;
        console.log(assertClose(`[${set}] ${name}`, all, toTimeMajor(await f32(STAGE_FIXTURES[name]), cols, rows), { ...INTER, shape: [rows, cols] }).message);
      }
    }, 600_000);

    it('streaming: 1920-sample encode calls give st_codes; 1-frame decode calls give st_decoded_audio; reset restarts', async () => {
      const pcm = await f32('input_pcm_f32');
      const F = pcm.length / model.frameSize;
      const K = model.numCodebooks;
      const want = await i32('st_codes');
      model.reset();
      const codes = new Int32Array(K * F);
      const firstFrames: Int32Array[] = [];
      for (let t = 0; t < F; t++) {
        const c = await model.encode(pcm.subarray(t * 1920, (t + 1) * 1920));
        expect(c.length).toBe(K);
        for (let k = 0; k < K; k++) codes[k * F + t] = c[k];
        if (t < 2) firstFrames.push(c);
      }
      assertEqualInts(`[${set}] st codes`, codes, want, [K, F]);
      const stAudio = await f32('st_decoded_audio');
      const audio = new Float32Array(F * 1920);
      for (let t = 0; t < F; t++) {
        const frame = Int32Array.from({ length: K }, (_, k) => want[k * F + t]);
        audio.set(await model.decode(frame, 1), t * 1920);
      }
      console.log(assertClose(`[${set}] st decoded audio`, audio, stAudio, { atol: 5e-4 }).message);
      // After reset the stream starts over: a 2-frame call equals the first two 1-frame calls.
      model.reset();
      const two = await model.encode(pcm.subarray(0, 3840));
      for (let k = 0; k < K; k++) {
        expect([two[k * 2], two[k * 2 + 1]]).toEqual([firstFrames[0][k], firstFrames[1][k]]);
      }
      model.reset();
    }, 900_000);
  });
}

describe.skipIf(NODE_ADAPTER_MISSING)(`MimiModel errors (node ${NODE_ADAPTER})`, () => {
  let ctx: GpuContext;
  let fx: MimiFixture;
  beforeAll(async () => {
    ctx = await nodeContext();
    fx = await loadMimiFixture(read, 'ref');
  });

  it('rejects audio that is not a positive multiple of 1920 samples, and bad codes', async () => {
    const model = await MimiModel.load(ctx, fx.config, fx.vb(ctx));
    try {
      await expect(model.encode(new Float32Array(960))).rejects.toThrow(/Invalid input x of length 960\. The length must be a positive multiple of the frame size 1920/);
      await expect(model.encode(new Float32Array(0))).rejects.toThrow(MimiInputError);
      await expect(model.decode(new Int32Array(7), 1)).rejects.toThrow(/expected codebooks × frames = 8 × 1 = 8/);
      const bad = new Int32Array(8);
      bad[3] = 64;
      await expect(model.decode(bad, 1)).rejects.toThrow(/code 64 at \[codebook 3, frame 0\] is outside \[0, 64\)/);
    } finally {
      model.destroy();
    }
  });

  it('names a missing or misshapen checkpoint key, and a bad config field', async () => {
    const entries = new Map(fx.file.tensors);
    entries.delete('quantizer.rvq_rest.vq.layers.3._codebook.embedding_sum');
    const before = ctx.liveBytes;
    await expect(MimiModel.load(ctx, fx.config, VarBuilder.fromEntries(ctx, entries, 'edited'))).rejects.toThrow(/missing key 'quantizer\.rvq_rest\.vq\.layers\.3\._codebook\.embedding_sum'/);
    expect(ctx.liveBytes).toBe(before); // the failed load gave back every GPU buffer it had made
    const misshapen = new Map(fx.file.tensors);
    const e = misshapen.get('encoder.model.3.conv.conv.weight')!;
    misshapen.set(e.name, { ...e, shape: [16, 8, 4, 2] });
    await expect(MimiModel.load(ctx, fx.config, VarBuilder.fromEntries(ctx, misshapen, 'edited'))).rejects.toThrow(/key 'encoder\.model\.3\.conv\.conv\.weight' in edited has shape \[16, 8, 4, 2\], expected \[16, 8, 8\]/);
    const extra = new Map(fx.file.tensors);
    extra.set('encoder.model.99.conv.conv.bias', { ...e, name: 'encoder.model.99.conv.conv.bias' });
    await expect(MimiModel.load(ctx, fx.config, VarBuilder.fromEntries(ctx, extra, 'edited'))).rejects.toThrow(/not used by the model.*encoder\.model\.99\.conv\.conv\.bias/);
    const json = JSON.parse(new TextDecoder().decode(await read('ref/mimi_tiny_config.json')));
    json.mimi_config.seanet.ratios = [8, 'six', 5, 4];
    expect(() => parseMimiConfig(json, 'bad.json')).toThrow(/bad\.json: field 'mimi_config\.seanet\.ratios\[1\]' must be a positive integer/);
  });
});
