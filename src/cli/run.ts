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
 */
import { openAsBlob } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { decodeWav, encodeWavF32 } from '../audio/wav.ts';
import { resample } from '../audio/resample.ts';
import { ArrayFrameSink, ArrayFrameSource, EngineDriver } from '../engine/driver.ts';
import { type LoadedEngine, loadEngine, parseCondition } from '../engine/load.ts';
import { SAMPLE_RATE, STEP_BUDGET_MS } from '../engine/metrics.ts';
import { tokensJson } from '../engine/tokens_json.ts';
import type { LmFrame } from '../engine/engine.ts';
import { createNodeGpuContext } from '../gpu/node.ts';
import { type CliCommand, type CliIO, SAMPLING_FLAGS, UsageError, parseFlags, requireString, samplingFlags } from './args.ts';

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
  --downmix               average a multi-channel input to mono`;

/** Runs the loop over `pcm` (24 kHz) and returns every step's frame and the reply. */
export async function runFile(loaded: LoadedEngine, pcm: Float32Array, io?: CliIO): Promise<{ frames: (LmFrame | null)[]; reply: Float32Array; text: string }> {
  const source = new ArrayFrameSource(pcm);
  const sink = new ArrayFrameSink();
  const frames: (LmFrame | null)[] = [];
  let text = '';
  const driver = new EngineDriver(loaded.engine, source, sink, {
    onStep: (r) => {
      frames.push(r.frame ? { text: r.frame.text, audio: r.frame.audio.slice() } : null);
      if (r.text) text += r.text;
      if (io?.verbose) io.stderr(`step ${r.index}: ${r.frame ? `text ${r.frame.text}` : 'null'}  encode ${r.timings.encodeMs.toFixed(1)} ms, LM ${r.timings.lmMs.toFixed(1)} ms, decode ${r.timings.decodeMs.toFixed(1)} ms`);
    },
  });
  await driver.run();
  return { frames, reply: sink.concat(), text };
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
      ...SAMPLING_FLAGS,
    }, USAGE);
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

    const openBlob = async (p: string) => {
      try {
        return await openAsBlob(p);
      } catch (e) {
        throw new Error(`cannot read ${p}: ${(e as Error).message}`);
      }
    };
    const read = async (p: string) => {
      try {
        return new Uint8Array(await readFile(p));
      } catch (e) {
        throw new Error(`cannot read ${p}: ${(e as Error).message}`);
      }
    };
    const wav = decodeWav(await read(input), input, { downmix: values.downmix === true });
    const pcm = wav.sampleRate === SAMPLE_RATE ? wav.samples : resample(wav.samples, wav.sampleRate, SAMPLE_RATE);
    if (wav.sampleRate !== SAMPLE_RATE) io.stderr(`resampled ${input} from ${wav.sampleRate} Hz to ${SAMPLE_RATE} Hz`);

    const ctx = await createNodeGpuContext();
    try {
      const t0 = performance.now();
      const loaded = await loadEngine(ctx, {
        mimiConfig: JSON.parse(new TextDecoder().decode(await read(paths.mimiConfig))),
        mimiWeights: await read(paths.mimiWeights),
        lmConfig: JSON.parse(new TextDecoder().decode(await read(paths.lmConfig))),
        lmWeights: await openBlob(paths.lmWeights), // streamed to the GPU tensor by tensor
        tokenizer: typeof values.tokenizer === 'string' ? await read(values.tokenizer) : null,
        names: { mimiWeights: paths.mimiWeights, lmWeights: paths.lmWeights, tokenizer: typeof values.tokenizer === 'string' ? values.tokenizer : undefined },
        origins: {},
      }, { sampling, condition });
      io.stderr(`loaded ${loaded.info.summary} in ${((performance.now() - t0) / 1000).toFixed(1)} s on ${ctx.adapter.vendor} ${ctx.adapter.architecture}`);
      const { frames, reply, text } = await runFile(loaded, pcm, io);
      if (out) await writeFile(out, encodeWavF32(reply, SAMPLE_RATE));
      if (tokensPath) await writeFile(tokensPath, tokensJson(loaded.info.depQ, frames));
      const m = loaded.engine.metrics.snapshot();
      io.stderr(
        `${m.steps} steps (${m.tokenSteps} with tokens), step ms p50 ${m.stepMs.p50.toFixed(1)} p95 ${m.stepMs.p95.toFixed(1)} max ${m.stepMs.max.toFixed(1)} ` +
          `(encode p50 ${m.encodeMs.p50.toFixed(1)}, LM ${m.lmMs.p50.toFixed(1)}, decode ${m.decodeMs.p50.toFixed(1)}); ${m.overBudget} over the ${STEP_BUDGET_MS} ms budget`,
      );
      if (text) io.stdout(text);
      loaded.dispose();
    } finally {
      ctx.destroy();
    }
  },
};
