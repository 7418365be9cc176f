import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LmConfigError, MOSHI_7B_CONFIG, MOSHI_7B_LM_KWARGS, mainDimFeedforward, maxDelay, parseLmConfig, userStreams } from '../../src/models/lm_config.ts';

const FIX = resolve(import.meta.dirname, '../../../shared/fixtures');
const REF = resolve(import.meta.dirname, '../fixtures/official_configs'); // kyutai-labs/moshi@e6a55d2 configs/
const json = (p: string) => JSON.parse(readFileSync(p, 'utf8'));

describe('parseLmConfig', () => {
  it('reads the tiny fixture configs (file with top-level lm_kwargs)', () => {
    const a = parseLmConfig(readFileSync(resolve(FIX, 'ref/moshi_tiny_config.json'), 'utf8'), 'ref/moshi_tiny_config.json');
    expect(a).toMatchObject({ dim: 64, numHeads: 4, numLayers: 2, textCard: 100, card: 64, nQ: 16, depQ: 8, norm: 'rms_norm_f32', gating: 'silu' });
    expect(a.depformer).toMatchObject({ dim: 32, dimFeedforward: 132, numHeads: 4, numLayers: 2, multiLinear: true, weightsPerStep: true, posEmb: 'none', norm: null });
    expect(mainDimFeedforward(a)).toBe(264); // int(4.125 * 64); the gating takes 2/3 of it: 176
    expect(maxDelay(a)).toBe(1);
    expect(userStreams(a)).toBe(8);
    expect(a.conditioners).toEqual({});
    const b = parseLmConfig(json(resolve(FIX, 'ref2b/moshi_tiny_config.json')), 'ref2b');
    expect(b).toMatchObject({ dim: 80, nQ: 32, depQ: 16, card: 96, textCard: 120, maxPeriod: 100000 });
    expect(b.conditioners.description).toEqual({ type: 'lut', nBins: 31, dim: 16, possibleValues: ['very_bad', 'bad', 'neutral', 'good', 'very_good'] });
    expect(b.fuserSum).toEqual(['description']);
    expect(maxDelay(b)).toBe(2);
    expect(userStreams(b)).toBe(16);
  });

  it('reads every official config (bare lm_kwargs, non-LM keys ignored)', () => {
    for (const f of ['moshi_7b_202409.json', 'moshi_dev_2b.json', 'moshi_mlx_2b.json']) {
      const c = parseLmConfig(json(resolve(REF, f)), f);
      expect(c.delays.length).toBe(c.nQ + 1);
    }
    // An official config.json carries checkpoint keys beside the LM's (CheckpointInfo pops them).
    const withMeta = { ...MOSHI_7B_LM_KWARGS, model_type: 'stt', mimi_name: 'm.safetensors', lm_gen_config: { temp: 0, temp_text: 0, top_k: 250, top_k_text: 50 } };
    expect(parseLmConfig(withMeta, 'config.json').lmGen).toEqual({ temp: 0, tempText: 0, topK: 250, topKText: 50 });
  });

  it('7B preset equals the official _lm_kwargs and derived values', () => {
    const keys = json(resolve(FIX, 'ref/moshi7b_keys_full.json'));
    expect(MOSHI_7B_LM_KWARGS).toEqual(keys.lm_kwargs);
    expect(parseLmConfig(keys, 'moshi7b_keys_full.json')).toEqual(MOSHI_7B_CONFIG);
    expect(MOSHI_7B_CONFIG.depformer.dimFeedforward).toBe(4224);
    expect(Math.floor((2 * mainDimFeedforward(MOSHI_7B_CONFIG)) / 3)).toBe(keys.derived['main_ffn_hidden(ActivationGating)']);
  });

  it('names the source and field of bad configs', () => {
    const base = { ...MOSHI_7B_LM_KWARGS } as Record<string, unknown>;
    const bad = (patch: Record<string, unknown>, re: RegExp) => expect(() => parseLmConfig({ ...base, ...patch }, 'x.json')).toThrow(re);
    bad({ delays: [0, 1] }, /x\.json: 'delays' has 2 entries, expected n_q \+ 1 = 17/);
    bad({ dim: 'big' }, /'dim' must be an integer/);
    bad({ norm: 'batch_norm' }, /'norm' must be one of/);
    bad({ dep_q: 20 }, /'dep_q' \(20\) must not exceed n_q/);
    bad({ num_heads: 7 }, /'num_heads' \(7\) must divide dim/);
    bad({ demux_second_text_stream: true }, /'demux_second_text_stream' = true is not supported/);
    bad({ depformer_pos_emb: undefined }, /'depformer_pos_emb' = 'sin'/);
    bad({ frobnicate: 1 }, /'frobnicate' is not an LMModel argument/);
    bad({ conditioners: { d: { type: 'tensor' } }, fuser: { sum: ['d'] } }, /'conditioners\.d\.type' = "tensor" is not supported/);
    bad({ conditioners: { d: { type: 'lut', lut: { n_bins: 3, dim: 4 } } }, fuser: { sum: ['e'] } }, /'fuser\.sum' names "e"/);
    bad({ fuser: { cross: ['d'] } }, /'fuser\.cross' is not supported/);
    expect(() => parseLmConfig('{nope', 'y.json')).toThrow(LmConfigError);
    expect(() => parseLmConfig('{nope', 'y.json')).toThrow(/y\.json: not valid JSON/);
    expect(() => parseLmConfig({ ...base, n_q: undefined, delays: undefined }, 'z')).toThrow(/'delays' has 1 entries, expected n_q \+ 1 = 9/); // official defaults n_q 8, delays [0]
  });
});
