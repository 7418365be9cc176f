// `npm run cli -- run` against the golden fixtures (both sets): greedy tokens equal
// lm/loop_tokens exactly; the reply's frames where a step returned tokens are within 1e-3 of
// lm/loop_decoded_pcm (the official plain streaming loop: encode chunk -> LMGen.step ->
// decode(tokens[:, 1:]), no reset); frames where the step returned null are exact zeros.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeWav } from '../../src/audio/wav.ts';
import { main } from '../../src/cli/main.ts';
import { parseTokensJson } from '../../src/engine/tokens_json.ts';
import { FRAME_SAMPLES } from '../../src/engine/metrics.ts';
import { compareClose } from '../../src/selftest/check.ts';
import { fixtureF32, fixtureI32, nodeFixtures } from '../harness/fixtures.ts';

const FIX = process.env.SOLACELIVE_FIXTURES ?? resolve(import.meta.dirname, '../../../shared/fixtures');
const read = nodeFixtures();
const tmp = mkdtempSync(join(tmpdir(), 'solacelive-run-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function runCli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, (verbose) => ({ stdout: (t) => (out += `${t}\n`), stderr: (t) => (err += `${t}\n`), verbose }));
  return { code, out, err };
}

const SETS: { name: string; extra: string[] }[] = [
  { name: 'ref', extra: [] },
  { name: 'ref2b', extra: ['--condition', 'description=good'] },
];

describe('cli run (engine loop over a file) vs goldens', () => {
  for (const set of SETS) {
    it(`${set.name}: tokens equal lm/loop_tokens, reply within 1e-3 of lm/loop_decoded_pcm`, async () => {
      const dir = join(FIX, set.name);
      const reply = join(tmp, `${set.name}_reply.wav`);
      const tokens = join(tmp, `${set.name}_tokens.json`);
      const r = await runCli([
        'run',
        '--mimi-config', join(dir, 'mimi_tiny_config.json'),
        '--mimi-weights', join(dir, 'mimi_tiny.safetensors'),
        '--lm-config', join(dir, 'moshi_tiny_config.json'),
        '--lm-weights', join(dir, 'moshi_tiny.safetensors'),
        '--in', join(dir, 'mimi/input_speech_24k_pcm16.wav'),
        '--out', reply,
        '--tokens', tokens,
        ...set.extra,
      ]);
      expect(r.code, r.err).toBe(0);
      const want = await fixtureI32(read, `${set.name}/lm/loop_tokens.i32.bin`); // [T, 1 + dep_q], -1000 = None
      const file = parseTokensJson(readFileSync(tokens, 'utf8'), tokens);
      const D = file.dep_q;
      const T = want.length / (1 + D);
      expect(file.steps.length).toBe(T);
      const got = new Int32Array(T * (1 + D));
      file.steps.forEach((s, t) => {
        if (s === null) got.fill(-1000, t * (1 + D), (t + 1) * (1 + D));
        else got.set([s.text, ...s.audio], t * (1 + D));
      });
      const mismatch = [...got].findIndex((v, i) => v !== want[i]);
      expect(mismatch, mismatch < 0 ? '' : `first token mismatch at step ${Math.floor(mismatch / (1 + D))} slot ${mismatch % (1 + D)}: got ${got[mismatch]}, want ${want[mismatch]}`).toBe(-1);

      const wav = decodeWav(readFileSync(reply), reply);
      expect(wav.sampleRate).toBe(24000);
      expect(wav.samples.length).toBe(T * FRAME_SAMPLES);
      const goldPcm = await fixtureF32(read, `${set.name}/lm/loop_decoded_pcm.f32.bin`); // [returned steps, 1920]
      const produced: number[] = [];
      file.steps.forEach((s, t) => (s === null ? expect(wav.samples.subarray(t * FRAME_SAMPLES, (t + 1) * FRAME_SAMPLES).every((v) => v === 0)).toBe(true) : produced.push(t)));
      expect(produced.length * FRAME_SAMPLES).toBe(goldPcm.length);
      const ours = new Float32Array(goldPcm.length);
      produced.forEach((t, i) => ours.set(wav.samples.subarray(t * FRAME_SAMPLES, (t + 1) * FRAME_SAMPLES), i * FRAME_SAMPLES));
      const rep = compareClose(`${set.name} reply`, ours, goldPcm, { atol: 1e-3, shape: [produced.length, FRAME_SAMPLES] });
      expect(rep.ok, rep.message).toBe(true);
    }, 1_500_000);
  }

  it('names a missing flag and a bad condition (usage errors, exit 2)', async () => {
    const a = await runCli(['run', '--mimi-config', 'x.json']);
    expect(a.code).toBe(2);
    expect(a.err).toMatch(/--mimi-weights/);
    const dir = join(FIX, 'ref');
    const b = await runCli(['run', '--mimi-config', join(dir, 'mimi_tiny_config.json'), '--mimi-weights', join(dir, 'mimi_tiny.safetensors'), '--lm-config', join(dir, 'moshi_tiny_config.json'), '--lm-weights', join(dir, 'moshi_tiny.safetensors'), '--in', join(dir, 'mimi/input_speech_24k_pcm16.wav'), '--tokens', join(tmp, 'x.json'), '--condition', 'nonsense']);
    expect(b.code).toBe(2);
    expect(b.err).toMatch(/NAME=VALUE/);
  });
});
