// The options Hibiki checkpoints use beyond Moshi's:
import { Tensor } from '../../src/gpu/index.ts';
// - depformer_weights_per_step_schedule (weight sharing across codebook steps): a model whose
//   checkpoint stores max(schedule) + 1 weight sets and a schedule equals, logit for logit, the
//   unscheduled model whose per-step weights repeat those sets in schedule order;
// - model_type 'hibiki': text_emb's EOS row becomes a copy of PAD (loaders.py get_moshi).
import { expect, it } from 'vitest';
import { LMModel } from '../../src/models/lm.ts';
import { type LMGenTrace, LMGen } from '../../src/models/lm_gen.ts';
import { parseLmConfig } from '../../src/models/lm_config.ts';
import { SafetensorsFile, type TensorEntry, entryToF32 } from '../../src/weights/safetensors.ts';
import { VarBuilder, hostToEntry } from '../../src/weights/var_builder.ts';
import { fixtureI32, fixtureJson, nodeFixtures } from '../harness/fixtures.ts';
import { nodeContext } from '../harness/node_gpu.ts';

const read = nodeFixtures();
const SCHEDULE = [0, 0, 1, 1, 2, 2, 3, 3];

/** Weight sets in the order `pick` (set indices of the original checkpoint) for every per-step tensor. */
function remap(src: ReadonlyMap<string, TensorEntry>, depQ: number, pick: number[]): Map<string, TensorEntry> {
  const out = new Map<string, TensorEntry>();
  const stacked = (name: string, e: TensorEntry) => {
    const rows = e.shape[0] / depQ;
    const v = entryToF32(e, name);
    const per = rows * e.shape[1];
    const w = new Float32Array(pick.length * per);
    pick.forEach((s, i) => w.set(v.subarray(s * per, (s + 1) * per), i * per));
    out.set(name, hostToEntry(name, w, [pick.length * rows, e.shape[1]], 'F32'));
  };
  for (const [name, e] of src) {
    const m = /^(depformer_in|depformer\.layers\.\d+\.gating)\.(\d+)\.(.*)$/.exec(name);
    if (/^depformer\.layers\.\d+\.self_attn\.(in_proj_weight|out_proj\.weight)$/.test(name)) stacked(name, e);
    else if (m) {
      // Separate modules per set (depformer_in.{i}, gating.{i}): new set i = original set pick[i].
      if (m[2] === '0') pick.forEach((s, i) => out.set(`${m[1]}.${i}.${m[3]}`, src.get(`${m[1]}.${s}.${m[3]}`)!));
    } else out.set(name, e);
  }
  return out;
}

it('a scheduled depformer equals the unscheduled one with the shared sets repeated', async () => {
  const ctx = await nodeContext();
  const json = await fixtureJson(read, 'ref/moshi_tiny_config.json') as { lm_kwargs: Record<string, unknown> };
  const st = SafetensorsFile.parse(await read('ref/moshi_tiny.safetensors'), 'ref/moshi_tiny.safetensors');
  const plainCfg = parseLmConfig(json, 'ref');
  expect(plainCfg.depQ).toBe(SCHEDULE.length);
  const schedCfg = parseLmConfig({ ...json.lm_kwargs, depformer_weights_per_step_schedule: SCHEDULE }, 'ref + schedule');
  expect(schedCfg.depformer.weightsPerStepSchedule).toEqual(SCHEDULE);
  const firstOf = [0, 2, 4, 6]; // the original set that becomes shared set j
  const scheduled = await LMModel.load(ctx, VarBuilder.fromEntries(ctx, remap(st.tensors, 8, firstOf), 'scheduled'), schedCfg);
  const expanded = await LMModel.load(ctx, VarBuilder.fromEntries(ctx, remap(st.tensors, 8, SCHEDULE.map((j) => firstOf[j])), 'expanded'), plainCfg);
  const original = await LMModel.load(ctx, VarBuilder.fromSafetensors(ctx, [st]), plainCfg);
  const user = await fixtureI32(read, 'ref/lm/user_input_codes.i32.bin');
  const trace = async (lm: LMModel) => {
    const tr: LMGenTrace[] = [];
    const gen = new LMGen(lm, { temp: 0, tempText: 0, trace: (t) => tr.push(t) });
    for (let t = 0; t < 6; t++) await gen.step(user.subarray(t * 8, (t + 1) * 8));
    gen.destroy();
    return tr;
  };
  const a = await trace(scheduled);
  const b = await trace(expanded);
  const c = await trace(original);
  for (let t = 0; t < a.length; t++) {
    expect(a[t].sampled, `step ${t}`).toEqual(b[t].sampled);
    const d = a[t].depformerLogits.reduce((m, v, i) => Math.max(m, Math.abs(v - b[t].depformerLogits[i])), 0);
    expect(d, `step ${t} depformer logits`).toBeLessThan(1e-5);
  }
  // The schedule changed the model: its depformer logits differ from the original's.
  const diff = a.some((x, t) => x.depformerLogits.some((v, i) => Math.abs(v - c[t].depformerLogits[i]) > 1e-3));
  expect(diff).toBe(true);
  for (const m of [scheduled, expanded, original]) m.destroy();
}, 300_000);

it('a schedule must list dep_q indices covering 0..max, with per-step weights', () => {
  const base = { dim: 64, num_heads: 4, num_layers: 2, context: 3000, positional_embedding: 'rope', n_q: 4, dep_q: 4, card: 16, text_card: 20, delays: [0, 0, 1, 1, 1], depformer_dim: 32, depformer_num_heads: 4, depformer_pos_emb: 'none', depformer_multi_linear: true, depformer_weights_per_step: true, gating: 'silu', norm: 'rms_norm_f32' };
  expect(parseLmConfig({ ...base, depformer_weights_per_step_schedule: [0, 1, 1, 2] }).depformer.weightsPerStepSchedule).toEqual([0, 1, 1, 2]);
  expect(() => parseLmConfig({ ...base, depformer_weights_per_step_schedule: [0, 1] }, 'x')).toThrow(/x: 'depformer_weights_per_step_schedule' has 2 entries, expected dep_q = 4/);
  expect(() => parseLmConfig({ ...base, depformer_weights_per_step_schedule: [0, 2, 2, 2] }, 'x')).toThrow(/skips weight index 1/);
  expect(() => parseLmConfig({ ...base, depformer_weights_per_step_schedule: [0, -1, 0, 0] }, 'x')).toThrow(/must be a list of weight indices >= 0/);
  expect(() => parseLmConfig({ ...base, depformer_weights_per_step: false, depformer_weights_per_step_schedule: [0, 0, 1, 1] }, 'x')).toThrow(/needs depformer_weights_per_step = true/);
});

it("model_type 'hibiki': text_emb row 2 (EOS) is a copy of row 3 (PAD), in f32 and packed bf16", async () => {
  const ctx = await nodeContext();
  const json = await fixtureJson(read, 'ref/moshi_tiny_config.json') as { lm_kwargs: Record<string, unknown> };
  const st = SafetensorsFile.parse(await read('ref/moshi_tiny.safetensors'), 'ref/moshi_tiny.safetensors');
  const D = 64;
  const rows = async (lm: LMModel) => {
    if (!(lm.textEmb instanceof Tensor)) throw new Error('expected a plain text_emb');
    const all = await ctx.readF32(lm.textEmb);
    return [all.slice(2 * D, 3 * D), all.slice(3 * D, 4 * D)];
  };
  const plain = await LMModel.load(ctx, VarBuilder.fromSafetensors(ctx, [st]), parseLmConfig(json, 'ref'));
  const [p2, p3] = await rows(plain);
  expect(p2).not.toEqual(p3);
  const hibikiCfg = parseLmConfig({ ...json.lm_kwargs, model_type: 'hibiki' }, 'ref as hibiki');
  expect(hibikiCfg.modelType).toBe('hibiki');
  const h = await LMModel.load(ctx, VarBuilder.fromSafetensors(ctx, [st]), hibikiCfg);
  const [h2, h3] = await rows(h);
  expect(h2).toEqual(p3);
  expect(h3).toEqual(p3);
  // bf16 storage: rows of 64 halves (128 bytes) moved inside packed words.
  const bf = new Map([...st.tensors].map(([k, e]) => [k, hostToEntry(k, entryToF32(e, k), e.shape, 'BF16')]));
  const hb = await LMModel.load(ctx, VarBuilder.fromEntries(ctx, bf, 'bf16'), hibikiCfg, { policy: 'native' });
  expect(hb.textEmb.dtype).toBe('bf16');
  const [b2, b3] = await rows(hb);
  expect(b2).toEqual(b3);
  expect(b3).not.toEqual(p2);
  for (const m of [plain, h, hb]) m.destroy();
  expect(() => parseLmConfig({ ...json.lm_kwargs, model_type: 7 }, 'x')).toThrow(/'model_type' must be a string/);
}, 300_000);
