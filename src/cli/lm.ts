/**
 * `npm run cli -- lm generate`: runs Moshi's LMGen (src/models/lm_gen.ts) over a file of user audio
 * codes, one step per frame, in Node (WebGPU through Dawn).
 *
 *   npm run cli -- lm generate --config C.json --weights W.safetensors --user-codes codes.json
 *     --out tokens.json [--temp T] [--temp-text T] [--top-k K] [--top-k-text K] [--seed S]
 *     [--condition NAME=VALUE]... [--tokenizer spm.model]
 *
 * Input: the Mimi CLI's codes file `{"n_q": Q, "frames": T, "codes": [[T ints] x Q]}` (row =
 * codebook, column = frame), Q = the LM's n_q - dep_q user codebooks, values in [0, card).
 * Output: `{"dep_q": D, "steps": [null | {"text": int, "audio": [D ints]}, ...]}`, one entry per
 * input frame (null where LMGen.step returned nothing: the first max(delays) steps); with
 * --tokenizer also `"text"`: the transcript as moshi/server.py prints it (src/text/tokenizer.ts).
 *
 * This is the loop of moshi/run_inference.py `InferenceState.run` without Mimi: every user frame
 * goes to `lm_gen.step`, and each returned token frame is kept. Sampling defaults are LMGen's
 * (moshi/models/lm.py `LMGen.__init__`: temp 0.8, temp_text 0.7, top_k 250, top_k_text 25), or the
 * config's `lm_gen_config` when it has one; `--temp 0 --temp-text 0` is greedy.
 *
 * Every step's text and audio logits are checked on the GPU (LMGen.lastStepChecks); when any
 * were NaN or infinite the command says which steps, writes the output and exits 1.
 */
import { writeFile } from 'node:fs/promises';
import { createNodeGpuContext } from '../gpu/node.ts';
import { type LmConfig, parseLmConfig } from '../models/lm_config.ts';
import { LMModel } from '../models/lm.ts';
import { LMGEN_DEFAULTS, LMGen } from '../models/lm_gen.ts';
import { TextTokenizer } from '../text/tokenizer.ts';
import { SafetensorsError, SafetensorsFile } from '../weights/safetensors.ts';
import { VarBuilder, NonFiniteWeightError, WeightError } from '../weights/var_builder.ts';
import { formatBytes } from '../models/lm_memory.ts';
import { type CliCommand, SAMPLING_FLAGS, UsageError, optionalInt, parseFlags, requireString, samplingFlags } from './args.ts';
import { checkOutputPath, CliInputError, MAX_CODE_FRAMES, openInputBlob, readInputFile, readJsonFile } from './files.ts';

const USAGE = `usage: npm run cli -- lm generate --config C.json --weights W.safetensors
         --user-codes codes.json --out tokens.json [options]

Runs the Moshi LM (LMGen, one step per input frame) over the user's audio codes and writes the
generated text and audio tokens.

  --config C.json         LM config: bare lm_kwargs, or {"lm_kwargs": {...}}
  --weights W.safetensors LM weights: the official F32/BF16/F16 checkpoint, PyTorch q8
                          (model.q8.safetensors) or MLX q4/q8 (detected from the tensors)
  --user-codes codes.json user codes in the Mimi CLI format {"n_q", "frames", "codes": [n_q rows]}
                          with n_q = the LM's n_q - dep_q
  --out tokens.json       {"dep_q": D, "steps": [null | {"text": int, "audio": [D ints]}, ...]}

options:
  --temp T                audio temperature (default 0.8, or the config's lm_gen_config; 0 = greedy)
  --temp-text T           text temperature (default 0.7, or the config's; 0 = greedy)
  --top-k K               audio top-k (default 250, or the config's; 0 = all)
  --top-k-text K          text top-k (default 25, or the config's; 0 = all)
  --seed S                sampling seed (default 0)
  --condition NAME=VALUE  value of a conditioner of the model (repeatable; e.g. description=good)
  --tokenizer spm.model   SentencePiece model: add the decoded transcript to the output ("text")
  --context N             KV cache capacity in steps (default: the config's context)
  --kv-cache auto|f32|f16 KV cache storage (auto: f16 unless the checkpoint is F32)`;

/** User codes read from a codes file: `codes[t]` is frame t's Int32Array of nQ values. */
export interface UserCodes {
  nQ: number;
  frames: Int32Array[];
}

/**
 * Reads the Mimi CLI's codes file and checks it against the LM: `nQ` user codebooks, frames in
 * [1, MAX_CODE_FRAMES], integer values in [0, card). Every size is checked against the rows
 * actually present before any buffer is made (a file claiming "frames": 1e9 fails at once).
 * @throws CliInputError naming the file and the bad field / row / frame
 */
export function parseUserCodes(json: unknown, source: string, expect: { nQ: number; card: number }): UserCodes {
  const fail = (m: string) => new CliInputError(`${source}: ${m}`);
  const o = json as { n_q?: unknown; frames?: unknown; codes?: unknown } | null;
  if (!o || typeof o !== 'object' || Array.isArray(o)) throw fail('expected {"n_q": int, "frames": int, "codes": [[...], ...]}');
  const { n_q: nQ, frames: nFrames, codes } = o;
  if (!Number.isInteger(nQ) || (nQ as number) < 1) throw fail(`"n_q" must be a positive integer, got ${JSON.stringify(nQ)}`);
  if (!Number.isInteger(nFrames) || (nFrames as number) < 1) throw fail(`"frames" must be a positive integer, got ${JSON.stringify(nFrames)}`);
  if ((nFrames as number) > MAX_CODE_FRAMES) throw fail(`"frames" is ${nFrames}, more than the ${MAX_CODE_FRAMES} frames a codes file may hold`);
  if (!Array.isArray(codes) || codes.length !== nQ) throw fail(`"codes" must be an array of n_q = ${String(nQ)} rows (one per codebook), got ${Array.isArray(codes) ? `${codes.length} rows` : typeof codes}`);
  if (nQ !== expect.nQ) {
    throw fail(`has ${String(nQ)} codebooks, the LM takes ${expect.nQ} user codebooks (n_q - dep_q); encode with a Mimi set to ${expect.nQ} codebooks`);
  }
  const T = nFrames as number;
  // Sizes against the data present first, then the buffers.
  codes.forEach((row: unknown, q: number) => {
    if (!Array.isArray(row) || row.length !== T) throw fail(`codes row ${q} must have frames = ${T} values, got ${Array.isArray(row) ? row.length : typeof row}`);
  });
  const frames = Array.from({ length: T }, () => new Int32Array(expect.nQ));
  (codes as unknown[][]).forEach((row, q) => {
    row.forEach((v: unknown, t: number) => {
      if (!Number.isInteger(v)) throw fail(`code ${JSON.stringify(v)} at codebook ${q}, frame ${t} is not an integer`);
      if ((v as number) < 0 || (v as number) >= expect.card) throw fail(`code ${v} at codebook ${q}, frame ${t} is outside [0, ${expect.card}) (the LM's card)`);
      frames[t]![q] = v as number;
    });
  });
  return { nQ: expect.nQ, frames };
}

/**
 * Parses repeated `NAME=VALUE` flags and checks them against the model's conditioners.
 * @throws UsageError for a malformed flag, a repeated or unknown name, a value the conditioner does
 *   not list, or (when the model has conditioners) a missing one.
 */
export function parseConditions(raw: readonly string[], cfg: LmConfig): Record<string, string> | undefined {
  const names = Object.keys(cfg.conditioners);
  const out: Record<string, string> = {};
  for (const r of raw) {
    const eq = r.indexOf('=');
    if (eq <= 0) throw new UsageError(`--condition must be NAME=VALUE, got '${r}'`, USAGE);
    const name = r.slice(0, eq);
    const value = r.slice(eq + 1);
    if (Object.hasOwn(out, name)) throw new UsageError(`--condition ${name} given twice`, USAGE);
    const c = Object.hasOwn(cfg.conditioners, name) ? cfg.conditioners[name] : undefined;
    if (!c) {
      throw new UsageError(names.length ? `unknown condition '${name}': this model's conditioners are ${names.join(', ')}` : `unknown condition '${name}': this model has no conditioners`, USAGE);
    }
    if (c.possibleValues && !c.possibleValues.includes(value)) {
      throw new UsageError(`condition ${name}='${value}' is not one of its values: ${c.possibleValues.join(', ')}`, USAGE);
    }
    out[name] = value;
  }
  const missing = names.filter((n) => !Object.hasOwn(out, n));
  if (missing.length) {
    const hint = missing.map((n) => `${n}=${cfg.conditioners[n]!.possibleValues?.join('|') ?? 'VALUE'}`).join(' ');
    throw new UsageError(`this model is conditioned: give --condition for ${missing.join(', ')} (${hint})`, USAGE);
  }
  return names.length ? out : undefined;
}

const readBytes = readInputFile;
const readJson = readJsonFile;

/** One step of the output: null, or the text token and the dep_q audio tokens. */
export type LmStepOut = { text: number; audio: number[] } | null;

/** Serialises the output file (one step per line); `text` is added when given. */
export function lmOutputJson(depQ: number, steps: readonly LmStepOut[], text?: string): string {
  const lines = steps.map((s) => (s ? JSON.stringify({ text: s.text, audio: s.audio }) : 'null'));
  const textField = text === undefined ? '' : ` "text": ${JSON.stringify(text)},`;
  return `{"dep_q": ${depQ},${textField} "steps": [\n${lines.join(',\n')}\n]}\n`;
}

export const lmCommand: CliCommand = {
  name: 'lm',
  summary: 'Moshi LM: generate text + audio tokens from user audio codes (LMGen)',
  usage: USAGE,
  async run(argv, io) {
    const [sub, ...rest] = argv;
    if (sub !== 'generate') throw new UsageError(sub === undefined ? 'missing subcommand (generate)' : `unknown lm subcommand '${sub}' (expected generate)`, USAGE);
    const { values } = parseFlags(rest, {
      config: { type: 'string' },
      weights: { type: 'string' },
      'user-codes': { type: 'string' },
      out: { type: 'string' },
      tokenizer: { type: 'string' },
      context: { type: 'string' },
      'kv-cache': { type: 'string' },
      ...SAMPLING_FLAGS,
    }, USAGE);
    const configPath = requireString(values, 'config', USAGE);
    const context = optionalInt(values, 'context', 1, 1 << 24, USAGE);
    const kvCache = values['kv-cache'] === undefined ? 'auto' : String(values['kv-cache']);
    if (kvCache !== 'auto' && kvCache !== 'f32' && kvCache !== 'f16') throw new UsageError(`--kv-cache must be auto, f32 or f16, got '${kvCache}'`, USAGE);
    const weightsPath = requireString(values, 'weights', USAGE);
    const codesPath = requireString(values, 'user-codes', USAGE);
    const outPath = requireString(values, 'out', USAGE);
    const tokenizerPath = typeof values.tokenizer === 'string' ? values.tokenizer : undefined;
    const { temp, tempText, topK, topKText, seed = 0, conditions } = samplingFlags(values, USAGE, 0);
    await checkOutputPath(outPath, 'out');

    const cfg = parseLmConfig(await readJson(configPath, 'LM config'), configPath);
    const condition = parseConditions(conditions, cfg);
    const userQ = cfg.nQ - cfg.depQ;
    const codes = parseUserCodes(await readJson(codesPath, 'user codes'), codesPath, { nQ: userQ, card: cfg.card });
    const tokenizer = tokenizerPath ? await TextTokenizer.fromBytes(await readBytes(tokenizerPath, 'tokenizer'), { source: tokenizerPath }) : null;
    if (tokenizer && tokenizer.vocabSize < cfg.textCard) {
      throw new Error(`tokenizer ${tokenizerPath} has ${tokenizer.vocabSize} pieces, fewer than the LM's text_card ${cfg.textCard}: wrong tokenizer for this model`);
    }
    // Opened as a Blob: the header now, the tensors streamed to the GPU one at a time at load.
    let weights: SafetensorsFile;
    const blob = await openInputBlob(weightsPath, 'LM weights');
    try {
      weights = await SafetensorsFile.fromBlob(blob, weightsPath);
    } catch (e) {
      if (e instanceof SafetensorsError) throw e;
      throw new CliInputError(`LM weights file '${weightsPath}' could not be read: ${(e as Error).message}`);
    }
    // Absent flags fall back to the config's lm_gen_config, then LMGen's defaults.
    const sampling = {
      temp: temp ?? cfg.lmGen.temp ?? LMGEN_DEFAULTS.temp,
      tempText: tempText ?? cfg.lmGen.tempText ?? LMGEN_DEFAULTS.tempText,
      topK: topK ?? cfg.lmGen.topK ?? LMGEN_DEFAULTS.topK,
      topKText: topKText ?? cfg.lmGen.topKText ?? LMGEN_DEFAULTS.topKText,
      seed,
    };

    const ctx = await createNodeGpuContext();
    try {
      const t0 = performance.now();
      const vb = VarBuilder.fromSafetensors(ctx, [weights]);
      let lm: LMModel;
      try {
        lm = await LMModel.load(ctx, vb, cfg, { kvCache, ...(context ? { context } : {}) }); // checks every key's shape, then vb.finish()
      } catch (e) {
        if (e instanceof WeightError && !(e instanceof NonFiniteWeightError)) throw new Error(`config ${configPath} does not fit weights ${weightsPath}: ${e.message}`);
        throw e;
      }
      const gen = new LMGen(lm, { ...sampling, ...(condition ? { condition } : {}) });
      await gen.ready;
      const tLoad = performance.now() - t0;
      io.stderr(`loaded LM (${lm.format.name}, dim ${cfg.dim}, ${cfg.numLayers} layers, n_q ${cfg.nQ}, dep_q ${cfg.depQ}; ${formatBytes(lm.weightBytes)} of weights + ${formatBytes(lm.kvCacheBytes)} KV cache on the GPU) in ${(tLoad / 1000).toFixed(2)} s; ${codes.frames.length} frames, ` +
        `${sampling.temp === 0 && sampling.tempText === 0 ? 'greedy' : `temp ${sampling.temp}/${sampling.tempText}, top-k ${sampling.topK}/${sampling.topKText}, seed ${seed}`}`);

      const steps: LmStepOut[] = [];
      const faults: string[] = [];
      let text = '';
      const t1 = performance.now();
      for (let t = 0; t < codes.frames.length; t++) {
        const r = await gen.step(codes.frames[t]!);
        const c = gen.lastStepChecks;
        if (c.textLogits || c.audioLogits) {
          const what = `step ${t}: the ${[c.textLogits ? 'text' : '', c.audioLogits ? 'audio' : ''].filter(Boolean).join(' and ')} logits hold NaN or infinite values`;
          if (faults.length < 5) io.stderr(`warning: ${what}`);
          faults.push(what);
        }
        steps.push(r ? { text: r.text, audio: Array.from(r.audio) } : null);
        if (r && tokenizer) text += tokenizer.decodePiece(r.text) ?? '';
        if (io.verbose) io.stderr(`step ${t}: ${r ? `text ${r.text} audio [${Array.from(r.audio).join(', ')}]` : 'null'}`);
      }
      const ms = performance.now() - t1;
      await writeFile(outPath, lmOutputJson(cfg.depQ, steps, tokenizer ? text : undefined));
      const maxDelay = Math.max(0, ...cfg.delays);
      if (steps.length && steps.every((x) => x === null)) io.stderr(`warning: ${codes.frames.length} frame(s) are not more than the LM's largest delay (${maxDelay} steps): no step returned tokens; give more than ${maxDelay} frames`);
      io.stderr(`${steps.length} steps (${steps.filter((s) => s).length} with tokens) in ${(ms / 1000).toFixed(2)} s, ${(ms / Math.max(1, steps.length)).toFixed(1)} ms/step; wrote ${outPath}`);
      if (tokenizer) io.stdout(text);
      gen.destroy();
      lm.destroy();
      if (faults.length) throw new Error(`${faults.length} of ${steps.length} steps had non-finite logits (first: ${faults[0]}; non-finite weights in ${weightsPath}?): ${outPath} was written but its tokens are not trustworthy`);
    } finally {
      ctx.destroy();
    }
  },
};
