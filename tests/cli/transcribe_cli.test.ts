import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import type { CliIO } from '../../src/cli/args.ts';
import { encodeWavF32 } from '../../src/audio/wav.ts';
import { TextTokenizer } from '../../src/text/tokenizer.ts';
import { fixtureF32, fixtureI32, nodeFixtures } from '../harness/fixtures.ts';

// `npm run cli -- transcribe` on the STT golden (../shared/fixtures/stt: tiny STT model, the ref Mimi,
// the official run_inference.py procedure over ref/mimi/input_speech_24k_pcm16.wav).
const FIX = process.env.SOLACELIVE_FIXTURES ?? resolve(import.meta.dirname, '../../../shared/fixtures');
const SPM = resolve(import.meta.dirname, '../fixtures/spm/tiny_unigram.model'); // 300 pieces >= text_card 100
const read = nodeFixtures();
const dir = mkdtempSync(join(tmpdir(), 'transcribe-cli-'));
const WAV = join(FIX, 'ref/mimi/input_speech_24k_pcm16.wav');
const BASE = ['--config', join(FIX, 'stt/config.json'), '--weights', join(FIX, 'stt/stt_tiny.safetensors'), '--mimi-config', join(FIX, 'ref/mimi_tiny_config.json'), '--mimi-weights', join(FIX, 'ref/mimi_tiny.safetensors')];

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io = (verbose: boolean): CliIO => ({ stdout: (t) => void (out += `${t}\n`), stderr: (t) => void (err += `${t}\n`), verbose });
  const code = await main(argv, io);
  return { code, out, err };
}

interface Out {
  frames: number;
  tokens: number[];
  extra_heads: number[][][];
  text?: string;
  words?: { text: string; start: number; end: number }[];
}

describe('cli transcribe', () => {
  it('reproduces stt/text_tokens and stt/extra_heads; text, words, SRT and VTT from the tokens', async () => {
    const outPath = join(dir, 'out.json');
    const srt = join(dir, 'out.srt');
    const vtt = join(dir, 'out.vtt');
    const r = await cli(['transcribe', ...BASE, '--in', WAV, '--out', outPath, '--tokenizer', SPM, '--srt', srt, '--vtt', vtt]);
    expect(r.err + r.out, `exit ${r.code}`).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    const got = JSON.parse(readFileSync(outPath, 'utf8')) as Out;
    const tokens = Array.from(await fixtureI32(read, 'stt/stt/text_tokens.i32.bin'));
    const heads = await fixtureF32(read, 'stt/stt/extra_heads.f32.bin'); // [54, 2, 6]
    expect(got.frames).toBe(54);
    expect(got.tokens).toEqual(tokens);
    expect(got.extra_heads.length).toBe(54);
    let maxErr = 0;
    got.extra_heads.forEach((f, t) => {
      expect(f.length).toBe(2);
      f.forEach((h, k) => {
        expect(h.length).toBe(6);
        h.forEach((p, j) => (maxErr = Math.max(maxErr, Math.abs(p - heads[(t * 2 + k) * 6 + j]!))));
      });
    });
    expect(maxErr).toBeLessThanOrEqual(1e-4);
    // The transcript as run_inference.py prints it (ids 0 and 3 print nothing).
    const tok = await TextTokenizer.fromBytes(new Uint8Array(readFileSync(SPM)));
    const text = tok.decode(tokens);
    expect(got.text).toBe(text);
    expect(r.out.trim()).toBe(text.trim());
    // Words: the printed text split at word starts, times in seconds, frame × 0.08 − 0.5 clamped at 0.
    const words = got.words!;
    expect(words.map((w) => w.text).join(' ')).toBe(text.trim().split(/\s+/).join(' '));
    const firstPrinted = tokens.findIndex((id) => id !== 0 && id !== 3 && tok.decodePiece(id)!.trim() !== '');
    expect(words[0]!.start).toBeCloseTo(Math.max(0, firstPrinted * 0.08 - 0.5), 3);
    for (let i = 0; i < words.length; i++) {
      expect(words[i]!.end).toBeGreaterThanOrEqual(words[i]!.start);
      if (i) expect(words[i]!.start).toBeGreaterThanOrEqual(words[i - 1]!.start);
      expect(words[i]!.end).toBeLessThanOrEqual(54 * 0.08 - 0.5 + 1e-9);
    }
    const s = readFileSync(srt, 'utf8');
    expect(s).toMatch(/^1\n\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}\n\S/);
    const v = readFileSync(vtt, 'utf8');
    expect(v).toMatch(/^WEBVTT\n\n\d\d:\d\d:\d\d\.\d{3} --> \d\d:\d\d:\d\d\.\d{3}\n\S/);
    // Every word is in the subtitles, in order.
    const cueText = (f: string) => f.split('\n').filter((l) => l && !/-->/.test(l) && !/^\d+$/.test(l) && l !== 'WEBVTT').join(' ');
    expect(cueText(s)).toBe(words.map((w) => w.text).join(' '));
    expect(cueText(v)).toBe(words.map((w) => w.text).join(' '));
  }, 600_000);

  it('without a tokenizer: tokens and extra heads only', async () => {
    const outPath = join(dir, 'plain.json');
    const r = await cli(['transcribe', ...BASE, '--in', WAV, '--out', outPath]);
    expect(r.code, r.err).toBe(0);
    const got = JSON.parse(readFileSync(outPath, 'utf8')) as Out;
    expect(got.tokens).toEqual(Array.from(await fixtureI32(read, 'stt/stt/text_tokens.i32.bin')));
    expect('text' in got || 'words' in got).toBe(false);
  }, 600_000);

  it('refuses a Moshi config, a Mimi with fewer codebooks than n_q, bad audio, naming the file', async () => {
    const out = ['--out', join(dir, 'x.json')];
    // Moshi (dep_q 8): not an STT model.
    const moshi = join(FIX, 'ref/moshi_tiny_config.json');
    let r = await cli(['transcribe', '--config', moshi, '--weights', join(FIX, 'ref/moshi_tiny.safetensors'), '--mimi-config', join(FIX, 'ref/mimi_tiny_config.json'), '--mimi-weights', join(FIX, 'ref/mimi_tiny.safetensors'), '--in', WAV, ...out]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/moshi_tiny_config\.json: dep_q = 8.*not a speech-to-text model/);
    // A Mimi with 4 codebooks for an n_q 8 model.
    const mc = JSON.parse(readFileSync(join(FIX, 'ref/mimi_tiny_config.json'), 'utf8'));
    mc.mimi_config.quantizer.n_q = 4;
    mc.num_codebooks = 4;
    const small = join(dir, 'mimi4.json');
    writeFileSync(small, JSON.stringify(mc));
    r = await cli(['transcribe', ...BASE, '--mimi-config', small, '--in', WAV, ...out]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/mimi4\.json: the Mimi has 4 codebooks \(quantizer\.n_q\), fewer than the n_q = 8 the STT model in .*config\.json reads/);
    // Audio: missing, not a WAV, empty.
    r = await cli(['transcribe', ...BASE, '--in', join(dir, 'nope.wav'), ...out]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/input file '.*nope\.wav' does not exist/);
    const notWav = join(dir, 'not.wav');
    writeFileSync(notWav, 'RIFX....');
    r = await cli(['transcribe', ...BASE, '--in', notWav, ...out]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/not\.wav: not a WAV file/);
    const empty = join(dir, 'empty.wav');
    writeFileSync(empty, encodeWavF32(new Float32Array(0), 24000));
    r = await cli(['transcribe', ...BASE, '--in', empty, ...out]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/empty\.wav: the 'data' chunk holds no samples/);
    // Weights that do not fit the config: the key and both files named.
    r = await cli(['transcribe', ...BASE.slice(0, 2), '--weights', join(FIX, 'ref/moshi_tiny.safetensors'), ...BASE.slice(4), '--in', WAV, ...out]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/the STT config .*stt\/config\.json does not fit the weights .*moshi_tiny\.safetensors/);
  }, 600_000);

  it('text logits that overflow (finite weights of 3e38) fail the command (exit 1, steps named) after writing the file', async () => {
    const w = new Uint8Array(readFileSync(join(FIX, 'stt/stt_tiny.safetensors')));
    const n = Number(new DataView(w.buffer, w.byteOffset).getBigUint64(0, true));
    const [a, b] = (JSON.parse(new TextDecoder().decode(w.subarray(8, 8 + n))) as Record<string, { data_offsets: [number, number] }>)['text_linear.weight'].data_offsets;
    new Float32Array(w.buffer, w.byteOffset + 8 + n + a, (b - a) / 4).fill(3e38);
    const weights = join(dir, 'overflow.safetensors');
    writeFileSync(weights, w);
    const outPath = join(dir, 'overflow.json');
    const r = await cli(['transcribe', ...BASE.slice(0, 2), '--weights', weights, ...BASE.slice(4), '--in', WAV, '--out', outPath]);
    expect(r.code, r.err).toBe(1);
    expect(r.err).toMatch(/54 of 54 step\(s\) had non-finite text logits or extra-head probabilities \(first: step 0, then 1, 2, 3, 4, …\); .*overflow\.json was written but its tokens are not trustworthy/);
    expect((JSON.parse(readFileSync(outPath, 'utf8')) as Out).frames).toBe(54);
  }, 300_000);

  it('usage errors exit 2: missing flags, subtitles without a tokenizer', async () => {
    let r = await cli(['transcribe', '--config', 'c.json']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/missing required flag --weights/);
    r = await cli(['transcribe', ...BASE, '--in', WAV, '--out', join(dir, 'y.json'), '--srt', join(dir, 'y.srt')]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--srt needs --tokenizer/);
  });
});
