// The STT model pieces on the tiny STT fixture (../shared/fixtures/stt): extra heads loaded by their
// official keys and sized in the memory estimate, stepWithExtraHeads only where there are heads,
// and the transcription procedure's refusals.
import { describe, expect, it } from 'vitest';
import { LMModel } from '../../src/models/lm.ts';
import { LMGen } from '../../src/models/lm_gen.ts';
import { parseLmConfig } from '../../src/models/lm_config.ts';
import { lmMatrices, lmWeightBytes } from '../../src/models/lm_memory.ts';
import { MimiModel } from '../../src/models/mimi.ts';
import { SttError, transcribe } from '../../src/models/stt.ts';
import { SafetensorsFile, entryToF32 } from '../../src/weights/safetensors.ts';
import { VarBuilder, WeightError } from '../../src/weights/var_builder.ts';
import { fixtureJson, nodeFixtures } from '../harness/fixtures.ts';
import { nodeContext } from '../harness/node_gpu.ts';
import { loadMimiFixture } from '../golden/mimi_helpers.ts';

const read = nodeFixtures();

async function loadStt() {
  const ctx = await nodeContext();
  const cfg = parseLmConfig(await fixtureJson(read, 'stt/config.json'), 'stt/config.json');
  const st = SafetensorsFile.parse(await read('stt/stt_tiny.safetensors'), 'stt/stt_tiny.safetensors');
  return { ctx, cfg, st };
}

describe('STT model (extra heads)', () => {
  it('loads extra_heads.{h}.weight; the memory estimate counts them (144,512 parameters, as the official model)', async () => {
    const { ctx, cfg, st } = await loadStt();
    const lm = await LMModel.load(ctx, VarBuilder.fromSafetensors(ctx, [st]), cfg);
    try {
      expect(lm.numExtraHeads).toBe(2);
      expect(lm.extraHeadLogits?.shape).toEqual([2, 6]);
      const { matrices, vectors } = lmMatrices(cfg);
      expect(matrices.reduce((a, m) => a + m.rows * m.cols, 0) + vectors).toBe(144_512);
      expect(matrices.filter((m) => m.name.startsWith('extra_heads.')).map((m) => [m.name, m.rows, m.cols])).toEqual([['extra_heads.0', 6, 64], ['extra_heads.1', 6, 64]]);
      expect(lm.weightBytes).toBe(lmWeightBytes(cfg, { kind: 'f32' }));
    } finally {
      lm.destroy();
    }
  });

  it('a missing or misshapen extra head is named; a config without extra heads leaves them unused', async () => {
    const { ctx, cfg, st } = await loadStt();
    const missing = new Map(st.tensors);
    missing.delete('extra_heads.1.weight');
    await expect(LMModel.load(ctx, VarBuilder.fromEntries(ctx, missing, 'pruned'), cfg)).rejects.toThrow(/missing key 'extra_heads\.1\.weight'/);
    await expect(LMModel.load(ctx, VarBuilder.fromSafetensors(ctx, [st]), { ...cfg, extraHeadsDim: 5 })).rejects.toThrow(/extra_heads\.0\.weight/);
    await expect(LMModel.load(ctx, VarBuilder.fromSafetensors(ctx, [st]), { ...cfg, extraHeadsNumHeads: 0 })).rejects.toThrow(WeightError);
  });

  it('stepWithExtraHeads: probabilities sum to 1 and equal softmax(W_h · transformer_out); refused without extra heads', async () => {
    const { ctx, cfg, st } = await loadStt();
    const lm = await LMModel.load(ctx, VarBuilder.fromSafetensors(ctx, [st]), cfg);
    const outs: Float32Array[] = [];
    const gen = new LMGen(lm, { temp: 0, tempText: 0, trace: (t) => outs.push(t.transformerOut) });
    try {
      const W = [0, 1].map((h) => entryToF32(st.tensors.get(`extra_heads.${h}.weight`)!)); // [6, 64]
      for (let t = 0; t < 3; t++) {
        const r = await gen.stepWithExtraHeads(Int32Array.from({ length: 8 }, (_, k) => (7 * t + 5 * k) % 64));
        expect(r).not.toBeNull();
        const x = outs[t]!;
        r!.extraHeads.forEach((p, h) => {
          const z = Array.from({ length: 6 }, (_, i) => x.reduce((a, v, j) => a + v * W[h]![i * 64 + j]!, 0));
          const m = Math.max(...z);
          const e = z.map((v) => Math.exp(v - m));
          const s = e.reduce((a, b) => a + b, 0);
          e.forEach((v, i) => expect(Math.abs(p[i]! - v / s)).toBeLessThan(1e-5));
          expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
        });
      }
    } finally {
      gen.destroy();
      lm.destroy();
    }
    const cfgM = parseLmConfig(await fixtureJson(read, 'ref/moshi_tiny_config.json'), 'ref');
    const moshi = await LMModel.load(ctx, VarBuilder.fromSafetensors(ctx, [SafetensorsFile.parse(await read('ref/moshi_tiny.safetensors'), 'ref')]), cfgM);
    const g = new LMGen(moshi, { temp: 0, tempText: 0 });
    await expect(g.stepWithExtraHeads(new Int32Array(8))).rejects.toThrow(/no extra heads \(extra_heads_num_heads = 0\)/);
    g.destroy();
    moshi.destroy();
  });

  it('transcribe refuses a model with a depformer and a Mimi with fewer codebooks than n_q', async () => {
    const { ctx, cfg, st } = await loadStt();
    const fix = await loadMimiFixture(read, 'ref');
    const pcm = new Float32Array(1920);
    const cfgM = parseLmConfig(await fixtureJson(read, 'ref/moshi_tiny_config.json'), 'ref');
    const moshi = await LMModel.load(ctx, VarBuilder.fromSafetensors(ctx, [SafetensorsFile.parse(await read('ref/moshi_tiny.safetensors'), 'ref')]), cfgM);
    const mimi8 = await MimiModel.load(ctx, fix.config, fix.vb(ctx));
    const g = new LMGen(moshi, { temp: 0, tempText: 0 });
    await expect(transcribe(mimi8, g, pcm)).rejects.toThrow(SttError);
    await expect(transcribe(mimi8, g, pcm)).rejects.toThrow(/dep_q = 8 .*not a speech-to-text model/);
    g.destroy();
    moshi.destroy();
    mimi8.destroy();
    const lm = await LMModel.load(ctx, VarBuilder.fromSafetensors(ctx, [st]), cfg);
    const mimi4 = await MimiModel.load(ctx, { ...fix.config, num_codebooks: 4 }, fix.vb(ctx));
    const gen = new LMGen(lm, { temp: 0, tempText: 0 });
    await expect(transcribe(mimi4, gen, pcm)).rejects.toThrow(/the Mimi emits 4 codebooks, the STT model reads n_q = 8: load the Mimi with num_codebooks = 8 \(its quantizer has 8\)/);
    gen.destroy();
    lm.destroy();
    mimi4.destroy();
  });
});
