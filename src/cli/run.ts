/**
 * `npm run cli -- run`: the engine's 80 ms loop over a WAV file in Node (Dawn), the same Engine
 * and driver the browser engine Worker runs.
 *
 *   npm run cli -- run --mimi-config C --mimi-weights W --lm-config C --lm-weights W
 *     --in speech.wav --out reply.wav --tokens tokens.json [--tokenizer T.model]
 *     [--temp T] [--temp-text T] [--top-k N] [--top-k-text N] [--seed S] [--condition NAME=VALUE]
 *
 * The input is resampled to 24 kHz when needed and cut into 1920-sample frames (the tail padded
 * with zeros). Reply frame t is the Mimi decode of step t's audio tokens, or 1920 zeros where
 * LMGen returned null; the reply is a 32-bit float WAV at 24 kHz. tokens.json has the LM CLI's
 * format `{"dep_q": D, "steps": [null | {"text": int, "audio": [D ints]}, ...]}`.
 * Without --temp/--temp-text the run is greedy (temperature 0), so it is reproducible.
 *
 * Checked before anything is loaded: every input file (named in the error when missing, a
 * folder, not JSON, not a WAV, an empty WAV), the configs, the output folders, and that the
 * input is long enough for the LM to answer at all (more than max(delays) frames: the reply of
 * a shorter input would be silence). After the run, a step whose logits or decoded audio were
 * not finite (Engine.step faults) makes the command fail (exit 1, the steps named); the files
 * are still written.
 */
import { writeFile } from 'node:fs/promises';
import { decodeWav, encodeWavF32 } from '../audio/wav.ts';
import { resample } from '../audio/resample.ts';
import { ArrayFrameSink, ArrayFrameSource, EngineDriver } from '../engine/driver.ts';
import { type LoadedEngine, loadEngine, parseCondition } from '../engine/load.ts';
import { SAMPLE_RATE, STEP_BUDGET_MS } from '../engine/metrics.ts';
import { tokensJson } from '../engine/tokens_json.ts';
import type { LmFrame } from '../engine/engine.ts';
import { createNodeGpuContext } from '../gpu/node.ts';
import { maxDelay, parseLmConfig } from '../models/lm_config.ts';
import { mimiDerived, parseMimiConfig } from '../models/mimi_config.ts';
import { type CliCommand, type CliIO, SAMPLING_FLAGS, UsageError, optionalInt, parseFlags, requireString, samplingFlags } from './args.ts';
import { WeightError } from '../weights/var_builder.ts';
import { checkOutputPath, CliInputError, openInputBlob, readInputFile, readJsonFile } from './files.ts';

const USAGE = `usage: npm run cli -- run --mimi-config C --mimi-weights W --lm-config C --lm-weights W
         --in speech.wav --out reply.wav --tokens tokens.json [options]

Runs the real-time engine loop (Mimi encode -> LMGen step -> Mimi decode, one 80 ms frame per
step) over a WAV file.

options:
  --tokenizer T.model     SentencePiece model: print Moshi's words (ids otherwise)
  --temp T                audio temperature (default 0 = greedy)
  --temp-text T           text temperature (default 0 = greedy)
  --top-k N               audio top-k (default 250)
  --top-k-text N          text top-k (default 25)
  --seed S                sampling seed (default 0)
  --condition NAME=VALUE  conditioner value (models with conditioners; repeatable)
  --downmix               average a multi-channel input to mono
  --kv-cache auto|f32|f16 KV cache storage (auto: f16 unless the checkpoint is F32)`;

/**
 * Runs the loop over `pcm` (24 kHz) and returns every step's frame, the reply, the text and the
 * messages of every step fault (non-finite input, logits or output; also printed on stderr,
 * the first 5 of them, when `io` is given).
 */
export async function runFile(loaded: LoadedEngine, pcm: Float32Array, io?: CliIO): Promise<{ frames: (LmFrame | null)[]; reply: Float32Array; text: string; faults: string[] }> {
  const source = new ArrayFrameSource(pcm);
  const sink = new ArrayFrameSink();
  const frames: (LmFrame | null)[] = [];
  const faults: string[] = [];
  let text = '';
  const driver = new EngineDriver(loaded.engine, source, sink, {
    onStep: (r) => {
      frames.push(r.frame ? { text: r.frame.text, audio: r.frame.audio.slice() } : null);
      for (const f of r.faults) {
        if (faults.length < 5) io?.stderr(`warning: ${f.message}`);
        faults.push(f.message);
      }
      if (r.text) text += r.text;
      if (io?.verbose) io.stderr(`step ${r.index}: ${r.frame ? `text ${r.frame.text}` : 'null'}  encode ${r.timings.encodeMs.toFixed(1)} ms, LM ${r.timings.lmMs.toFixed(1)} ms, decode ${r.timings.decodeMs.toFixed(1)} ms`);
    },
  });
  await driver.run();
  return { frames, reply: sink.concat(), text, faults };
}

export const runCommand: CliCommand = {
  name: 'run',
  summary: 'the real-time engine loop over a WAV file (Mimi + Moshi LM)',
  usage: USAGE,
  async run(argv, io) {
    const { values } = parseFlags(argv, {
      'mimi-config': { type: 'string' },
      'mimi-weights': { type: 'string' },
      'lm-config': { type: 'string' },
      'lm-weights': { type: 'string' },
      tokenizer: { type: 'string' },
      in: { type: 'string' },
      out: { type: 'string' },
      tokens: { type: 'string' },
      downmix: { type: 'boolean' },
      'kv-cache': { type: 'string' },
      ...SAMPLING_FLAGS,
    }, USAGE);
    const kvCache = values['kv-cache'] === undefined ? 'auto' : String(values['kv-cache']);
    if (kvCache !== 'auto' && kvCache !== 'f32' && kvCache !== 'f16') throw new UsageError(`--kv-cache must be auto, f32 or f16, got '${kvCache}'`, USAGE);
    const paths = {
      mimiConfig: requireString(values, 'mimi-config', USAGE),
      mimiWeights: requireString(values, 'mimi-weights', USAGE),
      lmConfig: requireString(values, 'lm-config', USAGE),
      lmWeights: requireString(values, 'lm-weights', USAGE),
    };
    const input = requireString(values, 'in', USAGE);
    const out = typeof values.out === 'string' ? values.out : undefined;
    const tokensPath = typeof values.tokens === 'string' ? values.tokens : undefined;
    if (!out && !tokensPath) throw new UsageError('give --out and/or --tokens (nothing would be written)', USAGE);
    const flags = samplingFlags(values, USAGE, 1);
    const sampling = { temp: flags.temp ?? 0, tempText: flags.tempText ?? 0, topK: flags.topK ?? 250, topKText: flags.topKText ?? 25, seed: flags.seed ?? 0 };
    const rawConditions = flags.conditions;
    let condition: Record<string, string> | null = null;
    try {
      condition = rawConditions.length ? parseCondition(rawConditions) : null;
    } catch (e) {
      throw new UsageError((e as Error).message, USAGE);
    }

    // Everything that can be checked without the GPU, before loading anything.
    if (out) await checkOutputPath(out, 'out');
    if (tokensPath) await checkOutputPath(tokensPath, 'tokens');
    const mimiJson = await readJsonFile(paths.mimiConfig, 'Mimi config');
    const lmJson = await readJsonFile(paths.lmConfig, 'LM config');
    const mimiCfg = parseMimiConfig(mimiJson, paths.mimiConfig);
    const lmCfg = parseLmConfig(lmJson, paths.lmConfig);
    const wav = decodeWav(await readInputFile(input, 'input'), input, { downmix: values.downmix === true });
    if (wav.samples.length === 0) throw new CliInputError(`${input}: the 'data' chunk holds no samples: nothing to answer`);
    const pcm = wav.sampleRate === SAMPLE_RATE ? wav.samples : resample(wav.samples, wav.sampleRate, SAMPLE_RATE);
    if (wav.sampleRate !== SAMPLE_RATE) io.stderr(`resampled ${input} from ${wav.sampleRate} Hz to ${SAMPLE_RATE} Hz`);
    const fs = mimiDerived(mimiCfg, paths.mimiConfig).frameSize;
    const steps = Math.ceil(pcm.length / fs);
    const delay = maxDelay(lmCfg);
    if (steps <= delay) {
      throw new CliInputError(
        `${input}: ${(pcm.length / SAMPLE_RATE).toFixed(3)} s is ${steps} frame(s) of 80 ms; the LM's first tokens come after max(delays) = ${delay} steps, ` +
          `so the reply would be silence: give at least ${((delay + 1) * fs / SAMPLE_RATE).toFixed(2)} s`,
      );
    }
    if (pcm.length % fs) io.stderr(`${input}: ${pcm.length} samples at ${SAMPLE_RATE} Hz; the last frame is padded with ${steps * fs - pcm.length} zeros`);
    const mimiWeights = await readInputFile(paths.mimiWeights, 'Mimi weights');
    const lmWeights = await openInputBlob(paths.lmWeights, 'LM weights'); // streamed to the GPU tensor by tensor
    const tokenizer = typeof values.tokenizer === 'string' ? await readInputFile(values.tokenizer, 'tokenizer') : null;

    const ctx = await createNodeGpuContext();
    try {
      const t0 = performance.now();
      const loaded = await loadEngine(ctx, {
        mimiConfig: mimiJson,
        mimiWeights,
        lmConfig: lmJson,
        lmWeights,
        tokenizer,
        names: { mimiWeights: paths.mimiWeights, lmWeights: paths.lmWeights, tokenizer: typeof values.tokenizer === 'string' ? values.tokenizer : undefined },
        origins: {},
      }, { sampling, condition, kvCache }).catch((e: unknown) => {
        if (e instanceof WeightError) throw new CliInputError(`the configs ${paths.mimiConfig} / ${paths.lmConfig} do not fit the weights ${paths.mimiWeights} / ${paths.lmWeights}: ${e.message}`);
        throw e;
      });
      io.stderr(`loaded ${loaded.info.summary} in ${((performance.now() - t0) / 1000).toFixed(1)} s on ${ctx.adapter.vendor} ${ctx.adapter.architecture}`);
      const { frames, reply, text, faults } = await runFile(loaded, pcm, io);
      if (out) await writeFile(out, encodeWavF32(reply, SAMPLE_RATE));
      if (tokensPath) await writeFile(tokensPath, tokensJson(loaded.info.depQ, frames));
      const m = loaded.engine.metrics.snapshot();
      io.stderr(
        `${m.steps} steps (${m.tokenSteps} with tokens), step ms p50 ${m.stepMs.p50.toFixed(1)} p95 ${m.stepMs.p95.toFixed(1)} max ${m.stepMs.max.toFixed(1)} ` +
          `(encode p50 ${m.encodeMs.p50.toFixed(1)}, LM ${m.lmMs.p50.toFixed(1)}, decode ${m.decodeMs.p50.toFixed(1)}); ${m.overBudget} over the ${STEP_BUDGET_MS} ms budget`,
      );
      if (text) io.stdout(text);
      loaded.dispose();
      if (faults.length) {
        const n = m.nonFinite;
        throw new Error(
          `${faults.length} step fault(s): ${n.textLogitSteps} step(s) with non-finite text logits, ${n.audioLogitSteps} with non-finite audio logits, ` +
            `${n.outputFrames} decoded frame(s) replaced by silence, ${n.inputFrames} input frame(s) with samples zeroed (first: ${faults[0]}); the outputs were written but are not trustworthy`,
        );
      }
    } finally {
      ctx.destroy();
    }
  },
};
