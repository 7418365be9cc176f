import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LMModel } from '../../src/models/lm.ts';
import { LMGen } from '../../src/models/lm_gen.ts';
import { LmConfigError, MOSHI_7B_CONFIG, MOSHI_7B_LM_KWARGS, mainDimFeedforward, maxDelay, parseLmConfig, userStreams } from '../../src/models/lm_config.ts';
import { SafetensorsFile } from '../../src/weights/safetensors.ts';
import { VarBuilder, hostToEntry } from '../../src/weights/var_builder.ts';
import { fixtureI32, nodeFixtures } from '../harness/fixtures.ts';
import { nodeContext } from '../harness/node_gpu.ts';

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

  it('reads every complete official config (bare lm_kwargs, non-LM keys ignored)', () => {
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
    // Official defaults this engine does not implement are refused, not replaced by other values.
    bad({ num_layers: undefined }, /'num_layers' is missing/);
    bad({ positional_embedding: undefined }, /'positional_embedding' is missing: the official default 'sin' is not supported/);
    bad({ context: undefined }, /'context' is missing: the official default None \(an unbounded KV cache\)/);
    bad({ conditioners: { d: { type: 'tensor' } }, fuser: { sum: ['d'] } }, /'conditioners\.d\.type' = "tensor" is not supported/);
    bad({ conditioners: { d: { type: 'lut', lut: { n_bins: 3, dim: 4 } } }, fuser: { sum: ['e'] } }, /'fuser\.sum' names "e"/);
    bad({ fuser: { cross: ['d'] } }, /'fuser\.cross' is not supported/);
    expect(() => parseLmConfig('{nope', 'y.json')).toThrow(LmConfigError);
    expect(() => parseLmConfig('{nope', 'y.json')).toThrow(/y\.json: not valid JSON/);
    expect(() => parseLmConfig({ ...base, n_q: undefined, delays: undefined }, 'z')).toThrow(/'delays' has 1 entries, expected n_q \+ 1 = 9/); // official defaults n_q 8, delays [0]
  });

  it('refuses the two official stt_* files (fragments / invalid JSON upstream), naming file and cause', () => {
    // stt_2.6b_en.json: an override fragment (lm_gen_config, stt_config, delays, ...) without dim, n_q,
    // dep_q...: official LMModel(**it) fails too (33 delays for the default n_q 8).
    const frag = () => parseLmConfig(json(resolve(REF, 'stt_2.6b_en.json')), 'stt_2.6b_en.json');
    expect(frag).toThrow(LmConfigError);
    expect(frag).toThrow(/^stt_2\.6b_en\.json: 'delays' has 33 entries, expected n_q \+ 1 = 9 \(n_q is absent and defaults to 8: is this a partial\/override config\? /);
    expect(frag).toThrow(/it has checkpoint keys \(lm_gen_config, stt_config, model_type, mimi_name, tokenizer_name\) but lacks 'dim', 'num_heads', 'num_layers', 'n_q', 'dep_q', 'card', 'text_card', so defaults apply\)$/);
    // stt_1b_enfr.json: a comma is missing after the delays list upstream.
    const text = readFileSync(resolve(REF, 'stt_1b_enfr.json'), 'utf8');
    expect(() => JSON.parse(text)).toThrow(SyntaxError);
    expect(() => parseLmConfig(text, 'stt_1b_enfr.json')).toThrow(LmConfigError);
    expect(() => parseLmConfig(text, 'stt_1b_enfr.json')).toThrow(/^stt_1b_enfr\.json: not valid JSON \(/);
  });

  it('reads an official STT config.json (stt fixture): dep_q 0, extra heads, stt_config, checkpoint names', () => {
    const c = parseLmConfig(json(resolve(FIX, 'stt/config.json')), 'stt/config.json');
    expect(c).toMatchObject({ modelType: 'stt', dim: 64, nQ: 8, depQ: 0, textCard: 100, context: 24, extraHeadsNumHeads: 2, extraHeadsDim: 6 });
    expect(c.stt).toEqual({ audioDelaySeconds: 0.5, audioSilencePrefixSeconds: 0 });
    expect(c.lmGen).toEqual({ temp: 0, tempText: 0, topK: 250, topKText: 50 });
    expect([c.mimiName, c.tokenizerName]).toEqual([null, null]);
    // Moshi: no extra heads (official default 0 × 6), no stt_config.
    expect([MOSHI_7B_CONFIG.extraHeadsNumHeads, MOSHI_7B_CONFIG.extraHeadsDim, MOSHI_7B_CONFIG.stt]).toEqual([0, 6, null]);
    const base = json(resolve(FIX, 'stt/config.json')) as Record<string, unknown>;
    const named = parseLmConfig({ ...base, mimi_name: 'mimi-pytorch-e351c8d8@125.safetensors', tokenizer_name: 'tokenizer_en_fr_audio_8000.model', stt_config: { audio_delay_seconds: 2.5 } }, 'c.json');
    expect([named.mimiName, named.tokenizerName]).toEqual(['mimi-pytorch-e351c8d8@125.safetensors', 'tokenizer_en_fr_audio_8000.model']);
    expect(named.stt).toEqual({ audioDelaySeconds: 2.5, audioSilencePrefixSeconds: 0 }); // run_inference.py: .get(key, 0.0)
    const bad = (patch: Record<string, unknown>, re: RegExp) => {
      expect(() => parseLmConfig({ ...base, ...patch }, 's.json')).toThrow(LmConfigError);
      expect(() => parseLmConfig({ ...base, ...patch }, 's.json')).toThrow(re);
    };
    bad({ stt_config: { audio_delay_seconds: 0.5, audio_delay: 1 } }, /^s\.json: 'stt_config\.audio_delay' is not an stt_config key \(known: audio_delay_seconds, audio_silence_prefix_seconds\)$/);
    bad({ stt_config: { audio_delay_seconds: -1 } }, /'stt_config\.audio_delay_seconds' must be a number of seconds >= 0, got -1/);
    bad({ stt_config: { audio_silence_prefix_seconds: '1' } }, /'stt_config\.audio_silence_prefix_seconds' must be a number of seconds >= 0, got "1"/);
    bad({ stt_config: [0.5] }, /'stt_config' must be an object/);
    bad({ extra_heads_num_heads: -1 }, /'extra_heads_num_heads' must be an integer >= 0, got -1/);
    bad({ extra_heads_dim: 0 }, /'extra_heads_dim' must be an integer >= 1, got 0/);
    bad({ mimi_name: 3 }, /'mimi_name' must be a string, got 3/);
  });

  it('a partial config is named as such in any error; a complete one is not', () => {
    const p = (o: Record<string, unknown>) => () => parseLmConfig(o, 'p.json');
    expect(p({ model_type: 'stt', norm: 'batch_norm' })).toThrow(/'norm' must be one of .* \(is this a partial\/override config\? it has checkpoint keys \(model_type\) but lacks 'dim'/);
    expect(p({ lm_gen_config: { temp: 0 }, delays: [0, 0] })).toThrow(/'delays' has 2 entries, expected n_q \+ 1 = 9 \(n_q is absent and defaults to 8: is this a partial\/override config\?/);
    // No checkpoint keys: the n_q default is still named, without guessing at a fragment.
    const noMeta = () => parseLmConfig({ ...MOSHI_7B_LM_KWARGS, n_q: undefined, delays: [0, 0] }, 'q.json');
    expect(noMeta).toThrow(/'delays' has 2 entries, expected n_q \+ 1 = 9 \(n_q is absent and defaults to 8\)$/);
    expect(() => parseLmConfig({ ...MOSHI_7B_LM_KWARGS, model_type: 'moshi', norm: 'x' }, 'c.json')).toThrow(/'norm' must be one of 'layer_norm', 'rms_norm', 'rms_norm_f32', got "x"$/);
  });

  it('lm_gen_config: the four sampling values; other LMGen arguments only at their default; unknown keys refused', () => {
    const base = { ...MOSHI_7B_LM_KWARGS } as Record<string, unknown>;
    const gen = (g: unknown) => parseLmConfig({ ...base, lm_gen_config: g }, 'g.json');
    expect(gen({ temp: 0.6, temp_text: 0.5, top_k: 100, top_k_text: 0 }).lmGen).toEqual({ temp: 0.6, tempText: 0.5, topK: 100, topKText: 0 });
    expect(gen({}).lmGen).toEqual({});
    expect(parseLmConfig(base, 'g.json').lmGen).toEqual({});
    // Official LMGen arguments at their defaults change nothing.
    expect(gen({ temp: 0, use_sampling: true, cfg_coef: 1.0, check: false, support_out_of_sync: false, cfg_is_no_text: false, cfg_is_masked_until: null }).lmGen).toEqual({ temp: 0 });
    const bad = (g: unknown, re: RegExp) => {
      expect(() => gen(g)).toThrow(LmConfigError);
      expect(() => gen(g)).toThrow(re);
    };
    bad({ temp: 0.7, top_p: 0.9 }, /^g\.json: 'lm_gen_config\.top_p' is not an LMGen argument \(official LMGen\(lm, \*\*lm_gen_config\) raises TypeError\); supported: temp, temp_text, top_k, top_k_text$/);
    bad({ tmp: 0.7 }, /'lm_gen_config\.tmp' is not an LMGen argument/);
    bad({ lm_model: null }, /'lm_gen_config\.lm_model' is LMGen's model argument/);
    bad({ temp: '0.7' }, /'lm_gen_config\.temp' must be a number >= 0, got "0\.7"/);
    bad({ temp_text: -1 }, /'lm_gen_config\.temp_text' must be a number >= 0, got -1/);
    bad({ top_k: 2.5 }, /'lm_gen_config\.top_k' must be an integer >= 0, got 2\.5/);
    bad({ top_k_text: null }, /'lm_gen_config\.top_k_text' must be an integer >= 0, got null/);
    bad({ cfg_coef: 3 }, /'lm_gen_config\.cfg_coef' = 3 is not supported: this engine does not implement LMGen's 'cfg_coef' \(only 1\)/);
    bad({ use_sampling: false }, /'lm_gen_config\.use_sampling' = false is not supported.*\(only true\)/);
    bad({ check: true }, /'lm_gen_config\.check' = true is not supported/);
    bad({ support_out_of_sync: true }, /'lm_gen_config\.support_out_of_sync' = true is not supported/);
    bad({ cfg_is_masked_until: [3] }, /'lm_gen_config\.cfg_is_masked_until' = \[3\] is not supported/);
    bad(null, /'lm_gen_config' must be an object of LMGen arguments, got null/);
    bad([0.7], /'lm_gen_config' must be an object of LMGen arguments/);
  });

  it('dep_q = 0 (no depformer, as official LMModel): depformer keys may be absent and are not checked', () => {
    const core = Object.fromEntries(Object.entries(MOSHI_7B_LM_KWARGS).filter(([k]) => !k.startsWith('depformer_')));
    const rest = Object.fromEntries(Object.entries(MOSHI_7B_LM_KWARGS).filter(([k]) => !['depformer_dim', 'depformer_num_heads', 'depformer_pos_emb'].includes(k)));
    const c = parseLmConfig({ ...core, dep_q: 0 }, 'stt.json');
    expect(c.depQ).toBe(0);
    expect(userStreams(c)).toBe(16);
    // Same shape as with a depformer; the values are LMModel's defaults (dim 256, multi_linear false size depformer_in).
    expect(c.depformer).toEqual({ dim: 256, dimFeedforward: Math.floor(4.125 * 256), numHeads: 8, numLayers: 32, layerScale: null, multiLinear: false, weightsPerStep: false, weightsPerStepSchedule: null, maxPeriod: 10000, gating: 'silu', posEmb: 'none', norm: null });
    expect(Object.keys(c.depformer).sort()).toEqual(Object.keys(MOSHI_7B_CONFIG.depformer).sort());
    // Values only a depformer would need are not refused without one ...
    const d = parseLmConfig({ ...rest, dep_q: 0, depformer_dim: 60, depformer_num_heads: 7, depformer_pos_emb: 'sin', depformer_dim_feedforward: [1, 2] }, 'stt.json');
    expect(d.depformer).toMatchObject({ dim: 60, numHeads: 7, posEmb: 'none', dimFeedforward: Math.floor(4.125 * 60) });
    // ... but still are with one.
    expect(() => parseLmConfig({ ...core, dep_q: 1 }, 'x.json')).toThrow(/'depformer_pos_emb' = 'sin' \(the official default when absent\) is not supported/);
    expect(() => parseLmConfig({ ...rest, depformer_num_heads: 7 }, 'x.json')).toThrow(/'depformer_num_heads' \(7\) must divide depformer_dim \(256\)/);
    expect(() => parseLmConfig({ ...MOSHI_7B_LM_KWARGS, depformer_dim_feedforward: [1, 2] }, 'x.json')).toThrow(/as a per-layer list is not supported/);
    expect(() => parseLmConfig({ ...core, dep_q: -1 }, 'x.json')).toThrow(/'dep_q' must be an integer >= 0, got -1/);
  });

  it('a dep_q = 0 model loads and steps: text only, same text logits as the model with a depformer on the same inputs', async () => {
    const read = nodeFixtures();
    const ctx = await nodeContext();
    const ref = json(resolve(FIX, 'ref/moshi_tiny_config.json')).lm_kwargs as Record<string, unknown>;
    const st = SafetensorsFile.parse(await read('ref/moshi_tiny.safetensors'), 'ref/moshi_tiny.safetensors');
    const cfg8 = parseLmConfig(ref, 'tiny');
    const lm8 = await LMModel.load(ctx, VarBuilder.fromSafetensors(ctx, [st]), cfg8);
    const T = 6;
    const user8 = await fixtureI32(read, 'ref/lm/user_input_codes.i32.bin');
    const inputs8: Int32Array[] = [];
    const logits8: Float32Array[] = [];
    const gen8 = new LMGen(lm8, { temp: 0, tempText: 0, trace: (t) => (inputs8.push(t.mainInput), logits8.push(t.textLogits)) });
    for (let t = 0; t < T; t++) await gen8.step(user8.subarray(t * 8, (t + 1) * 8));
    gen8.destroy();
    lm8.destroy();

    // dep_q = 0: no depformer_* keys in the config; the weights lose the depformer, its embeddings and
    // linears, and keep one depformer_in [256, dim] (official LMModel builds it even without a depformer).
    const cfg0 = parseLmConfig(Object.fromEntries([...Object.entries(ref).filter(([k]) => !k.startsWith('depformer_')), ['dep_q', 0]]), 'tiny dep_q 0');
    const entries = new Map([...st.tensors].filter(([k]) => !/^(depformer|depformer_emb|depformer_text_emb|depformer_in|linears)\./.test(k) && k !== 'depformer_text_emb.weight'));
    expect([...entries.keys()].some((k) => k.startsWith('depformer') || k.startsWith('linears'))).toBe(false);
    entries.set('depformer_in.0.weight', hostToEntry('depformer_in.0.weight', new Float32Array(256 * 64), [256, 64], 'F32'));
    const lm0 = await LMModel.load(ctx, VarBuilder.fromEntries(ctx, entries, 'tiny dep_q 0'), cfg0);
    expect(lm0.depformer).toBeNull();
    const inputs0: Int32Array[] = [];
    const logits0: Float32Array[] = [];
    const gen0 = new LMGen(lm0, { temp: 0, tempText: 0, trace: (t) => (inputs0.push(t.mainInput), logits0.push(t.textLogits)) });
    expect(gen0.userStreams).toBe(16);
    // All 16 audio streams are the user's now: feed, delay-compensated, what the dep_q = 8 model read.
    // (A read of the initial token, card, is at a step t <= delay, where the user's code is not read.)
    const delays = cfg0.delays;
    const at = (t: number, k: number) => (t < T && inputs8[t][k] !== cfg0.card ? inputs8[t][k] : 0);
    let produced = 0;
    for (let s = 0; s < T; s++) {
      const codes = Int32Array.from({ length: 16 }, (_, j) => at(s + delays[j + 1], j + 1));
      const r = await gen0.step(codes);
      if (r) expect(r.audio.length).toBe(0);
      if (r) produced++;
    }
    expect(produced).toBe(T - maxDelay(cfg0));
    for (let t = 0; t < T; t++) {
      expect(Array.from(inputs0[t])).toEqual(Array.from(inputs8[t]));
      const diff = Math.max(...logits0[t].map((v, i) => Math.abs(v - logits8[t][i])));
      expect(diff).toBeLessThan(1e-4);
    }
    gen0.destroy();
    lm0.destroy();
  }, 120_000);
});
