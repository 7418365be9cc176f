// `npm run cli -- lm generate` and `npm run cli -- run` on the published checkpoint layouts
// (../shared/fixtures/quant: one tiny LM as f32, bf16, PyTorch q8, MLX q4, MLX q8): each file
// reproduces its own golden tokens (the five differ), and `run` with the ../ref Mimi its loop.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeWav } from '../../src/audio/wav.ts';
import { main } from '../../src/cli/main.ts';
import { FRAME_SAMPLES } from '../../src/engine/metrics.ts';
import { parseTokensJson } from '../../src/engine/tokens_json.ts';
import { compareClose } from '../../src/selftest/check.ts';
import { fixtureF32, fixtureI32, nodeFixtures } from '../harness/fixtures.ts';
import { QUANT_SETS, type QuantSet } from '../golden/lm_quant_golden.ts';

const FIX = process.env.SOLACELIVE_FIXTURES ?? resolve(import.meta.dirname, '../../../shared/fixtures');
const read = nodeFixtures();
const tmp = mkdtempSync(join(tmpdir(), 'solacelive-quant-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const DEP_Q = 8;

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, (verbose) => ({ stdout: (t) => void (out += `${t}\n`), stderr: (t) => void (err += `${t}\n`), verbose }));
  return { code, out, err };
}

/** A tokens JSON as the golden layout [steps, 1 + dep_q], -1000 where the step returned None. */
function tokensGrid(path: string): Int32Array {
  const file = parseTokensJson(readFileSync(path, 'utf8'), path);
  const w = 1 + file.dep_q;
  const got = new Int32Array(file.steps.length * w);
  file.steps.forEach((s, t) => (s === null ? got.fill(-1000, t * w, (t + 1) * w) : got.set([s.text, ...s.audio], t * w)));
  return got;
}

function firstMismatch(got: Int32Array, want: Int32Array): string {
  if (got.length !== want.length) return `length ${got.length}, want ${want.length}`;
  const i = got.findIndex((v, j) => v !== want[j]);
  return i < 0 ? '' : `step ${Math.floor(i / (1 + DEP_Q))} slot ${i % (1 + DEP_Q)}: got ${got[i]}, want ${want[i]}`;
}

describe('cli on the published LM layouts (quant fixtures)', () => {
  for (const set of Object.keys(QUANT_SETS) as QuantSet[]) {
    const weights = join(FIX, 'quant', QUANT_SETS[set]);
    it(`lm generate with ${QUANT_SETS[set]} reproduces quant/${set}/lmgen_out_tokens`, async () => {
      const flat = await fixtureI32(read, `quant/${set}/user_input_codes.i32.bin`); // [36, 8]
      const steps = flat.length / 8;
      const codes = join(tmp, `${set}_codes.json`);
      writeFileSync(codes, JSON.stringify({ n_q: 8, frames: steps, codes: Array.from({ length: 8 }, (_, q) => Array.from({ length: steps }, (_, t) => flat[t * 8 + q])) }));
      const out = join(tmp, `${set}_tokens.json`);
      // An f32 KV cache: the goldens are the official model computed in f32, whose every greedy decision
      // wins by ≥ 1e-3 (f32 rounding cannot flip it); the f16 cache's ~1e-2 logit error can.
      const r = await cli(['lm', 'generate', '--config', join(FIX, 'quant/lm_config.json'), '--weights', weights, '--user-codes', codes, '--out', out, '--temp', '0', '--temp-text', '0', '--kv-cache', 'f32']);
      expect(r.code, r.err).toBe(0);
      const want = await fixtureI32(read, `quant/${set}/lmgen_out_tokens.i32.bin`);
      expect(firstMismatch(tokensGrid(out), want)).toBe('');
    }, 1_200_000);

    it(`run with ${QUANT_SETS[set]} and the ref Mimi reproduces quant/${set}/loop_tokens and loop_decoded_pcm`, async () => {
      const ref = join(FIX, 'ref');
      const reply = join(tmp, `${set}_reply.wav`);
      const tokens = join(tmp, `${set}_loop.json`);
      const r = await cli([
        'run', '--mimi-config', join(ref, 'mimi_tiny_config.json'), '--mimi-weights', join(ref, 'mimi_tiny.safetensors'),
        '--lm-config', join(FIX, 'quant/lm_config.json'), '--lm-weights', weights,
        '--in', join(ref, 'mimi/input_speech_24k_pcm16.wav'), '--out', reply, '--tokens', tokens, '--kv-cache', 'f32',
      ]);
      expect(r.code, r.err).toBe(0);
      const want = await fixtureI32(read, `quant/${set}/loop_tokens.i32.bin`);
      const got = tokensGrid(tokens);
      expect(firstMismatch(got, want)).toBe('');
      const wav = decodeWav(readFileSync(reply), reply);
      const gold = await fixtureF32(read, `quant/${set}/loop_decoded_pcm.f32.bin`);
      const T = want.length / (1 + DEP_Q);
      const produced = Array.from({ length: T }, (_, t) => t).filter((t) => want[t * (1 + DEP_Q)] !== -1000);
      expect(produced.length * FRAME_SAMPLES).toBe(gold.length);
      const ours = new Float32Array(gold.length);
      produced.forEach((t, i) => ours.set(wav.samples.subarray(t * FRAME_SAMPLES, (t + 1) * FRAME_SAMPLES), i * FRAME_SAMPLES));
      const rep = compareClose(`${set} reply`, ours, gold, { atol: 1e-3, shape: [produced.length, FRAME_SAMPLES] });
      expect(rep.ok, rep.message).toBe(true);
    }, 1_500_000);
  }
});

describe('cli models', () => {
  it('lists the eight released repositories and picks the largest that fits the budget', async () => {
    const small = await cli(['models', '--budget-gb', '8']);
    expect(small.code, small.err).toBe(0);
    for (const v of ['moshiko', 'moshika']) for (const f of ['pytorch-bf16', 'pytorch-q8', 'mlx-q8', 'mlx-q4']) expect(small.out).toContain(`kyutai/${v}-${f}`);
    expect(small.out).toMatch(/best for moshiko: kyutai\/moshiko-mlx-q4/);
    const big = await cli(['models', '--budget-gb', '40']);
    expect(big.out).toMatch(/best for moshika: kyutai\/moshika-pytorch-bf16/);
    const mid = await cli(['models', '--budget-gb', '10', '--context', '750']);
    expect(mid.out).toMatch(/best for moshiko: kyutai\/moshiko-pytorch-q8/);
    const bad = await cli(['models', '--budget-gb', 'lots']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--budget-gb must be a positive number, got 'lots'/);
  }, 120_000);
});
