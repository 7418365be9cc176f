import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import type { CliIO } from '../../src/cli/args.ts';
import { TextTokenizer } from '../../src/text/tokenizer.ts';
import { fixtureI32, nodeFixtures } from '../harness/fixtures.ts';

// `npm run cli -- lm generate` against the official LMGen goldens (greedy, tiny random LMs):
// ref (7B-shaped: n_q 16, dep_q 8, 36 steps) and ref2b (2B-shaped: n_q 32, dep_q 16, delays up to
// 2, a "description" LUT conditioner given "good", 30 steps).
const FIX = process.env.SOLACELIVE_FIXTURES ?? resolve(import.meta.dirname, '../../../shared/fixtures');
const SPM = resolve(import.meta.dirname, '../fixtures/spm/tiny_unigram.model');
const read = nodeFixtures();
const dir = mkdtempSync(join(tmpdir(), 'lm-cli-'));

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io = (verbose: boolean): CliIO => ({ stdout: (t) => void (out += `${t}\n`), stderr: (t) => void (err += `${t}\n`), verbose });
  const code = await main(argv, io);
  return { code, out, err };
}

/** Writes user_input_codes.i32.bin ([steps, n_q_user]) as a Mimi-CLI codes file (row = codebook). */
async function writeUserCodes(set: string, nQUser: number): Promise<{ path: string; steps: number; rows: number[][] }> {
  const flat = await fixtureI32(read, `${set}/lm/user_input_codes.i32.bin`);
  const steps = flat.length / nQUser;
  const rows = Array.from({ length: nQUser }, (_, q) => Array.from({ length: steps }, (_, t) => flat[t * nQUser + q]!));
  const path = join(dir, `${set}_codes.json`);
  writeFileSync(path, JSON.stringify({ n_q: nQUser, frames: steps, codes: rows }));
  return { path, steps, rows };
}

/** lmgen_out_tokens.i32.bin ([steps, 1 + dep_q], -1000 where step returned None) as output steps. */
async function goldenSteps(set: string, depQ: number): Promise<({ text: number; audio: number[] } | null)[]> {
  const flat = await fixtureI32(read, `${set}/lm/lmgen_out_tokens.i32.bin`);
  const w = depQ + 1;
  return Array.from({ length: flat.length / w }, (_, t) => {
    const row = Array.from(flat.subarray(t * w, (t + 1) * w));
    return row[0] === -1000 ? null : { text: row[0]!, audio: row.slice(1) };
  });
}

const SETS = [
  { set: 'ref', nQUser: 8, depQ: 8, steps: 36, extra: [] as string[] },
  { set: 'ref2b', nQUser: 16, depQ: 16, steps: 30, extra: ['--condition', 'description=good'] },
];

describe('cli lm generate', () => {
  for (const s of SETS) {
    it(`reproduces ${s.set}/lm/lmgen_out_tokens (greedy${s.extra.length ? ', description=good' : ''})`, async () => {
      const { path, steps } = await writeUserCodes(s.set, s.nQUser);
      expect(steps).toBe(s.steps);
      const outPath = join(dir, `${s.set}_tokens.json`);
      const r = await cli([
        'lm', 'generate', '--config', join(FIX, s.set, 'moshi_tiny_config.json'), '--weights', join(FIX, s.set, 'moshi_tiny.safetensors'),
        '--user-codes', path, '--out', outPath, '--temp', '0', '--temp-text', '0', ...s.extra,
        '--tokenizer', SPM,
      ]);
      expect(r.err + r.out, `exit ${r.code}`).not.toMatch(/error/i);
      expect(r.code).toBe(0);
      const got = JSON.parse(readFileSync(outPath, 'utf8')) as { dep_q: number; text: string; steps: unknown[] };
      const want = await goldenSteps(s.set, s.depQ);
      expect(got.dep_q).toBe(s.depQ);
      expect(got.steps.length).toBe(s.steps);
      for (let t = 0; t < want.length; t++) expect(got.steps[t], `step ${t}`).toEqual(want[t]);
      // The transcript is the server.py decoding of the golden text tokens.
      const tok = await TextTokenizer.fromBytes(new Uint8Array(readFileSync(SPM)));
      const text = tok.decode(want.filter((w) => w !== null).map((w) => w!.text));
      expect(got.text).toBe(text);
      expect(r.out.trimEnd()).toBe(text.trimEnd());
    }, 1_200_000); // 30-36 LM steps on a software GPU: minutes on a loaded 2-core machine
  }

  it('rejects a config that does not fit the weights', async () => {
    const { path } = await writeUserCodes('ref', 8);
    // ref's config (dim 64) against ref2b's weights (dim 80): same key names, other shapes.
    const r = await cli(['lm', 'generate', '--config', join(FIX, 'ref', 'moshi_tiny_config.json'), '--weights', join(FIX, 'ref2b', 'moshi_tiny.safetensors'),
      '--user-codes', path, '--out', join(dir, 'x.json'), '--temp', '0', '--temp-text', '0']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/does not fit weights .*moshi_tiny\.safetensors.*(shape|missing|not used)/);
  });

  it('rejects codes with the wrong number of codebooks or out-of-range values', async () => {
    const base = ['lm', 'generate', '--config', join(FIX, 'ref', 'moshi_tiny_config.json'), '--weights', join(FIX, 'ref', 'moshi_tiny.safetensors'), '--out', join(dir, 'x.json')];
    const { rows } = await writeUserCodes('ref', 8);
    const seven = join(dir, 'seven.json');
    writeFileSync(seven, JSON.stringify({ n_q: 7, frames: rows[0]!.length, codes: rows.slice(0, 7) }));
    let r = await cli([...base, '--user-codes', seven]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/seven\.json: has 7 codebooks, the LM takes 8 user codebooks/);

    const bad = rows.map((row) => row.slice());
    bad[5]![3] = 64; // card is 64
    const oob = join(dir, 'oob.json');
    writeFileSync(oob, JSON.stringify({ n_q: 8, frames: rows[0]!.length, codes: bad }));
    r = await cli([...base, '--user-codes', oob]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/oob\.json: code 64 at codebook 5, frame 3 is outside \[0, 64\)/);

    const ragged = join(dir, 'ragged.json');
    writeFileSync(ragged, JSON.stringify({ n_q: 8, frames: 36, codes: rows.map((row, q) => (q === 2 ? row.slice(0, 35) : row)) }));
    r = await cli([...base, '--user-codes', ragged]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/codes row 2 must have frames = 36 values, got 35/);
  });

  it('warns when the codes are not longer than the largest delay (no step returns tokens)', async () => {
    const { rows } = await writeUserCodes('ref', 8);
    const one = join(dir, 'one.json');
    writeFileSync(one, JSON.stringify({ n_q: 8, frames: 1, codes: rows.map((row) => row.slice(0, 1)) }));
    const r = await cli(['lm', 'generate', '--config', join(FIX, 'ref', 'moshi_tiny_config.json'), '--weights', join(FIX, 'ref', 'moshi_tiny.safetensors'), '--user-codes', one, '--out', join(dir, 'one_out.json')]);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/warning: 1 frame\(s\) are not more than the LM's largest delay \(\d+ steps\): no step returned tokens/);
  });

  it('rejects unknown condition names and values, and a missing condition', async () => {
    const { path } = await writeUserCodes('ref2b', 16);
    const base = ['lm', 'generate', '--config', join(FIX, 'ref2b', 'moshi_tiny_config.json'), '--weights', join(FIX, 'ref2b', 'moshi_tiny.safetensors'), '--user-codes', path, '--out', join(dir, 'x.json')];
    let r = await cli([...base, '--condition', 'mood=good']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/unknown condition 'mood': this model's conditioners are description/);
    r = await cli([...base, '--condition', 'description=excellent']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/condition description='excellent' is not one of its values: very_bad, bad, neutral, good, very_good/);
    r = await cli([...base]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/give --condition for description/);
    const ref = await writeUserCodes('ref', 8);
    r = await cli(['lm', 'generate', '--config', join(FIX, 'ref', 'moshi_tiny_config.json'), '--weights', join(FIX, 'ref', 'moshi_tiny.safetensors'), '--user-codes', ref.path, '--out', join(dir, 'x.json'), '--condition', 'description=good']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/unknown condition 'description': this model has no conditioners/);
  });

  it('reports usage errors with exit code 2', async () => {
    let r = await cli(['lm', 'sample']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/unknown lm subcommand 'sample'/);
    r = await cli(['lm', 'generate', '--config', 'c.json']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/missing required flag --weights/);
    r = await cli(['lm', 'generate', '--config', 'c', '--weights', 'w', '--user-codes', 'u', '--out', 'o', '--temp=-1']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--temp must be a number >= 0/);
  });
});
