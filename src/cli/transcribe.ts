/**
 * `npm run cli -- transcribe`: Kyutai speech-to-text over a WAV file in Node (WebGPU through Dawn),
 * the official procedure of moshi/run_inference.py for `model_type == "stt"` (src/models/stt.ts).
 *
 *   npm run cli -- transcribe --config C.json --weights W.safetensors [--mimi-config MC.json]
 *     --mimi-weights MW.safetensors --in speech.wav --out out.json [--tokenizer T.model]
 *     [--srt F.srt] [--vtt F.vtt] [--downmix]
 *
 * --config is the STT repository's config.json (LM kwargs + model_type, stt_config, lm_gen_config);
 * the model must have dep_q = 0. The Mimi (default config: the released one, loaders.py
 * `_mimi_config`) is set to n_q codebooks as `CheckpointInfo.get_mimi` does
 * (max(dep_q, n_q - dep_q) = n_q); its quantizer must have at least that many. Sampling is the
 * config's lm_gen_config (greedy for the released STT models), LMGen's defaults for absent values,
 * seed 0. The input is decoded (mono PCM16 / float32 WAV, `--downmix` for more channels) and
 * resampled to 24 kHz when needed (src/audio/resample.ts).
 *
 * Output JSON: `{"frames": F, "tokens": [F ints], "extra_heads": [F][H][D], "text": "...",
 * "words": [{"text", "start", "end"}]}`: F counted steps, the text token of each, the extra heads'
 * probabilities (LMGen.stepWithExtraHeads; [] per frame without extra heads); `text` (the transcript
 * as run_inference.py prints it) and `words` (seconds from the start of the input,
 * src/models/stt.ts `timedWords`) only with --tokenizer, which --srt / --vtt need too.
 *
 * Checked before anything is loaded: every input file (named when missing, a folder, not JSON, not
 * a WAV, an empty WAV), that the config is an STT model, that the Mimi has n_q codebooks, and the
 * output folders.
 */
import { writeFile } from 'node:fs/promises';
import { resample } from '../audio/resample.ts';
import { decodeWav } from '../audio/wav.ts';
import { createNodeGpuContext } from '../gpu/node.ts';
import { LMModel } from '../models/lm.ts';
import { LMGEN_DEFAULTS, LMGen } from '../models/lm_gen.ts';
import { parseLmConfig } from '../models/lm_config.ts';
import { MimiModel } from '../models/mimi.ts';
import { MIMI_RELEASED_CONFIG, parseMimiConfig } from '../models/mimi_config.ts';
import { type TimedWord, type Transcription, sttPadding, STT_CONFIG_DEFAULTS, timedWords, transcribe } from '../models/stt.ts';
import { formatSrt, formatVtt, subtitleCues } from '../text/subtitles.ts';
import { TextTokenizer } from '../text/tokenizer.ts';
import { SafetensorsError, SafetensorsFile } from '../weights/safetensors.ts';
import { NonFiniteWeightError, VarBuilder, WeightError } from '../weights/var_builder.ts';
import { type CliCommand, UsageError, parseFlags, requireString } from './args.ts';
import { checkOutputPath, CliInputError, MAX_CODE_FRAMES, openInputBlob, readInputFile, readJsonFile } from './files.ts';

const USAGE = `usage: npm run cli -- transcribe --config C.json --weights W.safetensors [--mimi-config MC.json]
         --mimi-weights MW.safetensors --in speech.wav --out out.json [options]

Transcribes speech with a Kyutai STT model (kyutai/stt-1b-en_fr, kyutai/stt-2.6b-en): the official
run_inference.py procedure, one text token per 80 ms frame.

  --config C.json           the STT model's config.json (dep_q 0, stt_config, lm_gen_config)
  --weights W.safetensors   its weights (official F32/BF16/F16 checkpoint)
  --mimi-config MC.json     Mimi config (default: the released Mimi); set to the model's n_q codebooks
  --mimi-weights MW         Mimi weights
  --in speech.wav           mono PCM16 or float32 WAV (resampled to 24 kHz when needed)
  --out out.json            {"frames", "tokens", "extra_heads", "text", "words"}

options:
  --tokenizer T.model       SentencePiece model: add "text" and "words" (seconds) to the output
  --srt F.srt               also write SubRip subtitles (needs --tokenizer)
  --vtt F.vtt               also write WebVTT subtitles (needs --tokenizer)
  --downmix                 average a multi-channel input to mono`;

/** The output file of the command (one frame per line of tokens / extra heads). */
export function transcriptionJson(t: Transcription, text?: string, words?: readonly TimedWord[]): string {
  const F = t.tokens.length;
  const { numHeads: H, headDim: D } = t;
  const heads = Array.from({ length: F }, (_, f) => JSON.stringify(Array.from({ length: H }, (_, h) => Array.from(t.extraHeads.subarray((f * H + h) * D, (f * H + h + 1) * D)))));
  const parts = [`"frames": ${F}`, `"tokens": ${JSON.stringify(Array.from(t.tokens))}`, `"extra_heads": [\n${heads.join(',\n')}\n]`];
  if (text !== undefined) parts.push(`"text": ${JSON.stringify(text)}`);
  if (words) parts.push(`"words": [\n${words.map((w) => JSON.stringify({ text: w.text, start: round3(w.start), end: round3(w.end) })).join(',\n')}\n]`);
  return `{${parts.join(',\n')}}\n`;
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

export const transcribeCommand: CliCommand = {
  name: 'transcribe',
  summary: 'Kyutai speech-to-text: transcribe a WAV (STT model + Mimi), words with times',
  usage: USAGE,
  async run(argv, io) {
    const { values } = parseFlags(argv, {
      config: { type: 'string' },
      weights: { type: 'string' },
      'mimi-config': { type: 'string' },
      'mimi-weights': { type: 'string' },
      in: { type: 'string' },
      out: { type: 'string' },
      tokenizer: { type: 'string' },
      srt: { type: 'string' },
      vtt: { type: 'string' },
      downmix: { type: 'boolean' },
    }, USAGE);
    const configPath = requireString(values, 'config', USAGE);
    const weightsPath = requireString(values, 'weights', USAGE);
    const mimiConfigPath = typeof values['mimi-config'] === 'string' ? values['mimi-config'] : undefined;
    const mimiWeightsPath = requireString(values, 'mimi-weights', USAGE);
    const inPath = requireString(values, 'in', USAGE);
    const outPath = requireString(values, 'out', USAGE);
    const tokenizerPath = typeof values.tokenizer === 'string' ? values.tokenizer : undefined;
    const srtPath = typeof values.srt === 'string' ? values.srt : undefined;
    const vttPath = typeof values.vtt === 'string' ? values.vtt : undefined;
    if ((srtPath || vttPath) && !tokenizerPath) throw new UsageError(`--${srtPath ? 'srt' : 'vtt'} needs --tokenizer (subtitles are words)`, USAGE);

    // Everything that can be checked without the GPU, before loading anything.
    await checkOutputPath(outPath, 'out');
    if (srtPath) await checkOutputPath(srtPath, 'srt');
    if (vttPath) await checkOutputPath(vttPath, 'vtt');
    const cfg = parseLmConfig(await readJsonFile(configPath, 'STT config'), configPath);
    if (cfg.depQ > 0) {
      throw new CliInputError(`${configPath}: dep_q = ${cfg.depQ}${cfg.modelType ? ` (model_type '${cfg.modelType}')` : ''}: this is not a speech-to-text model (STT models have dep_q = 0, no depformer); use 'run' or 'lm generate' for Moshi`);
    }
    if (cfg.modelType !== null && cfg.modelType !== 'stt') io.stderr(`note: ${configPath} has model_type '${cfg.modelType}', not 'stt'; transcribing with dep_q = 0 as an STT model`);
    const mimiSource = mimiConfigPath ?? 'the released Mimi config (loaders.py _mimi_config)';
    const mimiBase = mimiConfigPath ? parseMimiConfig(await readJsonFile(mimiConfigPath, 'Mimi config'), mimiConfigPath) : MIMI_RELEASED_CONFIG;
    if (mimiBase.quantizer.n_q < cfg.nQ) {
      throw new CliInputError(`${mimiConfigPath ?? mimiSource}: the Mimi has ${mimiBase.quantizer.n_q} codebooks (quantizer.n_q), fewer than the n_q = ${cfg.nQ} the STT model in ${configPath} reads`);
    }
    const mimiCfg = { ...mimiBase, num_codebooks: cfg.nQ }; // CheckpointInfo.get_mimi: max(dep_q, n_q - dep_q)
    const stt = cfg.stt ?? STT_CONFIG_DEFAULTS;
    if (!cfg.stt) io.stderr(`note: ${configPath} has no stt_config: no silence prefix, no audio delay (run_inference.py defaults 0.0)`);

    const wav = decodeWav(await readInputFile(inPath, 'input'), inPath, { downmix: values.downmix === true });
    if (wav.samples.length === 0) throw new CliInputError(`${inPath}: the 'data' chunk holds no samples: nothing to transcribe`);
    if (wav.channels > 1) io.stderr(`${inPath}: ${wav.channels} channels downmixed to mono (mean)`);
    const rate = mimiCfg.sample_rate;
    let pcm = wav.samples;
    if (wav.sampleRate !== rate) {
      pcm = resample(pcm, wav.sampleRate, rate);
      io.stderr(`${inPath}: ${wav.sampleRate} Hz resampled to ${rate} Hz`);
    }
    const fs = rate / mimiCfg.frame_rate;
    const pad = sttPadding(stt, rate);
    const total = Math.floor((pad.left + pcm.length + pad.right) / fs);
    if (total > MAX_CODE_FRAMES) throw new CliInputError(`${inPath}: ${(pcm.length / rate / 60).toFixed(1)} min is ${total} frames with the padding, more than the ${MAX_CODE_FRAMES} this command takes at once: split the file`);
    const tokenizer = tokenizerPath ? await TextTokenizer.fromBytes(await readInputFile(tokenizerPath, 'tokenizer'), { source: tokenizerPath }) : null;
    if (tokenizer && tokenizer.vocabSize < cfg.textCard) {
      throw new CliInputError(`tokenizer ${tokenizerPath} has ${tokenizer.vocabSize} pieces, fewer than the model's text_card ${cfg.textCard}: wrong tokenizer for this model`);
    }
    const mimiFile = SafetensorsFile.parse(await readInputFile(mimiWeightsPath, 'Mimi weights'), mimiWeightsPath);
    let lmFile: SafetensorsFile;
    try {
      lmFile = await SafetensorsFile.fromBlob(await openInputBlob(weightsPath, 'STT weights'), weightsPath);
    } catch (e) {
      if (e instanceof SafetensorsError || e instanceof CliInputError) throw e;
      throw new CliInputError(`STT weights file '${weightsPath}' could not be read: ${(e as Error).message}`);
    }

    const ctx = await createNodeGpuContext();
    try {
      const t0 = performance.now();
      const fits = (what: string, cfgPath: string, wPath: string) => (e: unknown) => {
        if (e instanceof WeightError && !(e instanceof NonFiniteWeightError)) throw new CliInputError(`the ${what} config ${cfgPath} does not fit the weights ${wPath}: ${e.message}`);
        throw e;
      };
      const mimi = await MimiModel.load(ctx, mimiCfg, VarBuilder.fromSafetensors(ctx, [mimiFile])).catch(fits('Mimi', mimiSource, mimiWeightsPath));
      const lm = await LMModel.load(ctx, VarBuilder.fromSafetensors(ctx, [lmFile]), cfg).catch(fits('STT', configPath, weightsPath));
      const d = cfg.lmGen;
      const gen = new LMGen(lm, { temp: d.temp ?? LMGEN_DEFAULTS.temp, tempText: d.tempText ?? LMGEN_DEFAULTS.tempText, topK: d.topK ?? LMGEN_DEFAULTS.topK, topKText: d.topKText ?? LMGEN_DEFAULTS.topKText, seed: 0 });
      io.stderr(`loaded the STT model (${lm.format.name}, dim ${cfg.dim}, ${cfg.numLayers} layers, n_q ${cfg.nQ}, ${lm.numExtraHeads} extra heads) and Mimi (${mimi.numCodebooks} codebooks) in ${((performance.now() - t0) / 1000).toFixed(2)} s; ` +
        `${gen.tempText === 0 ? 'greedy' : `text temp ${gen.tempText}, top-k ${gen.topKText}, seed 0`}; audio delay ${stt.audioDelaySeconds} s, silence prefix ${stt.audioSilencePrefixSeconds} s`);
      const t1 = performance.now();
      const r = await transcribe(mimi, gen, pcm, {
        stt,
        onFrame: (f, n, tok) => {
          const piece = tokenizer && tok !== null ? tokenizer.decodePiece(tok) : null;
          if (io.verbose) io.stderr(`frame ${f + 1}/${n}: ${tok === null ? 'null' : `text ${tok}${piece ? ` '${piece}'` : ''}`}`);
        },
      });
      const ms = performance.now() - t1;
      const text = tokenizer ? tokenizer.decode(r.tokens) : '';
      const words = tokenizer ? timedWords(r, tokenizer, cfg.existingTextEndPaddingId) : undefined;
      await writeFile(outPath, transcriptionJson(r, tokenizer ? text : undefined, words));
      if (words && srtPath) await writeFile(srtPath, formatSrt(subtitleCues(words)));
      if (words && vttPath) await writeFile(vttPath, formatVtt(subtitleCues(words)));
      io.stderr(`${r.inputFrames} frames (${((r.inputFrames * fs) / rate).toFixed(2)} s with the padding) in ${(ms / 1000).toFixed(2)} s, ${(ms / r.inputFrames).toFixed(1)} ms/frame; ${r.tokens.length} text tokens${words ? `, ${words.length} words` : ''}; wrote ${[outPath, srtPath, vttPath].filter(Boolean).join(', ')}`);
      if (tokenizer) io.stdout(text.trim());
      gen.destroy();
      lm.destroy();
      mimi.destroy();
      if (r.nonFiniteSteps.length) {
        const n = r.nonFiniteSteps;
        throw new Error(`${n.length} of ${r.tokens.length} step(s) had non-finite text logits or extra-head probabilities (first: step ${n[0]}${n.length > 1 ? `, then ${n.slice(1, 5).join(', ')}${n.length > 5 ? ', …' : ''}` : ''}); ${outPath} was written but its tokens are not trustworthy`);
      }
    } finally {
      ctx.destroy();
    }
  },
};
