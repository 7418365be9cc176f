/**
 * The LM golden check shared by the Node test (tests/golden/lm.test.ts) and the Chromium Worker
 * suite (tests/browser/suites/lm.ts): loads a fixture set's tiny LM, runs greedy LMGen over the
 * fixture's user codes and compares every step with the official outputs.
 */
import type { GpuContext } from '../../src/gpu/index.ts';
import { LMModel } from '../../src/models/lm.ts';
import { type LMGenTrace, LMGen } from '../../src/models/lm_gen.ts';
import { parseLmConfig } from '../../src/models/lm_config.ts';
import { SafetensorsFile } from '../../src/weights/safetensors.ts';
import { VarBuilder } from '../../src/weights/var_builder.ts';
import { assertClose, assertEqualInts } from '../../src/selftest/check.ts';
import { type FixtureReader, fixtureF32, fixtureI32, fixtureJson } from '../harness/fixtures.ts';
import { type GoldenRunOptions, withKernelPath } from './kernel_paths.ts';

/** The two fixture sets: 7B-shaped (ref) and 2B/Hibiki-shaped with a LUT condition (ref2b). */
export const LM_SETS = {
  ref: { condition: undefined as Record<string, string> | undefined },
  ref2b: { condition: { description: 'good' } as Record<string, string> | undefined },
} as const;
export type LmSet = keyof typeof LM_SETS;

/** Tolerance on logits (fixtures README: start at 1e-3 on WebGPU). */
export const LOGIT_ATOL = 1e-3;

export interface LmGoldenResult {
  steps: number;
  maxTextLogitErr: number;
  maxDepformerLogitErr: number;
  maxTransformerOutErr: number;
  /** Matvec and attention dispatches of the run, by kernel path (kernel_paths.ts). */
  kernels: string;
}

interface Manifest {
  arrays: { name: string; file: string; dtype: string; shape: number[] }[];
}

/**
 * Runs the whole golden comparison for `set`; throws at the first step that differs (tokens) or is
 * out of tolerance (logits), naming the step and the array. `maxSteps` limits the steps checked;
 * `opts.path` forces a kernel path for every layer (and fails if it did not run).
 */
export async function runLmGolden(ctx: GpuContext, read: FixtureReader, set: LmSet, maxSteps = Infinity, opts: GoldenRunOptions = {}): Promise<LmGoldenResult> {
  const { result, summary } = await withKernelPath(ctx, opts.path ?? 'default', () => runLmGoldenSteps(ctx, read, set, maxSteps));
  return { ...result, kernels: summary };
}

async function runLmGoldenSteps(ctx: GpuContext, read: FixtureReader, set: LmSet, maxSteps: number): Promise<Omit<LmGoldenResult, 'kernels'>> {
  const man = await fixtureJson<Manifest>(read, `${set}/lm/manifest.json`);
  const shape = (name: string) => {
    const a = man.arrays.find((x) => x.name === name);
    if (!a) throw new Error(`${set}/lm/manifest.json has no array '${name}'`);
    return a.shape;
  };
  const i32 = (name: string) => fixtureI32(read, `${set}/lm/${name}.i32.bin`);
  const f32 = (name: string) => fixtureF32(read, `${set}/lm/${name}.f32.bin`);
  const cfg = parseLmConfig(await fixtureJson(read, `${set}/moshi_tiny_config.json`), `${set}/moshi_tiny_config.json`);
  const st = SafetensorsFile.parse(await read(`${set}/moshi_tiny.safetensors`), `${set}/moshi_tiny.safetensors`);
  const lm = await LMModel.load(ctx, VarBuilder.fromSafetensors(ctx, [st]), cfg, { policy: 'native' });

  const [S, nUser] = shape('user_input_codes');
  const K = cfg.nQ + 1;
  const depQ = cfg.depQ;
  const card = cfg.card;
  const V = cfg.textCardOut;
  const user = await i32('user_input_codes');
  const mainIn = await i32('main_input_tokens');
  const outTok = await i32('lmgen_out_tokens');
  const textLogits = await f32('text_logits');
  const tOut = await f32('transformer_out');
  const depLogits = await f32('depformer_logits');
  const depIn = await i32('depformer_input_tokens');
  const sText = await i32('sampled_text_token');
  const sAudio = await i32('sampled_audio_tokens');
  const checks: [string, number[], number][] = [
    ['main_input_tokens', shape('main_input_tokens'), K],
    ['lmgen_out_tokens', shape('lmgen_out_tokens'), 1 + depQ],
    ['text_logits', shape('text_logits'), V],
    ['depformer_logits', shape('depformer_logits'), depQ * card],
  ];
  for (const [name, sh, per] of checks) {
    if (sh[0] !== S || sh.slice(1).reduce((a, b) => a * b, 1) !== per) throw new Error(`${set}: ${name} has shape [${sh.join(', ')}], the config expects [${S}, ${per}]`);
  }

  const traces: LMGenTrace[] = [];
  const gen = new LMGen(lm, { temp: 0, tempText: 0, seed: 1, condition: LM_SETS[set].condition, trace: (t) => traces.push(t) });
  const res: Omit<LmGoldenResult, 'kernels'> = { steps: 0, maxTextLogitErr: 0, maxDepformerLogitErr: 0, maxTransformerOutErr: 0 };
  try {
    const n = Math.min(S, maxSteps);
    for (let t = 0; t < n; t++) {
      const out = await gen.step(user.subarray(t * nUser, (t + 1) * nUser));
      const tr = traces[t];
      const at = `${set} step ${t}`;
      assertEqualInts(`${at} main_input_tokens`, tr.mainInput, mainIn.subarray(t * K, (t + 1) * K));
      const a = assertClose(`${at} transformer_out`, tr.transformerOut, tOut.subarray(t * cfg.dim, (t + 1) * cfg.dim), { atol: LOGIT_ATOL });
      const b = assertClose(`${at} text_logits`, tr.textLogits, textLogits.subarray(t * V, (t + 1) * V), { atol: LOGIT_ATOL });
      assertEqualInts(`${at} depformer_input_tokens`, tr.depformerInput, depIn.subarray(t * depQ, (t + 1) * depQ));
      const c = assertClose(`${at} depformer_logits`, tr.depformerLogits, depLogits.subarray(t * depQ * card, (t + 1) * depQ * card), { atol: LOGIT_ATOL, shape: [depQ, card] });
      assertEqualInts(`${at} sampled tokens`, tr.sampled, [sText[t], ...sAudio.subarray(t * depQ, (t + 1) * depQ)]);
      const want = outTok.subarray(t * (1 + depQ), (t + 1) * (1 + depQ));
      if (want[0] === -1000) {
        if (out !== null) throw new Error(`${at}: LMGen returned tokens, the official step returned None`);
      } else {
        if (out === null) throw new Error(`${at}: LMGen returned null, the official step returned tokens`);
        assertEqualInts(`${at} lmgen_out_tokens`, [out.text, ...out.audio], want);
      }
      res.maxTransformerOutErr = Math.max(res.maxTransformerOutErr, a.maxAbs);
      res.maxTextLogitErr = Math.max(res.maxTextLogitErr, b.maxAbs);
      res.maxDepformerLogitErr = Math.max(res.maxDepformerLogitErr, c.maxAbs);
      res.steps++;
    }
  } finally {
    gen.destroy();
    lm.destroy();
  }
  return res;
}
