import { describe, expect, it } from 'vitest';
import { run, STT_1B_LM_KWARGS, sttLmKeys } from '../../bench/stt.ts';
import { MOSHI_7B_CONFIG, parseLmConfig } from '../../src/models/lm_config.ts';
import { lmWeightBytes } from '../../src/models/lm_memory.ts';

// `npm run bench -- stt` (bench/stt.ts) at tiny sizes: the fixture's tiny Mimi layout and a small
// STT LM, random weights. The real-size run (STT-1B + released Mimi, 32 codebooks) is the same
// code with the default flags.
describe('bench stt', () => {
  it('the STT-1B key layout: every key LMModel reads, sizes of kyutai/stt-1b-en_fr (1.0 B parameters, 2.0 GB in bf16)', () => {
    const cfg = parseLmConfig(STT_1B_LM_KWARGS, 'STT_1B');
    expect([cfg.dim, cfg.numLayers, cfg.numHeads, cfg.context, cfg.textCard, cfg.nQ, cfg.depQ, cfg.extraHeadsNumHeads, cfg.extraHeadsDim]).toEqual([2048, 16, 16, 750, 8000, 32, 0, 4, 6]);
    const keys = sttLmKeys(cfg);
    const params = keys.reduce((a, k) => a + k.shape.reduce((p, d) => p * d, 1), 0);
    // The memory estimate of src/models/lm_memory.ts counts the same matrices (bf16) and norm vectors (f32: out_norm + 2 per layer).
    const vectors = (1 + 2 * 16) * 2048;
    expect(2 * (params - vectors) + 4 * vectors).toBe(lmWeightBytes(cfg, { kind: 'bf16' }));
    expect(params).toBeGreaterThan(0.9e9);
    expect(params).toBeLessThan(1.1e9);
    expect(keys.filter((k) => k.name.startsWith('extra_heads.')).map((k) => k.shape)).toEqual([[6, 2048], [6, 2048], [6, 2048], [6, 2048]]);
    expect(() => sttLmKeys(MOSHI_7B_CONFIG)).toThrow(/expected an STT config \(dep_q 0/);
  });

  it('tiny sizes: medians per 80 ms frame, real-time factors, weight bytes per step, the adapter named (NOT A GPU on a software one)', async () => {
    const D = 64;
    const L = 2;
    const E = 2;
    const Q = 8;
    const T = 100;
    const r = await run(['--mimi', 'tiny', '--dim', String(D), '--layers', String(L), '--heads', '4', '--context', '24', '--text-card', String(T), '--n-q', String(Q), '--extra-heads', String(E), '--frames', '2', '--warmup', '1']);
    for (const s of [r.lm, r.mimiEncode]) {
      expect(s.timesMs).toHaveLength(2);
      expect(s.medianMs).toBeGreaterThan(0);
      expect(Number.isFinite(s.medianMs)).toBe(true);
      expect(s.realTimeFactor).toBeCloseTo(s.medianMs / 80, 10);
      expect(s.gbps).toBeCloseTo(s.weightBytesPerStep / (s.medianMs * 1e6), 10);
    }
    expect(r.total.medianMs).toBeCloseTo(r.lm.medianMs + r.mimiEncode.medianMs, 10);
    // LM step bytes, by hand: per layer in_proj 3D² + out_proj D² + gating 2H·D + D·H (bf16) and two
    // f32 norms; text_linear T·D and E heads 6·D (bf16); out_norm (f32); one bf16 embedding row per stream (Q audio + text).
    const H = r.lmConfig.ffnHidden;
    expect(H).toBe(Math.floor((2 * Math.floor(4.125 * D)) / 3));
    const expected = L * (2 * (4 * D * D + 3 * H * D) + 4 * 2 * D) + 2 * T * D + 2 * E * 6 * D + 4 * D + (Q + 1) * 2 * D;
    expect(r.lm.weightBytesPerStep).toBe(expected);
    expect(r.mimiEncode.weightBytesPerStep).toBeGreaterThan(0);
    expect(r.mimiCodebooks).toBe(Q);
    expect(r.adapter.vendor.length).toBeGreaterThan(0);
    if (r.software) expect(r.adapterLabel).toMatch(/^NOT A GPU: .* software \(CPU\) adapter/);
    else expect(r.adapterLabel).toMatch(/^GPU: /);
    expect(/swiftshader|llvmpipe|lavapipe/i.test(`${r.adapter.vendor} ${r.adapter.architecture} ${r.adapter.description}`) && !r.software).toBe(false);
  }, 120_000);
});
