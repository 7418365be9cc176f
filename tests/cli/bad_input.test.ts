// The bad-input matrix through the CLI (`npm run cli -- ...`: main(argv) in this process, plus
// child processes where the real exit code and the absence of a crash matter): bad weights
// (safetensors), audio, codes, configs and output paths for every command. Each must exit
// non-zero, quickly, with a message naming the file (and the key / field / sample at fault);
// none may load a model first when the problem is visible without it.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeWavF32, encodeWavPcm16 } from '../../src/audio/wav.ts';
import type { CliIO } from '../../src/cli/args.ts';
import { main } from '../../src/cli/main.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const FIX = process.env.SOLACELIVE_FIXTURES ?? resolve(ROOT, '../shared/fixtures');
const MIMI_CONFIG = join(FIX, 'ref/mimi_tiny_config.json');
const MIMI_WEIGHTS = join(FIX, 'ref/mimi_tiny.safetensors');
const LM_CONFIG = join(FIX, 'ref/moshi_tiny_config.json');
const LM_WEIGHTS = join(FIX, 'ref/moshi_tiny.safetensors');
const SPEECH = join(FIX, 'ref/mimi/input_speech_24k_pcm16.wav');
const STT_CONFIG = join(FIX, 'stt/config.json');
const STT_WEIGHTS = join(FIX, 'stt/stt_tiny.safetensors');
const dir = mkdtempSync(join(tmpdir(), 'bad-input-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io = (verbose: boolean): CliIO => ({ stdout: (t) => void (out += `${t}\n`), stderr: (t) => void (err += `${t}\n`), verbose });
  const code = await main(argv, io);
  return { code, out, err };
}

function cliProcess(argv: string[]): { code: number | null; signal: string | null; err: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--import', './scripts/wgsl_loader.mjs', 'src/cli/main.ts', ...argv], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, signal: r.signal, err: r.stderr };
}

const file = (name: string, bytes: Uint8Array | string) => {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
};
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A copy of a safetensors file with its header JSON changed by `edit` and `extra` bytes appended to the data. */
function editSafetensors(src: string, name: string, edit: (h: Record<string, { dtype: string; shape: number[]; data_offsets: number[] } | Record<string, unknown>>) => void, extra = 0): string {
  const b = new Uint8Array(readFileSync(src));
  const n = Number(new DataView(b.buffer, b.byteOffset).getBigUint64(0, true));
  const h = JSON.parse(new TextDecoder().decode(b.subarray(8, 8 + n)));
  edit(h);
  const json = new TextEncoder().encode(JSON.stringify(h));
  const data = b.subarray(8 + n);
  const out = new Uint8Array(8 + json.length + data.length + extra);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return file(name, out);
}
/** The key whose data starts at offset 0 and the key right after it, in offset order. */
function firstKeys(src: string): [string, string] {
  const b = new Uint8Array(readFileSync(src));
  const n = Number(new DataView(b.buffer, b.byteOffset).getBigUint64(0, true));
  const h = JSON.parse(new TextDecoder().decode(b.subarray(8, 8 + n))) as Record<string, { data_offsets: number[] }>;
  const keys = Object.keys(h).filter((k) => k !== '__metadata__').sort((a, c) => h[a].data_offsets[0] - h[c].data_offsets[0]);
  return [keys[0], keys[1]];
}

/** Bad safetensors files, each with the pattern its error must match (after the file name). */
function badWeights(src: string, tag: string): [string, RegExp][] {
  const [k0, k1] = firstKeys(src);
  const whole = new Uint8Array(readFileSync(src));
  const hugeHeader = new Uint8Array(64);
  new DataView(hugeHeader.buffer).setBigUint64(0, 1n << 40n, true);
  return [
    [file(`${tag}_truncated.safetensors`, whole.subarray(0, whole.length - 100)), /key '[^']+': data_offsets \[\d+, \d+\] out of range/],
    [file(`${tag}_hugeheader.safetensors`, hugeHeader), /header length \d+ is implausible/],
    [file(`${tag}_text.safetensors`, 'hello, not a checkpoint at all, just some text'), /header length \d+ is implausible|truncated/],
    [editSafetensors(src, `${tag}_alias.safetensors`, (h) => {
      (h[k1] as { data_offsets: number[] }).data_offsets = [...(h[k0] as { data_offsets: number[] }).data_offsets];
      (h[k1] as { shape: number[] }).shape = [...(h[k0] as { shape: number[] }).shape];
    }), new RegExp(`key '(${esc(k0)}|${esc(k1)})': .*overlap the bytes of`)],
    [editSafetensors(src, `${tag}_trailing.safetensors`, () => {}, 16), /16 bytes of data after the last tensor/],
    [editSafetensors(src, `${tag}_hole.safetensors`, (h) => void delete h[k0]), new RegExp(`key '${esc(k1)}': .*leave a hole of \\d+ bytes after the header`)],
    [editSafetensors(src, `${tag}_meta.safetensors`, (h) => void (h.__metadata__ = { format: 'pt', step: 3 })), /'__metadata__' key 'step': value must be a string/],
    [editSafetensors(src, `${tag}_dtype.safetensors`, (h) => void ((h[k0] as { dtype: string }).dtype = 'F8_E4M3')), new RegExp(`key '${esc(k0)}': unknown dtype "F8_E4M3"`)],
  ];
}

const wavs = () => {
  const nan = new Float32Array(24000).fill(0.1);
  nan[4321] = NaN;
  const huge = new Float32Array(24000).fill(0.1);
  huge[99] = 1e30;
  const oneHz = encodeWavPcm16(new Float32Array(2000), 1000);
  new DataView(oneHz.buffer).setUint32(24, 1, true); // sample rate 1 Hz
  return {
    nan: [file('nan.wav', encodeWavF32(nan, 24000)), /nan\.wav: 1 sample\(s\) are not finite or beyond ±16 \(first: frame 4321 = NaN\)/] as const,
    huge: [file('huge.wav', encodeWavF32(huge, 24000)), /huge\.wav: 1 sample\(s\) .* \(first: frame 99 = 1[.\d]*e\+30\)/] as const,
    oneHz: [file('one_hz.wav', oneHz), /one_hz\.wav: sample rate 1 Hz .* outside \[1000, 384000\] Hz/] as const,
    empty: [file('empty.wav', encodeWavF32(new Float32Array(0), 24000)), /empty\.wav: the 'data' chunk holds no samples/] as const,
    notWav: [file('not.wav', 'RIFX....'), /not\.wav: not a WAV file/] as const,
  };
};

describe('bad input through the CLI: exit code 1, the file named, nothing loaded first', () => {
  const out = join(dir, 'o');
  mkdirSync(out, { recursive: true });
  const encode = (o: { config?: string; weights?: string; in?: string; out?: string }) =>
    ['mimi', 'encode', '--config', o.config ?? MIMI_CONFIG, '--weights', o.weights ?? MIMI_WEIGHTS, '--in', o.in ?? SPEECH, '--out', o.out ?? join(out, 'c.json')];
  const decode = (o: { config?: string; weights?: string; codes?: string; out?: string }) =>
    ['mimi', 'decode', '--config', o.config ?? MIMI_CONFIG, '--weights', o.weights ?? MIMI_WEIGHTS, '--codes', o.codes ?? 'none.json', '--out', o.out ?? join(out, 'd.wav')];
  const generate = (o: { config?: string; weights?: string; codes?: string; out?: string }) =>
    ['lm', 'generate', '--config', o.config ?? LM_CONFIG, '--weights', o.weights ?? LM_WEIGHTS, '--user-codes', o.codes ?? 'none.json', '--out', o.out ?? join(out, 't.json'), '--temp', '0', '--temp-text', '0'];
  const run = (o: { mimiConfig?: string; mimiWeights?: string; lmConfig?: string; lmWeights?: string; in?: string; out?: string; tokens?: string }) =>
    ['run', '--mimi-config', o.mimiConfig ?? MIMI_CONFIG, '--mimi-weights', o.mimiWeights ?? MIMI_WEIGHTS, '--lm-config', o.lmConfig ?? LM_CONFIG, '--lm-weights', o.lmWeights ?? LM_WEIGHTS,
      '--in', o.in ?? SPEECH, '--out', o.out ?? join(out, 'r.wav'), '--tokens', o.tokens ?? join(out, 'r.json')];

  const transcribe = (o: { config?: string; weights?: string; mimiConfig?: string; mimiWeights?: string; in?: string; out?: string }) =>
    ['transcribe', '--config', o.config ?? STT_CONFIG, '--weights', o.weights ?? STT_WEIGHTS, '--mimi-config', o.mimiConfig ?? MIMI_CONFIG, '--mimi-weights', o.mimiWeights ?? MIMI_WEIGHTS,
      '--in', o.in ?? SPEECH, '--out', o.out ?? join(out, 's.json')];

  const expectFail = async (argv: string[], path: string, re: RegExp) => {
    const r = await cli(argv);
    expect(r.code, `${argv.slice(0, 2).join(' ')} with ${path}: ${r.err}`).toBe(1);
    expect(r.err, path).toMatch(new RegExp(esc(path)));
    expect(r.err, path).toMatch(re);
    expect(r.err, `${path}: failed after loading a model`).not.toMatch(/^loaded|encoded \d+ frames|decoded \d+ frames/m);
  };

  it('bad Mimi weights (mimi encode, mimi decode, run) name the file and the key', async () => {
    const codes = file('ok_codes.json', JSON.stringify({ n_q: 8, frames: 1, codes: Array.from({ length: 8 }, () => [1]) }));
    for (const [p, re] of badWeights(MIMI_WEIGHTS, 'mimi')) {
      await expectFail(encode({ weights: p }), p, re);
      await expectFail(decode({ weights: p, codes }), p, re);
      await expectFail(run({ mimiWeights: p }), p, re);
      await expectFail(transcribe({ mimiWeights: p }), p, re);
    }
  }, 300_000);

  it('bad STT weights (transcribe) name the file and the key', async () => {
    for (const [p, re] of badWeights(STT_WEIGHTS, 'stt')) await expectFail(transcribe({ weights: p }), p, re);
  }, 300_000);

  it('bad LM weights (lm generate, run) name the file and the key', async () => {
    const codes = file('ok_user.json', JSON.stringify({ n_q: 8, frames: 2, codes: Array.from({ length: 8 }, () => [1, 2]) }));
    for (const [p, re] of badWeights(LM_WEIGHTS, 'lm')) {
      await expectFail(generate({ weights: p, codes }), p, re);
      await expectFail(run({ lmWeights: p }), p, re);
    }
  }, 300_000);

  it('weights that are a folder or missing', async () => {
    const folder = join(dir, 'weights.safetensors');
    mkdirSync(folder, { recursive: true });
    const codes = file('ok_user2.json', JSON.stringify({ n_q: 8, frames: 2, codes: Array.from({ length: 8 }, () => [1, 2]) }));
    await expectFail(encode({ weights: folder }), folder, /is a directory, expected a file/);
    await expectFail(generate({ weights: folder, codes }), folder, /is a directory, expected a file/);
    await expectFail(run({ lmWeights: folder }), folder, /is a directory, expected a file/);
    await expectFail(run({ mimiWeights: folder }), folder, /is a directory, expected a file/);
    const none = join(dir, 'absent.safetensors');
    await expectFail(generate({ weights: none, codes }), none, /does not exist/);
    await expectFail(run({ lmWeights: none }), none, /does not exist/);
  });

  it('bad audio (mimi encode, run): NaN, 1e30, 1 Hz, empty, not a WAV; a run too short to answer', async () => {
    for (const [p, re] of Object.values(wavs())) {
      await expectFail(encode({ in: p }), p, re);
      await expectFail(run({ in: p }), p, re);
      await expectFail(transcribe({ in: p }), p, re);
    }
    const short = file('short.wav', encodeWavPcm16(new Float32Array(1200).fill(0.1), 24000)); // 0.05 s
    await expectFail(run({ in: short }), short, /short\.wav: 0\.050 s is 1 frame\(s\) of 80 ms; the LM's first tokens come after max\(delays\) = \d+ steps, so the reply would be silence/);
    await expectFail(encode({ in: short }), short, /shorter than one 1920-sample frame/);
  });

  it('bad codes (mimi decode, lm generate): huge frame counts refused before allocating, fields named', async () => {
    const rows = (n: number, t: number, v: unknown = 1) => Array.from({ length: n }, () => Array.from({ length: t }, () => v));
    const cases: [string, unknown, RegExp, RegExp][] = [
      ['huge.json', { n_q: 8, frames: 1e9, codes: rows(8, 3) }, /"frames" is 1000000000, more than the 65536 frames/, /"frames" is 1000000000, more than/],
      ['lying.json', { n_q: 8, frames: 50000, codes: rows(8, 3) }, /codes\[0\] has 3 values, "frames" says 50000/, /codes row 0 must have frames = 50000 values, got 3/],
      ['frac.json', { n_q: 8, frames: 3, codes: rows(8, 3, 2.5) }, /codes\[0\]\[0\] = 2\.5 is not an integer/, /code 2\.5 at codebook 0, frame 0 is not an integer/],
      ['str.json', { n_q: 8, frames: 3, codes: rows(8, 3, '7') }, /codes\[0\]\[0\] = "7" is not an integer/, /code "7" at codebook 0, frame 0 is not an integer/],
      ['range.json', { n_q: 8, frames: 3, codes: rows(8, 3, 64) }, /codes\[0\]\[0\] = 64 is out of range \[0, 64\)/, /code 64 at codebook 0, frame 0 is outside \[0, 64\)/],
      ['zero.json', { n_q: 8, frames: 0, codes: rows(8, 0) }, /"frames" must be a positive integer/, /"frames" must be a positive integer/],
      ['nq.json', { n_q: 'eight', frames: 3, codes: rows(8, 3) }, /"n_q" must be an integer/, /"n_q" must be a positive integer/],
      ['notjson.json', '{"n_q": 8, "frames": ', /is not valid JSON/, /is not valid JSON/],
    ];
    for (const [name, body, reMimi, reLm] of cases) {
      const p = file(name, typeof body === 'string' ? body : JSON.stringify(body));
      await expectFail(decode({ codes: p }), p, reMimi);
      await expectFail(generate({ codes: p }), p, reLm);
    }
  });

  it('an 871-byte codes file claiming 1e9 frames fails at once in a real process (no heap crash)', () => {
    const p = file('huge_proc.json', JSON.stringify({ n_q: 8, frames: 1e9, codes: rows8() }));
    const t0 = Date.now();
    const r = cliProcess(['lm', 'generate', '--config', LM_CONFIG, '--weights', LM_WEIGHTS, '--user-codes', p, '--out', join(out, 'x.json')]);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/huge_proc\.json: "frames" is 1000000000/);
    expect(Date.now() - t0).toBeLessThan(60_000);
    function rows8() {
      return Array.from({ length: 8 }, (_, q) => Array.from({ length: 50 }, (_, t) => (q * 7 + t) % 64));
    }
  }, 120_000);

  it('bad configs (every command): not JSON, a folder, a bad field, each naming the file (and the key)', async () => {
    const notJson = file('notjson_config.json', '{"dim": 64,');
    const folder = join(dir, 'config_dir.json');
    mkdirSync(folder, { recursive: true });
    const mimiBad = JSON.parse(readFileSync(MIMI_CONFIG, 'utf8'));
    const mimiBadPath = file('mimi_bad_config.json', JSON.stringify(mutateFirstNumber(mimiBad, 'sample_rate', 'fast')));
    const lmBad = JSON.parse(readFileSync(LM_CONFIG, 'utf8'));
    lmBad.lm_kwargs.num_layers = -2;
    const lmBadPath = file('lm_bad_config.json', JSON.stringify(lmBad));
    const codes = file('ok_user3.json', JSON.stringify({ n_q: 8, frames: 2, codes: Array.from({ length: 8 }, () => [1, 2]) }));
    await expectFail(encode({ config: notJson }), notJson, /is not valid JSON/);
    await expectFail(generate({ config: notJson, codes }), notJson, /is not valid JSON/);
    await expectFail(run({ mimiConfig: notJson }), notJson, /is not valid JSON/);
    await expectFail(run({ lmConfig: notJson }), notJson, /is not valid JSON/);
    await expectFail(encode({ config: folder }), folder, /is a directory/);
    await expectFail(run({ lmConfig: folder }), folder, /is a directory/);
    await expectFail(encode({ config: mimiBadPath }), mimiBadPath, /sample_rate/);
    await expectFail(run({ mimiConfig: mimiBadPath }), mimiBadPath, /sample_rate/);
    await expectFail(generate({ config: lmBadPath, codes }), lmBadPath, /num_layers/);
    await expectFail(run({ lmConfig: lmBadPath }), lmBadPath, /num_layers/);
    await expectFail(transcribe({ config: notJson }), notJson, /is not valid JSON/);
    await expectFail(transcribe({ config: folder }), folder, /is a directory/);
    await expectFail(transcribe({ mimiConfig: mimiBadPath }), mimiBadPath, /sample_rate/);
    const sttBad = JSON.parse(readFileSync(STT_CONFIG, 'utf8'));
    sttBad.stt_config.audio_delay = 0.5;
    const sttBadPath = file('stt_bad_config.json', JSON.stringify(sttBad));
    await expectFail(transcribe({ config: sttBadPath }), sttBadPath, /'stt_config\.audio_delay' is not an stt_config key/);
    await expectFail(transcribe({ config: LM_CONFIG, weights: LM_WEIGHTS }), LM_CONFIG, /dep_q = 8: this is not a speech-to-text model/);
  });

  it('NaN weights are refused at load, naming the file and the tensor; nothing is written', async () => {
    const mimiNan = poison(MIMI_WEIGHTS, 'mimi_nan.safetensors', 'decoder.model.14.conv.conv.bias', NaN);
    const lmNan = poison(LM_WEIGHTS, 'lm_nan.safetensors', 'text_linear.weight', NaN, 5);
    const sttNan = poison(STT_WEIGHTS, 'stt_nan.safetensors', 'text_linear.weight', NaN, 7);
    const codes = file('ok_codes2.json', JSON.stringify({ n_q: 8, frames: 2, codes: Array.from({ length: 8 }, () => [1, 2]) }));
    const user = file('ok_user5.json', JSON.stringify({ n_q: 8, frames: 3, codes: Array.from({ length: 8 }, () => [1, 2, 3]) }));
    const cases: [string[], string, string, string][] = [
      [decode({ weights: mimiNan, codes, out: join(out, 'nan_decode.wav') }), mimiNan, 'decoder.model.14.conv.conv.bias', join(out, 'nan_decode.wav')],
      [run({ mimiWeights: mimiNan, out: join(out, 'nan_run1.wav'), tokens: join(out, 'nan_run1.json') }), mimiNan, 'decoder.model.14.conv.conv.bias', join(out, 'nan_run1.wav')],
      [run({ lmWeights: lmNan, out: join(out, 'nan_run2.wav'), tokens: join(out, 'nan_run2.json') }), lmNan, 'text_linear.weight', join(out, 'nan_run2.json')],
      [generate({ weights: lmNan, codes: user, out: join(out, 'nan_gen.json') }), lmNan, 'text_linear.weight', join(out, 'nan_gen.json')],
      [transcribe({ weights: sttNan, out: join(out, 'nan_stt.json') }), sttNan, 'text_linear.weight', join(out, 'nan_stt.json')],
    ];
    for (const [argv, path, key, written] of cases) {
      const r = await cli(argv);
      expect(r.code, r.err).toBe(1);
      expect(r.err).toMatch(new RegExp(`key '${esc(key)}' in ${esc(path)} holds a non-finite value \\(NaN or Inf\\) at element \\d+: the checkpoint is corrupt`));
      expect(r.err).not.toMatch(/does not fit/);
      expect(() => readFileSync(written)).toThrow();
    }
  }, 300_000);

  // Finite weights so large that the step overflows: caught per step, never passed on with exit 0.
  it('non-finite logits at run time fail the command, naming what was found (decoded audio: tests/unit/engine_finite.test.ts)', async () => {
    const lmHuge = poison(LM_WEIGHTS, 'lm_huge.safetensors', 'text_linear.weight', 3e38);
    const user = file('ok_user6.json', JSON.stringify({ n_q: 8, frames: 3, codes: Array.from({ length: 8 }, () => [1, 2, 3]) }));
    let r = await cli(run({ lmWeights: lmHuge, out: join(out, 'huge_run.wav'), tokens: join(out, 'huge_run.json') }));
    expect(r.code, r.err).toBe(1);
    expect(r.err).toMatch(/warning: step 0: the text logits hold NaN or infinite values/);
    expect(r.err).toMatch(/error: \d+ step fault\(s\): (\d+) step\(s\) with non-finite text logits.*the outputs were written but are not trustworthy/);
    r = await cli(generate({ weights: lmHuge, codes: user, out: join(out, 'huge_gen.json') }));
    expect(r.code, r.err).toBe(1);
    expect(r.err).toMatch(/warning: step 0: the text logits hold NaN or infinite values/);
    expect(r.err).toMatch(new RegExp(`error: 3 of 3 steps had non-finite logits .*${esc(lmHuge)}.*huge_gen\\.json was written but its tokens are not trustworthy`));
    r = await cli(generate({ codes: user, out: join(out, 'ok_gen.json') }));
    expect(r.code, r.err).toBe(0);
    expect(r.err).not.toMatch(/warning/);
  }, 300_000);

  it('a missing output folder is found before anything is loaded or computed (every command)', async () => {
    const gone = join(dir, 'no_such_folder', 'x');
    const codes = file('ok_user4.json', JSON.stringify({ n_q: 8, frames: 2, codes: Array.from({ length: 8 }, () => [1, 2]) }));
    await expectFail(encode({ out: `${gone}.json` }), `${gone}.json`, /--out .*: the folder .* does not exist/);
    await expectFail(decode({ codes, out: `${gone}.wav` }), `${gone}.wav`, /--out .*: the folder .* does not exist/);
    await expectFail(generate({ codes, out: `${gone}.json` }), `${gone}.json`, /--out .*: the folder .* does not exist/);
    await expectFail(run({ out: `${gone}.wav` }), `${gone}.wav`, /--out .*: the folder .* does not exist/);
    await expectFail(run({ tokens: `${gone}.json` }), `${gone}.json`, /--tokens .*: the folder .* does not exist/);
    await expectFail(run({ out: out }), out, /--out .* is a folder, expected a file name/);
    await expectFail(transcribe({ out: `${gone}.json` }), `${gone}.json`, /--out .*: the folder .* does not exist/);
  });
});

/** A copy of a safetensors file with the F32 values of `key` set to `value` (at element `at`, or all). */
function poison(src: string, name: string, key: string, value: number, at?: number): string {
  const b = new Uint8Array(readFileSync(src));
  const n = Number(new DataView(b.buffer, b.byteOffset).getBigUint64(0, true));
  const h = JSON.parse(new TextDecoder().decode(b.subarray(8, 8 + n))) as Record<string, { dtype: string; data_offsets: [number, number] }>;
  const e = h[key];
  if (!e || e.dtype !== 'F32') throw new Error(`no F32 key ${key} in ${src}`);
  const dv = new DataView(b.buffer, b.byteOffset + 8 + n + e.data_offsets[0], e.data_offsets[1] - e.data_offsets[0]);
  for (let i = 0; i < dv.byteLength / 4; i++) if (at === undefined || i === at) dv.setFloat32(4 * i, value, true);
  return file(name, b);
}

/** Sets `key` (found anywhere in the object) to `value`. */
function mutateFirstNumber(o: Record<string, unknown>, key: string, value: unknown): Record<string, unknown> {
  const walk = (x: unknown): boolean => {
    if (!x || typeof x !== 'object') return false;
    const r = x as Record<string, unknown>;
    if (key in r) {
      r[key] = value;
      return true;
    }
    return Object.values(r).some(walk);
  };
  if (!walk(o)) throw new Error(`no key ${key}`);
  return o;
}
