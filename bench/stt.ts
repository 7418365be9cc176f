/**
 * `npm run bench -- stt [--frames N] [--warmup N] [--seed S] [--mimi released|tiny]
 *   [--dim D] [--layers L] [--heads H] [--context C] [--text-card T] [--n-q Q] [--extra-heads E]`
 *
 * One 80 ms frame of Kyutai STT at its real size, on this adapter (Node, Dawn), with seeded random
 * weights generated in memory (no weight file is read):
 * - the LM step of kyutai/stt-1b-en_fr: dim 2048, 16 layers, 16 heads, context 750, text_card 8000,
 *   n_q 32, dep_q 0 (no depformer), card 2048, gated FFN (hidden_scale 4.125, SiLU), RMSNorm f32,
 *   RoPE, 4 extra (voice-activity) heads of dim 6; config built with src/models/lm_config.ts
 *   parseLmConfig; bf16 weights as the released checkpoint (bench/loop.ts lmRandomWeights:
 *   matrices N(0, 1/fan_in), embeddings N(0, 1), RMSNorm alpha 1). Timed:
 *   LMGen.stepWithExtraHeads(32 codes) (the transcription procedure's step, src/models/stt.ts),
 *   host codes in → text token and head probabilities out;
 * - the released Mimi's streaming encode with 32 codebooks (MIMI_RELEASED_CONFIG, num_codebooks 32,
 *   as STT reads them), random weights of bench/mimi.ts `mimiRandomWeights` for the key list
 *   ../shared/fixtures/ref/mimi_keys_full.json. Timed: MimiModel.encode of one 1920-sample frame.
 *
 * Each stage: `warmup` untimed frames, then the median wall time of `frames` timed frames (the KV
 * cache grows by one position per LM step, as in a transcription). Reported: median ms per 80 ms
 * frame, the real-time factor (ms / 80; < 1 keeps real time), the weight bytes one step reads at
 * least (LM: every matrix of the transformer, text_linear and the extra heads once, one embedding
 * row per stream; Mimi: the encoder's weights and every codebook), those bytes / time as GB/s,
 * and the adapter by name. On a software adapter (SwiftShader, llvmpipe) the figures are a CPU's,
 * labelled NOT A GPU; only a hardware adapter's are GPU figures.
 *
 * `--mimi tiny` and the size flags exist for the test (tests/unit/bench_stt.test.ts): the
 * fixture's tiny Mimi (ref/mimi_tiny_config.json, its key layout, random weights) and a small LM.
 * Writes bench/results/stt-<time>.json; `run` also returns the result object.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { FRAME_SAMPLES, STEP_BUDGET_MS } from '../src/engine/metrics.ts';
import type { AdapterSummary } from '../src/gpu/context.ts';
import { createNodeGpuContext } from '../src/gpu/node.ts';
import { LMModel } from '../src/models/lm.ts';
import { type LmConfig, mainDimFeedforward, parseLmConfig } from '../src/models/lm_config.ts';
import { LMGen } from '../src/models/lm_gen.ts';
import { MimiModel } from '../src/models/mimi.ts';
import { MIMI_RELEASED_CONFIG, type MimiConfig, parseMimiConfig } from '../src/models/mimi_config.ts';
import { gatingHidden } from '../src/modules/transformer.ts';
import { Rng } from '../src/selftest/rng.ts';
import { SafetensorsFile, type TensorEntry } from '../src/weights/safetensors.ts';
import { VarBuilder } from '../src/weights/var_builder.ts';
import { median, printTable, ROOT, writeResults } from './common.ts';
import { lmRandomWeights } from './loop.ts';
import { mimiRandomWeights, testSignal } from './mimi.ts';

interface KeySpec {
  name: string;
  shape: number[];
}

const FIXTURES_DIR = process.env.SOLACELIVE_FIXTURES ?? resolve(ROOT, '../shared/fixtures');

/** The lm_kwargs of kyutai/stt-1b-en_fr as this benchmark builds it (the sizes of the issue; delays all 0). */
export const STT_1B_LM_KWARGS = {
  dim: 2048,
  num_heads: 16,
  num_layers: 16,
  hidden_scale: 4.125,
  causal: true,
  layer_scale: null,
  context: 750,
  max_period: 100000,
  gating: 'silu',
  norm: 'rms_norm_f32',
  positional_embedding: 'rope',
  text_card: 8000,
  existing_text_padding_id: 3,
  n_q: 32,
  dep_q: 0,
  card: 2048,
  delays: new Array(33).fill(0),
  depformer_multi_linear: true,
  extra_heads_num_heads: 4,
  extra_heads_dim: 6,
  stt_config: { audio_delay_seconds: 0.5, audio_silence_prefix_seconds: 0.0 },
  model_type: 'stt',
} as const;

/**
 * Every checkpoint key `LMModel.load` reads for an STT config (dep_q 0, multi-linear: no
 * depformer keys), with its shape.
 * @throws Error when the config has a depformer (dep_q > 0) or a non-gated FFN: not an STT layout
 */
export function sttLmKeys(cfg: LmConfig): KeySpec[] {
  if (cfg.depQ !== 0 || !cfg.depformer.multiLinear) throw new Error(`bench stt: expected an STT config (dep_q 0, depformer_multi_linear), got dep_q ${cfg.depQ}`);
  if (cfg.gating === 'none' || cfg.norm === 'layer_norm' || cfg.layerScale !== null || cfg.biasProj) throw new Error('bench stt: expected a gated, RMS-normed LM without layer scale or biases (the STT layout)');
  const D = cfg.dim;
  const H = gatingHidden(D, mainDimFeedforward(cfg));
  const keys: KeySpec[] = [];
  for (let k = 0; k < cfg.nQ; k++) keys.push({ name: `emb.${k}.weight`, shape: [cfg.card + 1, D] });
  keys.push({ name: 'text_emb.weight', shape: [cfg.textCard + 1, D] });
  keys.push({ name: 'text_linear.weight', shape: [cfg.textCardOut, D] });
  keys.push({ name: 'out_norm.alpha', shape: [1, 1, D] });
  for (let l = 0; l < cfg.numLayers; l++) {
    const p = `transformer.layers.${l}.`;
    keys.push({ name: `${p}norm1.alpha`, shape: [1, 1, D] }, { name: `${p}norm2.alpha`, shape: [1, 1, D] });
    keys.push({ name: `${p}self_attn.in_proj_weight`, shape: [3 * D, D] }, { name: `${p}self_attn.out_proj.weight`, shape: [D, D] });
    keys.push({ name: `${p}gating.linear_in.weight`, shape: [2 * H, D] }, { name: `${p}gating.linear_out.weight`, shape: [D, H] });
  }
  for (let h = 0; h < cfg.extraHeadsNumHeads; h++) keys.push({ name: `extra_heads.${h}.weight`, shape: [cfg.extraHeadsDim, D] });
  return keys;
}

/** Bytes one LM step reads at least: every matrix but the embeddings once, one embedding row per stream (n_q audio + text). */
export function sttStepWeightBytes(entries: Map<string, TensorEntry>): number {
  let bytes = 0;
  for (const e of entries.values()) {
    if (/^(emb\.\d+|text_emb)\.weight$/.test(e.name)) bytes += e.data.byteLength / e.shape[0];
    else bytes += e.data.byteLength;
  }
  return bytes;
}

/** A software (CPU) Vulkan adapter: its timings are not GPU figures. */
export function isSoftwareAdapter(a: AdapterSummary): boolean {
  return a.isFallbackAdapter || /swiftshader|llvmpipe|lavapipe|software/i.test(`${a.vendor} ${a.architecture} ${a.device} ${a.description}`);
}

/** One timed stage of the result. */
export interface SttStage {
  medianMs: number;
  timesMs: number[];
  /** medianMs / 80. */
  realTimeFactor: number;
  /** Weight bytes one step / frame reads at least. */
  weightBytesPerStep: number;
  /** weightBytesPerStep / medianMs, GB/s. */
  gbps: number;
}

export interface SttBenchResult {
  bench: 'stt';
  date: string;
  adapter: AdapterSummary;
  /** 'NOT A GPU (software adapter …)' or 'GPU (…)': how to read the figures. */
  adapterLabel: string;
  software: boolean;
  lmConfig: { dim: number; numLayers: number; numHeads: number; context: number; textCard: number; nQ: number; depQ: number; card: number; extraHeads: number; extraHeadsDim: number; ffnHidden: number };
  lmParameters: number;
  mimi: 'released' | 'tiny';
  mimiCodebooks: number;
  warmupFrames: number;
  timedFrames: number;
  lm: SttStage;
  mimiEncode: SttStage;
  /** LM step + Mimi encode, per 80 ms frame. */
  total: { medianMs: number; realTimeFactor: number };
  gpuBytes: number;
  hostMs: { generateWeights: number; load: number };
}

const MB = 1024 * 1024;

export async function run(args: string[]): Promise<SttBenchResult> {
  const { values } = parseArgs({
    args,
    options: {
      frames: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '1' },
      seed: { type: 'string', default: '1234' },
      mimi: { type: 'string', default: 'released' },
      dim: { type: 'string' },
      layers: { type: 'string' },
      heads: { type: 'string' },
      context: { type: 'string' },
      'text-card': { type: 'string' },
      'n-q': { type: 'string' },
      'extra-heads': { type: 'string' },
    },
    strict: true,
  });
  const usage = 'usage: npm run bench -- stt [--frames N>=1] [--warmup N>=0] [--seed S] [--mimi released|tiny] [--dim D] [--layers L] [--heads H] [--context C] [--text-card T] [--n-q Q] [--extra-heads E]';
  const int = (v: string | undefined, name: string, min: number): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`bench stt: --${name} must be an integer >= ${min}, got '${v}'\n${usage}`);
    return n;
  };
  const frames = int(values.frames, 'frames', 1)!;
  const warmup = int(values.warmup, 'warmup', 0)!;
  const seed = int(values.seed, 'seed', 0)!;
  if (values.mimi !== 'released' && values.mimi !== 'tiny') throw new Error(`bench stt: --mimi must be 'released' or 'tiny', got '${values.mimi}'\n${usage}`);
  const mimiKind = values.mimi;
  const nQ = int(values['n-q'], 'n-q', 1) ?? STT_1B_LM_KWARGS.n_q;
  const lmCfg = parseLmConfig(
    {
      ...STT_1B_LM_KWARGS,
      dim: int(values.dim, 'dim', 8) ?? STT_1B_LM_KWARGS.dim,
      num_layers: int(values.layers, 'layers', 1) ?? STT_1B_LM_KWARGS.num_layers,
      num_heads: int(values.heads, 'heads', 1) ?? STT_1B_LM_KWARGS.num_heads,
      context: int(values.context, 'context', 1) ?? STT_1B_LM_KWARGS.context,
      text_card: int(values['text-card'], 'text-card', 4) ?? STT_1B_LM_KWARGS.text_card,
      n_q: nQ,
      delays: new Array(nQ + 1).fill(0),
      extra_heads_num_heads: int(values['extra-heads'], 'extra-heads', 0) ?? STT_1B_LM_KWARGS.extra_heads_num_heads,
    },
    'bench stt LM (kyutai/stt-1b-en_fr sizes)',
  );

  // Mimi: the released layout (32 codebooks) or the fixture's tiny one (the test).
  let mimiCfg: MimiConfig;
  let mimiKeys: KeySpec[];
  if (mimiKind === 'released') {
    mimiCfg = { ...MIMI_RELEASED_CONFIG, num_codebooks: nQ };
    mimiKeys = (JSON.parse(readFileSync(resolve(FIXTURES_DIR, 'ref/mimi_keys_full.json'), 'utf8')) as { checkpoint_layout_keys: KeySpec[] }).checkpoint_layout_keys;
  } else {
    const tinyCfg = parseMimiConfig(JSON.parse(readFileSync(resolve(FIXTURES_DIR, 'ref/mimi_tiny_config.json'), 'utf8')), 'ref/mimi_tiny_config.json');
    mimiCfg = { ...tinyCfg, num_codebooks: nQ };
    const st = SafetensorsFile.parse(readFileSync(resolve(FIXTURES_DIR, 'ref/mimi_tiny.safetensors')), 'ref/mimi_tiny.safetensors');
    mimiKeys = [...st.tensors.values()].map((e) => ({ name: e.name, shape: [...e.shape] }));
  }

  const tGen = performance.now();
  const lmEntries = lmRandomWeights(sttLmKeys(lmCfg), seed);
  const lmStepBytes = sttStepWeightBytes(lmEntries);
  const lmParameters = [...lmEntries.values()].reduce((a, e) => a + e.shape.reduce((p, d) => p * d, 1), 0);
  const mimiEntries = mimiRandomWeights(mimiKeys, mimiCfg, seed + 1);
  const encBytes = [...mimiEntries.values()].filter((e) => /^(encoder\.|encoder_transformer\.|downsample\.|quantizer\.)/.test(e.name)).reduce((a, e) => a + e.data.byteLength, 0);
  const genMs = performance.now() - tGen;

  const ctx = await createNodeGpuContext();
  try {
    const software = isSoftwareAdapter(ctx.adapter);
    const adapterName = `${ctx.adapter.vendor}/${ctx.adapter.architecture}${ctx.adapter.description ? ` (${ctx.adapter.description})` : ''}`;
    const adapterLabel = software
      ? `NOT A GPU: ${adapterName} is a software (CPU) adapter; these are CPU figures, not GPU figures`
      : `GPU: ${adapterName}`;
    const tLoad = performance.now();
    const lm = await LMModel.load(ctx, VarBuilder.fromEntries(ctx, lmEntries, 'seeded random STT LM (kyutai/stt-1b-en_fr sizes)'), lmCfg);
    lmEntries.clear();
    const mimi = await MimiModel.load(ctx, mimiCfg, VarBuilder.fromEntries(ctx, mimiEntries, `seeded random Mimi (${mimiKind} layout)`));
    mimiEntries.clear();
    const loadMs = performance.now() - tLoad;
    const gpuBytes = ctx.liveBytes;
    process.stderr.write(`stt bench: LM ${lmParameters.toLocaleString('en')} parameters (bf16), Mimi ${mimiKind} with ${nQ} codebooks; ${(gpuBytes / MB).toFixed(0)} MiB on the GPU; ${adapterLabel}; ${warmup} warm-up + ${frames} timed frames\n`);

    const total = warmup + frames;
    const pcm = testSignal(total * FRAME_SAMPLES, mimiCfg.sample_rate, seed);
    // Mimi encode: one frame per call, streaming; keep the codes for the LM steps.
    const codes: Int32Array[] = [];
    const encMs: number[] = [];
    mimi.reset();
    for (let t = 0; t < total; t++) {
      const t0 = performance.now();
      const c = await mimi.encode(pcm.subarray(t * FRAME_SAMPLES, (t + 1) * FRAME_SAMPLES)); // c: [nQ, 1]
      const ms = performance.now() - t0;
      if (c.length !== nQ) throw new Error(`bench stt: Mimi encode returned ${c.length} codes for one frame, expected ${nQ}`);
      codes.push(c.slice());
      if (t >= warmup) encMs.push(ms);
      process.stderr.write(`  mimi encode frame ${t}${t < warmup ? ' (warm-up)' : ''}: ${ms.toFixed(0)} ms\n`);
    }
    // LM: the transcription step (text token + extra heads) on those codes.
    const gen = new LMGen(lm, { temp: 0, tempText: 0, seed });
    const lmMs: number[] = [];
    try {
      for (let t = 0; t < total; t++) {
        const t0 = performance.now();
        const r = lmCfg.extraHeadsNumHeads > 0 ? await gen.stepWithExtraHeads(codes[t]) : await gen.step(codes[t]);
        const ms = performance.now() - t0;
        if (!r) throw new Error(`bench stt: LMGen returned nothing at step ${t} (the STT delays are all 0)`);
        if (t >= warmup) lmMs.push(ms);
        process.stderr.write(`  lm step ${t}${t < warmup ? ' (warm-up)' : ''}: ${ms.toFixed(0)} ms (text token ${r.text})\n`);
      }
    } finally {
      gen.destroy();
    }
    lm.destroy();
    mimi.destroy();

    const stage = (times: number[], bytes: number): SttStage => {
      const m = median(times);
      return { medianMs: m, timesMs: times, realTimeFactor: m / STEP_BUDGET_MS, weightBytesPerStep: bytes, gbps: bytes / (m * 1e6) };
    };
    const lmStage = stage(lmMs, lmStepBytes);
    const encStage = stage(encMs, encBytes);
    const both = lmStage.medianMs + encStage.medianMs;
    const result: SttBenchResult = {
      bench: 'stt',
      date: new Date().toISOString(),
      adapter: ctx.adapter,
      adapterLabel,
      software,
      lmConfig: {
        dim: lmCfg.dim, numLayers: lmCfg.numLayers, numHeads: lmCfg.numHeads, context: lmCfg.context, textCard: lmCfg.textCard, nQ: lmCfg.nQ, depQ: lmCfg.depQ,
        card: lmCfg.card, extraHeads: lmCfg.extraHeadsNumHeads, extraHeadsDim: lmCfg.extraHeadsDim, ffnHidden: gatingHidden(lmCfg.dim, mainDimFeedforward(lmCfg)),
      },
      lmParameters,
      mimi: mimiKind,
      mimiCodebooks: nQ,
      warmupFrames: warmup,
      timedFrames: frames,
      lm: lmStage,
      mimiEncode: encStage,
      total: { medianMs: both, realTimeFactor: both / STEP_BUDGET_MS },
      gpuBytes,
      hostMs: { generateWeights: genMs, load: loadMs },
    };
    console.log(`\nKyutai STT per 80 ms frame: LM ${lmCfg.dim} × ${lmCfg.numLayers} layers, ${lmCfg.numHeads} heads, context ${lmCfg.context}, text_card ${lmCfg.textCard}, n_q ${lmCfg.nQ}, dep_q 0, ${lmCfg.extraHeadsNumHeads} extra heads × ${lmCfg.extraHeadsDim} (${lmParameters.toLocaleString('en')} parameters, bf16, seeded random); Mimi ${mimiKind} streaming encode, ${nQ} codebooks (seeded random)`);
    console.log(`adapter: ${adapterLabel}`);
    printTable(
      ['stage', 'median ms / 80 ms frame', 'min ms', 'max ms', 'real-time factor', 'weight MiB / step', 'GB/s'],
      [
        ['LM step (stepWithExtraHeads)', lmStage.medianMs, Math.min(...lmMs), Math.max(...lmMs), lmStage.realTimeFactor, lmStepBytes / MB, lmStage.gbps],
        ['Mimi encode (32 codebooks)'.replace('32', String(nQ)), encStage.medianMs, Math.min(...encMs), Math.max(...encMs), encStage.realTimeFactor, encBytes / MB, encStage.gbps],
        ['LM + Mimi encode', both, Math.min(...lmMs) + Math.min(...encMs), Math.max(...lmMs) + Math.max(...encMs), both / STEP_BUDGET_MS, (lmStepBytes + encBytes) / MB, (lmStepBytes + encBytes) / (both * 1e6)],
      ],
    );
    console.log(`${warmup} warm-up + ${frames} timed frames; GPU memory ${(gpuBytes / MB).toFixed(0)} MiB; host: weight generation ${(genMs / 1000).toFixed(1)} s, load ${(loadMs / 1000).toFixed(1)} s${software ? '\nNOT A GPU: real-time factors here say how this CPU does through a software adapter, nothing about a GPU.' : ''}`);
    console.log(`wrote ${writeResults('stt', result)}`);
    return result;
  } finally {
    ctx.destroy();
  }
}
