/**
 * `npm run cli -- mimi encode|decode ...`: the Mimi codec on WebGPU (Node, Dawn).
 *
 *   mimi encode --config C.json --weights W.safetensors --in speech.wav --out codes.json [--codebooks N] [--downmix] [--chunk-frames N]
 *   mimi decode --config C.json --weights W.safetensors --codes codes.json --out out.wav|out.f32 [--chunk-frames N]
 *
 * encode: reads a mono PCM16 or float32 WAV (src/audio/wav.ts; `--downmix` averages the channels
 * of a multi-channel file). Audio at the model's rate (24 kHz) is used as is; any other rate is
 * resampled offline with the band-limited polyphase Kaiser-windowed sinc of src/audio/resample.ts
 * (zero phase, cutoff ≈ 0.92 × the lower Nyquist). The length is cut to whole 1920-sample frames
 * (said on stderr). Encoding is streaming, one 1920-sample frame per MimiModel.encode call as the
 * official server does (`--chunk-frames N`: N frames per call, same codes); the codes equal the
 * non-streaming ones. Output JSON:
 * `{"n_q": N, "frames": T, "codes": [[T ints] × N]}` (row = codebook, column = frame).
 *
 * decode: reads such a JSON (n_q may be any count from 1 to the checkpoint's quantizer.n_q, as the
 * official `MimiModel.decode` takes), streams it frame by frame through MimiModel.decode and
 * writes 32-bit float mono WAV (`.wav`) or raw little-endian float32 (`.f32`) at the model's rate.
 *
 * Config files: the bare official Mimi config or `{mimi_config, num_codebooks}` (parseMimiConfig).
 * A config that does not fit the weights fails at load with the weight key named (VarBuilder).
 */
import { writeFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { resample } from '../audio/resample.ts';
import { countBadSamples, MAX_SAMPLE_ABS } from '../protocol/samples.ts';
import { decodeWav, encodeWavF32 } from '../audio/wav.ts';
import type { GpuContext } from '../gpu/index.ts';
import { createNodeGpuContext } from '../gpu/node.ts';
import { MimiModel } from '../models/mimi.ts';
import { type MimiConfig, mimiDerived, parseMimiConfig } from '../models/mimi_config.ts';
import { SafetensorsFile } from '../weights/safetensors.ts';
import { VarBuilder, NonFiniteWeightError, WeightError } from '../weights/var_builder.ts';
import { type CliCommand, type CliIO, optionalInt, parseFlags, requireString, UsageError } from './args.ts';
import { checkOutputPath, CliInputError, MAX_CODE_FRAMES, readInputFile, readJsonFile } from './files.ts';

export { CliInputError, MAX_CODE_FRAMES };

const USAGE = `usage:
  npm run cli -- mimi encode --config C.json --weights W.safetensors --in speech.wav --out codes.json [--codebooks N] [--downmix] [--chunk-frames N]
  npm run cli -- mimi decode --config C.json --weights W.safetensors --codes codes.json --out out.wav|out.f32 [--chunk-frames N]

encode  WAV (mono PCM16 or float32; other rates are resampled to the model's 24 kHz with a
        band-limited windowed-sinc filter; the length is cut to whole 1920-sample frames)
        -> codes JSON {"n_q": N, "frames": T, "codes": [[...T ints], ...N rows]} (streaming encode)
        --codebooks N   codebooks to emit (default: the config's num_codebooks, 8 for Mimi)
        --downmix       average the channels of a multi-channel WAV (default: multi-channel is an error)
decode  codes JSON -> 32-bit float WAV (.wav) or raw little-endian float32 (.f32) (streaming decode)

--chunk-frames N  frames (80 ms each) per streaming call, default 1 (as the official server);
                  larger chunks give the same codes and audio (within 1e-6) with fewer GPU submits

options: --verbose (stack traces, timings)`;

const readInput = readInputFile;
const readJson = readJsonFile;

async function readConfig(path: string): Promise<MimiConfig> {
  return parseMimiConfig(await readJson(path, 'config'), path);
}

/**
 * Loads the model; closes the context if loading fails. A weight file that does not fit the
 * config (missing, extra or misshapen key) is a CliInputError naming both files and the key.
 */
async function loadModel(config: MimiConfig, weightsPath: string, io: CliIO, configPath: string): Promise<{ ctx: GpuContext; model: MimiModel }> {
  const bytes = await readInput(weightsPath, 'weights');
  const file = SafetensorsFile.parse(bytes, weightsPath);
  const ctx = await createNodeGpuContext();
  try {
    const t0 = performance.now();
    const model = await MimiModel.load(ctx, config, VarBuilder.fromSafetensors(ctx, [file]));
    if (io.verbose) io.stderr(`loaded ${weightsPath} in ${(performance.now() - t0).toFixed(0)} ms on ${ctx.adapter.vendor}/${ctx.adapter.architecture}`);
    return { ctx, model };
  } catch (e) {
    ctx.destroy();
    if (e instanceof WeightError && !(e instanceof NonFiniteWeightError)) throw new CliInputError(`the config ${configPath} does not fit the weights ${weightsPath}: ${e.message}`);
    throw e;
  }
}

/** Serializes codes [nQ, frames] (row-major) as the CLI's JSON `{"n_q", "frames", "codes": [[frames ints] × n_q]}`, one row per line. */
export function formatCodesJson(codes: Int32Array, nQ: number, frames: number): string {
  const rows: string[] = [];
  for (let q = 0; q < nQ; q++) rows.push(`  [${Array.from(codes.subarray(q * frames, (q + 1) * frames)).join(', ')}]`);
  return `{"n_q": ${nQ}, "frames": ${frames}, "codes": [\n${rows.join(',\n')}\n]}\n`;
}

/**
 * Validates a parsed codes JSON against the model: n_q in [1, maxCodebooks], frames in
 * [1, MAX_CODE_FRAMES], `codes` an n_q × frames array of integers in [0, bins). Every size is
 * checked against the rows actually present before the output buffer is made (a file claiming
 * "frames": 1e9 is refused at once, not after allocating for it).
 * @returns codes [n_q, frames] row-major
 * @throws CliInputError naming the file and the field, row and column at fault
 */
export function parseCodesJson(json: unknown, source: string, maxCodebooks: number, bins: number): { codes: Int32Array; nQ: number; frames: number } {
  const fail = (m: string) => new CliInputError(`${source}: ${m}`);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw fail('expected an object {"n_q": N, "frames": T, "codes": [[...], ...]}');
  const o = json as Record<string, unknown>;
  const nQ = o.n_q;
  const frames = o.frames;
  if (!Number.isInteger(nQ)) throw fail(`"n_q" must be an integer, got ${JSON.stringify(nQ)}`);
  if (!Number.isInteger(frames) || (frames as number) < 1) throw fail(`"frames" must be a positive integer, got ${JSON.stringify(frames)}`);
  if ((frames as number) > MAX_CODE_FRAMES) throw fail(`"frames" is ${frames}, more than the ${MAX_CODE_FRAMES} frames a codes file may hold (${((MAX_CODE_FRAMES / 12.5) / 60).toFixed(0)} min at 12.5 Hz)`);
  if ((nQ as number) < 1 || (nQ as number) > maxCodebooks) throw fail(`"n_q" is ${nQ}, the model has ${maxCodebooks} codebooks (quantizer.n_q): use 1..${maxCodebooks}`);
  const rows = o.codes;
  if (!Array.isArray(rows)) throw fail(`"codes" must be an array of ${nQ} rows`);
  if (rows.length !== nQ) throw fail(`"codes" has ${rows.length} rows, "n_q" says ${nQ}`);
  // Sizes against the data present first, then the buffer.
  rows.forEach((row, q) => {
    if (!Array.isArray(row)) throw fail(`codes[${q}] is not an array`);
    if (row.length !== frames) throw fail(`codes[${q}] has ${row.length} values, "frames" says ${frames}`);
  });
  const out = new Int32Array((nQ as number) * (frames as number));
  (rows as unknown[][]).forEach((row, q) => {
    row.forEach((v, t) => {
      if (!Number.isInteger(v)) throw fail(`codes[${q}][${t}] = ${JSON.stringify(v)} is not an integer`);
      if ((v as number) < 0 || (v as number) >= bins) throw fail(`codes[${q}][${t}] = ${v} is out of range [0, ${bins}) (quantizer.bins)`);
      out[q * (frames as number) + t] = v as number;
    });
  });
  return { codes: out, nQ: nQ as number, frames: frames as number };
}

async function encodeCmd(argv: string[], io: CliIO): Promise<number> {
  const { values } = parseFlags(
    argv,
    { config: { type: 'string' }, weights: { type: 'string' }, in: { type: 'string' }, out: { type: 'string' }, codebooks: { type: 'string' }, downmix: { type: 'boolean' }, 'chunk-frames': { type: 'string' } },
    USAGE,
  );
  const configPath = requireString(values, 'config', USAGE);
  const weightsPath = requireString(values, 'weights', USAGE);
  const inPath = requireString(values, 'in', USAGE);
  const outPath = requireString(values, 'out', USAGE);
  const requested = optionalInt(values, 'codebooks', 1, 1 << 16, USAGE);
  const chunk = optionalInt(values, 'chunk-frames', 1, 4096, USAGE) ?? 1;
  await checkOutputPath(outPath, 'out');
  let config = await readConfig(configPath);
  if (requested !== undefined) {
    if (requested > config.quantizer.n_q) throw new UsageError(`--codebooks ${requested}: the model in ${configPath} has ${config.quantizer.n_q} codebooks (quantizer.n_q)`, USAGE);
    config = { ...config, num_codebooks: requested };
  }
  const wav = decodeWav(await readInput(inPath, 'input'), inPath, { downmix: values.downmix === true });
  if (wav.channels > 1) io.stderr(`${inPath}: ${wav.channels} channels downmixed to mono (mean)`);
  const rate = config.sample_rate;
  let pcm = wav.samples;
  if (wav.sampleRate !== rate) {
    pcm = resample(pcm, wav.sampleRate, rate);
    io.stderr(`${inPath}: ${wav.sampleRate} Hz resampled to ${rate} Hz (band-limited Kaiser-windowed sinc, src/audio/resample.ts)`);
  }
  {
    const fs = mimiDerived(config, configPath).frameSize;
    if (wav.samples.length === 0) throw new CliInputError(`${inPath}: the 'data' chunk holds no samples`);
    if (pcm.length < fs) throw new CliInputError(`${inPath}: ${pcm.length} samples at ${rate} Hz is shorter than one ${fs}-sample frame (${(fs / rate) * 1000} ms)`);
    if (pcm.length / fs > MAX_CODE_FRAMES) throw new CliInputError(`${inPath}: ${(pcm.length / rate / 60).toFixed(1)} min is ${Math.floor(pcm.length / fs)} frames, more than the ${MAX_CODE_FRAMES} a codes file may hold: split the file`);
  }
  const { ctx, model } = await loadModel(config, weightsPath, io, configPath);
  try {
    const fs = model.frameSize;
    const frames = Math.floor(pcm.length / fs);
    if (frames < 1) throw new CliInputError(`${inPath}: ${pcm.length} samples at ${rate} Hz is shorter than one ${fs}-sample frame (${(fs / rate) * 1000} ms)`);
    const dropped = pcm.length - frames * fs;
    if (dropped) io.stderr(`${inPath}: ${pcm.length} samples at ${rate} Hz; encoding ${frames} whole ${fs}-sample frames (${frames * fs} samples), dropping the last ${dropped}`);
    const nQ = model.numCodebooks;
    const codes = new Int32Array(nQ * frames); // [nQ, frames]
    const t0 = performance.now();
    for (let t0f = 0; t0f < frames; t0f += chunk) {
      const f = Math.min(chunk, frames - t0f);
      const c = await model.encode(pcm.subarray(t0f * fs, (t0f + f) * fs)); // c: [nQ, f]
      if (c.length !== nQ * f) throw new Error(`MimiModel.encode returned ${c.length} codes for ${f} frame(s), expected ${nQ * f}`);
      for (let q = 0; q < nQ; q++) for (let j = 0; j < f; j++) codes[q * frames + t0f + j] = c[q * f + j];
    }
    const ms = performance.now() - t0;
    await writeFile(outPath, formatCodesJson(codes, nQ, frames));
    io.stderr(`encoded ${frames} frames (${((frames * fs) / rate).toFixed(2)} s) x ${nQ} codebooks in ${(ms / 1000).toFixed(2)} s -> ${outPath}`);
    return 0;
  } finally {
    model.destroy();
    ctx.destroy();
  }
}

async function decodeCmd(argv: string[], io: CliIO): Promise<number> {
  const { values } = parseFlags(argv, { config: { type: 'string' }, weights: { type: 'string' }, codes: { type: 'string' }, out: { type: 'string' }, 'chunk-frames': { type: 'string' } }, USAGE);
  const configPath = requireString(values, 'config', USAGE);
  const weightsPath = requireString(values, 'weights', USAGE);
  const codesPath = requireString(values, 'codes', USAGE);
  const outPath = requireString(values, 'out', USAGE);
  const chunk = optionalInt(values, 'chunk-frames', 1, 4096, USAGE) ?? 1;
  const ext = extname(outPath).toLowerCase();
  if (ext !== '.wav' && ext !== '.f32') throw new UsageError(`--out '${outPath}': the output must end in .wav (32-bit float WAV) or .f32 (raw little-endian float32)`, USAGE);
  await checkOutputPath(outPath, 'out');
  const config = await readConfig(configPath);
  const parsed = parseCodesJson(await readJson(codesPath, 'codes'), codesPath, config.quantizer.n_q, config.quantizer.bins);
  const { ctx, model } = await loadModel({ ...config, num_codebooks: parsed.nQ }, weightsPath, io, configPath);
  try {
    const { nQ, frames, codes } = parsed;
    const fs = model.frameSize;
    const pcm = new Float32Array(frames * fs);
    const t0 = performance.now();
    for (let t0f = 0; t0f < frames; t0f += chunk) {
      const f = Math.min(chunk, frames - t0f);
      const part = new Int32Array(nQ * f); // part: [nQ, f]
      for (let q = 0; q < nQ; q++) for (let j = 0; j < f; j++) part[q * f + j] = codes[q * frames + t0f + j];
      const y = await model.decode(part, f); // y: [1920·f]
      if (y.length !== fs * f) throw new Error(`MimiModel.decode returned ${y.length} samples for ${f} frame(s), expected ${fs * f}`);
      pcm.set(y, t0f * fs);
    }
    const ms = performance.now() - t0;
    const bad = countBadSamples(pcm);
    if (bad.count) {
      throw new CliInputError(`decoding ${codesPath} with ${weightsPath} gave ${bad.count} sample(s) that are NaN, infinite or beyond ±${MAX_SAMPLE_ABS} (first: sample ${bad.first} = ${bad.value}, frame ${Math.floor(bad.first / fs)}): nothing written to ${outPath} (non-finite weights?)`);
    }
    const bytes = ext === '.wav' ? encodeWavF32(pcm, config.sample_rate) : new Uint8Array(pcm.buffer);
    await writeFile(outPath, bytes);
    io.stderr(`decoded ${frames} frames x ${nQ} codebooks (${(pcm.length / config.sample_rate).toFixed(2)} s) in ${(ms / 1000).toFixed(2)} s -> ${outPath}`);
    return 0;
  } finally {
    model.destroy();
    ctx.destroy();
  }
}

export const mimiCommand: CliCommand = {
  name: 'mimi',
  summary: 'Mimi codec: encode a WAV to codes, decode codes to audio',
  usage: USAGE,
  async run(argv, io) {
    const [sub, ...rest] = argv;
    if (sub === 'encode') return encodeCmd(rest, io);
    if (sub === 'decode') return decodeCmd(rest, io);
    throw new UsageError(sub === undefined ? 'mimi: missing subcommand (encode or decode)' : `mimi: unknown subcommand '${sub}' (encode or decode)`, USAGE);
  },
};
