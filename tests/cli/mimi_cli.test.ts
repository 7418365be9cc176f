import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeWav, encodeWavPcm16 } from '../../src/audio/wav.ts';
import type { CliIO } from '../../src/cli/args.ts';
import { main } from '../../src/cli/main.ts';
import { assertClose } from '../../src/selftest/check.ts';
import { fixtureF32, fixtureI32, nodeFixtures } from '../harness/fixtures.ts';

// `npm run cli -- mimi encode|decode` on the tiny golden Mimi (../shared/fixtures/ref): the
// streaming codes and audio of the official code, resampled input, and the error paths.
const ROOT = resolve(import.meta.dirname, '../..');
const FIX = process.env.SOLACELIVE_FIXTURES ?? resolve(ROOT, '../shared/fixtures');
const CONFIG = join(FIX, 'ref/mimi_tiny_config.json');
const WEIGHTS = join(FIX, 'ref/mimi_tiny.safetensors');
const INPUT = join(FIX, 'ref/mimi/input_speech_24k_pcm16.wav');
const read = nodeFixtures();
const dir = mkdtempSync(join(tmpdir(), 'mimi-cli-'));

/** Runs the CLI in this process through main(argv), capturing its output. */
async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io = (verbose: boolean): CliIO => ({ stdout: (t) => void (out += `${t}\n`), stderr: (t) => void (err += `${t}\n`), verbose });
  const code = await main(argv, io);
  return { code, out, err };
}

/** Runs the CLI as `npm run cli` does, in a child process. */
function cliProcess(argv: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--import', './scripts/wgsl_loader.mjs', 'src/cli/main.ts', ...argv], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 900_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

interface CodesJson {
  n_q: number;
  frames: number;
  codes: number[][];
}
const readCodes = (p: string) => JSON.parse(readFileSync(p, 'utf8')) as CodesJson;

/** st_codes [8, 36] as rows. */
async function goldenRows(): Promise<number[][]> {
  const st = await fixtureI32(read, 'ref/mimi/st_codes.i32.bin');
  return Array.from({ length: 8 }, (_, q) => Array.from(st.subarray(q * 36, (q + 1) * 36)));
}

describe('cli mimi', () => {
  const codesPath = join(dir, 'codes.json');

  it('encode (child process, as npm run cli) reproduces the streaming golden codes', async () => {
    const r = cliProcess(['mimi', 'encode', '--config', CONFIG, '--weights', WEIGHTS, '--in', INPUT, '--out', codesPath]);
    expect(r.err).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/encoded 36 frames/);
    expect(r.err).not.toMatch(/dropping/); // 69120 samples = 36 whole frames
    const c = readCodes(codesPath);
    expect(c.n_q).toBe(8);
    expect(c.frames).toBe(36);
    expect(c.codes).toEqual(await goldenRows());
  }, 900_000);

  it('decode gives the streaming golden audio within 5e-4 (.wav float32 and .f32)', async () => {
    writeFileSync(codesPath, JSON.stringify({ n_q: 8, frames: 36, codes: await goldenRows() }));
    const wavPath = join(dir, 'out.wav');
    const r = await cli(['mimi', 'decode', '--config', CONFIG, '--weights', WEIGHTS, '--codes', codesPath, '--out', wavPath]);
    expect(r.err).toMatch(/decoded 36 frames/);
    expect(r.code).toBe(0);
    const wav = decodeWav(readFileSync(wavPath), wavPath);
    expect(wav.format).toBe('float32');
    expect(wav.sampleRate).toBe(24000);
    const golden = await fixtureF32(read, 'ref/mimi/st_decoded_audio.f32.bin'); // [36, 1920] flattened
    assertClose('decoded audio (wav)', wav.samples, golden, { atol: 5e-4, shape: [36, 1920] });
    // 12 frames per streaming call: the same audio (the official code: within 6.4e-7 of frame by frame).
    const rawPath = join(dir, 'out.f32');
    expect((await cli(['mimi', 'decode', '--config', CONFIG, '--weights', WEIGHTS, '--codes', codesPath, '--out', rawPath, '--chunk-frames', '12'])).code).toBe(0);
    const raw = readFileSync(rawPath);
    const f = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
    assertClose('decoded audio (f32)', f, golden, { atol: 5e-4, shape: [36, 1920] });
  }, 900_000);

  it('--codebooks 4 emits the first 4 codebooks; decode takes a 4-codebook file', async () => {
    const p = join(dir, 'codes4.json');
    const r = await cli(['mimi', 'encode', '--config', CONFIG, '--weights', WEIGHTS, '--in', INPUT, '--out', p, '--codebooks', '4', '--chunk-frames', '12']);
    expect(r.code).toBe(0);
    const c = readCodes(p);
    expect(c.n_q).toBe(4);
    expect(c.codes).toEqual((await goldenRows()).slice(0, 4));
    const d = await cli(['mimi', 'decode', '--config', CONFIG, '--weights', WEIGHTS, '--codes', p, '--out', join(dir, 'out4.wav'), '--chunk-frames', '12']);
    expect(d.code).toBe(0);
    expect(d.err).toMatch(/decoded 36 frames x 4 codebooks/);
  }, 900_000);

  it('a 22.05 kHz input is resampled to 24 kHz and cut to whole frames (said on stderr)', async () => {
    const p = join(dir, 'espeak_codes.json');
    const input = join(FIX, 'ref/mimi/espeak_raw_22050.wav');
    const r = await cli(['mimi', 'encode', '--config', CONFIG, '--weights', WEIGHTS, '--in', input, '--out', p, '--chunk-frames', '13']);
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/22050 Hz resampled to 24000 Hz/);
    // 67576 samples at 22.05 kHz -> 73553 at 24 kHz = 38 frames + 593 samples.
    expect(r.err).toMatch(/73553 samples at 24000 Hz; encoding 38 whole 1920-sample frames \(72960 samples\), dropping the last 593/);
    const c = readCodes(p);
    expect(c.frames).toBe(38);
    expect(c.n_q).toBe(8);
    // The golden input is SoX's resampling of this same file (first 36 frames): the speech is the
    // same, so most codes agree with the golden ones (the first codebook is the most robust).
    const gold = await goldenRows();
    let same = 0;
    for (let t = 0; t < 36; t++) if (c.codes[0][t] === gold[0][t]) same++;
    expect(same).toBeGreaterThanOrEqual(30);
    for (const row of c.codes) for (const v of row) expect(v >= 0 && v < 64).toBe(true);
  }, 900_000);

  it('a multi-channel WAV is an error unless --downmix', async () => {
    const mono = decodeWav(readFileSync(INPUT), INPUT).samples.subarray(0, 3 * 1920);
    const st = new Float32Array(mono.length * 2);
    for (let i = 0; i < mono.length; i++) st[2 * i] = st[2 * i + 1] = mono[i];
    const stPath = join(dir, 'stereo.wav');
    writeFileSync(stPath, encodeWavPcm16(st, 24000, 2));
    const bad = await cli(['mimi', 'encode', '--config', CONFIG, '--weights', WEIGHTS, '--in', stPath, '--out', join(dir, 'st.json')]);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/stereo\.wav: has 2 channels; Mimi takes mono/);
    const ok = await cli(['mimi', 'encode', '--config', CONFIG, '--weights', WEIGHTS, '--in', stPath, '--out', join(dir, 'st.json'), '--downmix']);
    expect(ok.code).toBe(0);
    expect(ok.err).toMatch(/2 channels downmixed to mono/);
    expect(readCodes(join(dir, 'st.json')).codes).toEqual((await goldenRows()).map((r) => r.slice(0, 3)));
  }, 900_000);

  describe('errors', () => {
    const enc = (over: Record<string, string>) => {
      const flags = { config: CONFIG, weights: WEIGHTS, in: INPUT, out: join(dir, 'e.json'), ...over };
      return ['mimi', 'encode', ...Object.entries(flags).flatMap(([k, v]) => [`--${k}`, v])];
    };
    const dec = (codes: unknown) => {
      const p = join(dir, 'bad_codes.json');
      writeFileSync(p, typeof codes === 'string' ? codes : JSON.stringify(codes));
      return ['mimi', 'decode', '--config', CONFIG, '--weights', WEIGHTS, '--codes', p, '--out', join(dir, 'e.wav')];
    };

    it('usage errors exit 2 with the message and usage (child process: real exit code, no stack)', () => {
      const r = cliProcess(['mimi', 'encode', '--config', CONFIG, '--weights', WEIGHTS, '--in', INPUT]);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(/error: missing required flag --out/);
      expect(r.err).toMatch(/usage:/);
      const u = cliProcess(['nosuch']);
      expect(u.code).toBe(2);
      expect(u.err).toMatch(/unknown command 'nosuch'/);
      const h = cliProcess(['--help']);
      expect(h.code).toBe(0);
      expect(h.out).toMatch(/mimi/);
    }, 120_000);

    it('runtime errors exit 1 with the message only; --verbose adds the stack (child process)', () => {
      const missing = join(dir, 'nope.wav');
      const r = cliProcess(enc({ in: missing }));
      expect(r.code).toBe(1);
      expect(r.err.trim()).toBe(`error: input file '${missing}' does not exist`);
      const v = cliProcess([...enc({ in: missing }), '--verbose']);
      expect(v.code).toBe(1);
      expect(v.err).toMatch(/CliInputError: input file .* does not exist\n\s+at /);
    }, 120_000);

    it('more usage errors: unknown flag, unknown subcommand, bad --out extension, --codebooks out of range', async () => {
      expect((await cli([...enc({}), '--bogus'])).code).toBe(2);
      const sub = await cli(['mimi', 'transcode']);
      expect(sub.code).toBe(2);
      expect(sub.err).toMatch(/unknown subcommand 'transcode'/);
      const ext = await cli(['mimi', 'decode', '--config', CONFIG, '--weights', WEIGHTS, '--codes', codesPath, '--out', join(dir, 'x.mp3')]);
      expect(ext.code).toBe(2);
      expect(ext.err).toMatch(/must end in \.wav .* or \.f32/);
      const cb = await cli(enc({ codebooks: '9' }));
      expect(cb.code).toBe(2);
      expect(cb.err).toMatch(/--codebooks 9: the model in .* has 8 codebooks/);
      expect((await cli(enc({ codebooks: 'two' }))).code).toBe(2);
      const ch = await cli(enc({ 'chunk-frames': '0' }));
      expect(ch.code).toBe(2);
      expect(ch.err).toMatch(/--chunk-frames must be an integer in \[1, 4096\], got '0'/);
    });

    it('missing weights / config files, non-WAV input, bad JSON', async () => {
      const w = await cli(enc({ weights: join(dir, 'none.safetensors') }));
      expect(w.code).toBe(1);
      expect(w.err).toMatch(/weights file '.*none\.safetensors' does not exist/);
      const c = await cli(enc({ config: join(dir, 'none.json') }));
      expect(c.code).toBe(1);
      expect(c.err).toMatch(/config file '.*none\.json' does not exist/);
      const nw = await cli(enc({ in: CONFIG }));
      expect(nw.code).toBe(1);
      expect(nw.err).toMatch(/mimi_tiny_config\.json: not a WAV file/);
      const badJson = join(dir, 'bad.json');
      writeFileSync(badJson, '{"mimi_config": ');
      const bj = await cli(enc({ config: badJson }));
      expect(bj.code).toBe(1);
      expect(bj.err).toMatch(/config file '.*bad\.json' is not valid JSON/);
    });

    it('a config that does not fit the weights names the offending key', async () => {
      const r = await cli(enc({ config: join(FIX, 'ref2b/mimi_tiny_config.json') }));
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/the config .*ref2b\/mimi_tiny_config\.json does not fit the weights .*mimi_tiny\.safetensors: .*key '[^']+'/);
    }, 120_000);

    it('codes.json with a wrong shape, n_q or out-of-range codes', async () => {
      const rows = await goldenRows();
      const cases: [unknown, RegExp][] = [
        ['[1, 2]', /expected an object/],
        ['{"n_q": 8, ', /is not valid JSON/],
        [{ n_q: 8, frames: 36, codes: rows.slice(0, 7) }, /"codes" has 7 rows, "n_q" says 8/],
        [{ n_q: 8, frames: 36, codes: rows.map((r, i) => (i === 3 ? r.slice(1) : r)) }, /codes\[3\] has 35 values, "frames" says 36/],
        [{ n_q: 9, frames: 36, codes: [...rows, rows[0]] }, /"n_q" is 9, the model has 8 codebooks/],
        [{ n_q: 0, frames: 36, codes: [] }, /"n_q" is 0/],
        [{ n_q: 8, frames: 0, codes: rows }, /"frames" must be a positive integer/],
        [{ n_q: 8, frames: 36, codes: rows.map((r, i) => (i === 5 ? r.map((v, t) => (t === 17 ? 64 : v)) : r)) }, /codes\[5\]\[17\] = 64 is out of range \[0, 64\)/],
        [{ n_q: 8, frames: 36, codes: rows.map((r, i) => (i === 0 ? r.map((v, t) => (t === 2 ? -1 : v)) : r)) }, /codes\[0\]\[2\] = -1 is out of range/],
        [{ n_q: 8, frames: 36, codes: rows.map((r, i) => (i === 1 ? r.map((v, t) => (t === 0 ? 1.5 : v)) : r)) }, /codes\[1\]\[0\] = 1\.5 is not an integer/],
      ];
      for (const [body, re] of cases) {
        const r = await cli(dec(body));
        expect(r.code, JSON.stringify(body).slice(0, 60)).toBe(1);
        expect(r.err).toMatch(/bad_codes\.json/);
        expect(r.err).toMatch(re);
      }
    });
  });
});
