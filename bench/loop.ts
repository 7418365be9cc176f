/**
 * `npm run bench -- loop [--steps N] [--warmup N] [--lm-dim D] [--lm-layers L] [--seed S] [--layer-blocks on|off|ab] [--models random-7b|ref]`
 *
 * The per-step time split (encode / LM / decode) of the engine's 80 ms loop on this adapter
 * (Node, Dawn), with seeded random weights generated in memory (no weight file is read):
 * - Mimi at the released size (MIMI_RELEASED_CONFIG; the key list of
 *   ../shared/fixtures/ref/mimi_keys_full.json, distributions of bench/mimi.ts `mimiRandomWeights`);
 * - the Moshi LM with the 7B's real-size depformer (dim 1024, 6 layers, 16 heads, FFN 2816,
 *   8 steps with per-step weights, card 2048) and text head (32000), bf16 like the released
 *   checkpoint, but a SMALL temporal transformer (default dim 512, 2 layers, 8 heads instead of
 *   4096 × 32 × 32: the 7B's 15 GB of weights do not fit this machine). The report labels it.
 *   Keys: the 7B checkpoint layout (moshi7b_keys_full.json) with layers >= L dropped and the
 *   temporal dims rescaled (4096 -> D, gating hidden 11264 -> the config's, 3·4096 -> 3·D).
 * Weights: matrices N(0, 1/fan_in), RMSNorm alpha 1, embeddings N(0, 1).
 *
 * The loop is the Engine's recording-level path (three command buffers back to back, one
 * readback per step) with the official sampling defaults (temp 0.8 / 0.7, top-k 250 / 25) on
 * the fixture speech. Stage times come from queue.onSubmittedWorkDone after each stage's submit.
 * Also prints the step's GPU work, deterministic on any adapter (Engine StepResult.gpuWork):
 *   dispatches per step: N (temporal layer: a, depformer: b, mimi: c), submits: S, readbacks: R
 * where a = dispatches of one temporal layer (the transformer's last forward / its layers), b = the
 * rest of the LM step (depformer, embeddings, heads, sampling, logit checks), c = Mimi encode +
 * decode, and N = 32·a + b + c is the count of the full 32-layer 7B step with this adapter's kernel
 * choices (a hardware adapter also splits long attention: flash-decoding adds a combine pass).
 * `--layer-blocks`: the depformer's and Mimi's layers as split-K layer blocks (src/kernels/
 * layer_block.ts; 'on', the default), as the fused matvecs ('off'), or 'ab': the timed steps
 * alternate between the two in one run (even steps on, odd off), and a line gives each one's median
 * step and stage split, its dispatch count and the ratio on ÷ off (the table then covers both).
 * `--models ref`: the tiny fixture models of ../shared/fixtures/ref (real files, through
 * loadEngine) instead of the random released-size ones: the loop the real-time tests run; prints
 * the measured dispatches of that step (no 7B extrapolation).
 * Writes bench/results/loop-<time>.json.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { decodeWav } from '../src/audio/wav.ts';
import { Engine, type GpuWork } from '../src/engine/engine.ts';
import { loadEngine, mimiLmLoop } from '../src/engine/load.ts';
import { FRAME_SAMPLES, STEP_BUDGET_MS, percentiles } from '../src/engine/metrics.ts';
import type { GpuContext } from '../src/gpu/index.ts';
import { createNodeGpuContext } from '../src/gpu/node.ts';
import { LMModel } from '../src/models/lm.ts';
import { MOSHI_7B_LM_KWARGS, mainDimFeedforward, parseLmConfig } from '../src/models/lm_config.ts';
import { LMGen } from '../src/models/lm_gen.ts';
import { MimiModel } from '../src/models/mimi.ts';
import { gatingHidden } from '../src/modules/transformer.ts';
import { MIMI_RELEASED_CONFIG } from '../src/models/mimi_config.ts';
import type { TensorEntry } from '../src/weights/safetensors.ts';
import { hostToEntry, VarBuilder } from '../src/weights/var_builder.ts';
import { Rng } from '../src/selftest/rng.ts';
import { measureCopyBandwidth, printTable, ROOT, writeResults } from './common.ts';
import { mimiRandomWeights } from './mimi.ts';

interface KeySpec {
  name: string;
  shape: number[];
}

const FIXTURES_DIR = process.env.SOLACELIVE_FIXTURES ?? resolve(ROOT, '../shared/fixtures');

/**
 * The 7B checkpoint keys rescaled to a temporal transformer of `dim` × `layers` whose gated FFN
 * has `hidden` units (ActivationGating: linear_in [2·hidden, dim], linear_out [dim, hidden]; the
 * 7B's 11264); the depformer and the heads keep their sizes.
 */
export function scaledLmKeys(keys: KeySpec[], dim: number, layers: number, hidden: number): KeySpec[] {
  const D7 = 4096;
  const H7 = 11264;
  const out: KeySpec[] = [];
  for (const k of keys) {
    const m = /^transformer\.layers\.(\d+)\./.exec(k.name);
    if (m && Number(m[1]) >= layers) continue;
    if (k.name.startsWith('condition_provider') || k.name.startsWith('fuser')) continue;
    const shape = k.shape.map((d) => (d === D7 ? dim : d === 3 * D7 ? 3 * dim : d === H7 ? hidden : d === 2 * H7 ? 2 * hidden : d));
    out.push({ name: k.name, shape });
  }
  return out;
}

/** Seeded bf16 random LM weights for `keys` (see the module comment). */
export function lmRandomWeights(keys: KeySpec[], seed: number): Map<string, TensorEntry> {
  const rng = new Rng(seed);
  const out = new Map<string, TensorEntry>();
  for (const { name, shape } of keys) {
    const n = shape.reduce((a, b) => a * b, 1);
    let v: Float32Array;
    if (name.endsWith('.alpha')) v = new Float32Array(n).fill(1);
    else if (/(^|\.)(emb\.\d+|text_emb|depformer_emb\.\d+|depformer_text_emb)\.weight$/.test(name)) v = rng.normals(n, 1);
    else v = rng.normals(n, 1 / Math.sqrt(shape[shape.length - 1]));
    out.set(name, hostToEntry(name, v, shape, name.endsWith('.alpha') ? 'F32' : 'BF16'));
  }
  return out;
}

export async function run(args: string[]): Promise<unknown> {
  const { values } = parseArgs({
    args,
    options: {
      steps: { type: 'string', default: '6' },
      warmup: { type: 'string', default: '2' },
      'lm-dim': { type: 'string', default: '512' },
      'lm-layers': { type: 'string', default: '2' },
      seed: { type: 'string', default: '1' },
      'layer-blocks': { type: 'string', default: 'on' },
      models: { type: 'string', default: 'random-7b' },
    },
    strict: true,
  });
  const blocksMode = values['layer-blocks'];
  if (blocksMode !== 'on' && blocksMode !== 'off' && blocksMode !== 'ab') throw new Error(`bench loop: --layer-blocks must be on, off or ab, got '${blocksMode}'`);
  if (values.models !== 'random-7b' && values.models !== 'ref') throw new Error(`bench loop: --models must be random-7b or ref, got '${values.models}'`);
  const steps = Number(values.steps);
  const warmup = Number(values.warmup);
  const dim = Number(values['lm-dim']);
  const layers = Number(values['lm-layers']);
  const seed = Number(values.seed);
  for (const [k, v] of Object.entries({ steps, warmup, dim, layers, seed })) {
    if (!Number.isInteger(v) || v < 0) throw new Error(`bench loop: --${k} must be a non-negative integer`);
  }
  if (dim % 64 !== 0 || dim < 64) throw new Error('bench loop: --lm-dim must be a positive multiple of 64 (heads of 64)');

  const ctx = await createNodeGpuContext();
  try {
    if (values.models === 'ref') return await runRef(ctx, { steps, warmup, seed, blocksMode });
    const copy = await measureCopyBandwidth(ctx, { bytes: 32 * 1024 * 1024, runs: 3 });
    // Mimi, released size.
    const mimiKeys = (JSON.parse(readFileSync(resolve(FIXTURES_DIR, 'ref/mimi_keys_full.json'), 'utf8')) as { checkpoint_layout_keys: KeySpec[] }).checkpoint_layout_keys;
    const t0 = performance.now();
    const mimi = await MimiModel.load(ctx, MIMI_RELEASED_CONFIG, VarBuilder.fromEntries(ctx, mimiRandomWeights(mimiKeys, MIMI_RELEASED_CONFIG, seed), 'random mimi'));
    // LM: real depformer, small temporal transformer.
    const lmCfg = parseLmConfig({ ...MOSHI_7B_LM_KWARGS, dim, num_layers: layers, num_heads: dim / 64 }, 'bench loop LM');
    const lmKeys = (JSON.parse(readFileSync(resolve(FIXTURES_DIR, 'ref/moshi7b_keys_full.json'), 'utf8')) as { checkpoint_layout_keys: KeySpec[] }).checkpoint_layout_keys;
    const lm = await LMModel.load(ctx, VarBuilder.fromEntries(ctx, lmRandomWeights(scaledLmKeys(lmKeys, dim, layers, gatingHidden(dim, mainDimFeedforward(lmCfg))), seed + 1), 'random lm'), lmCfg);
    const loadS = (performance.now() - t0) / 1000;
    const gen = new LMGen(lm, { seed });
    const loop = mimiLmLoop(ctx, mimi, lmCfg.depQ, () => gen, () => gen.reset());
    const engine = new Engine({ gpu: loop }, null, { userCodebooks: lmCfg.nQ - lmCfg.depQ, depQ: lmCfg.depQ });
    const speech = decodeWav(readFileSync(resolve(FIXTURES_DIR, 'ref/mimi/input_speech_24k_pcm16.wav'))).samples;
    const frame = (t: number) => speech.subarray((t * FRAME_SAMPLES) % (speech.length - FRAME_SAMPLES), ((t * FRAME_SAMPLES) % (speech.length - FRAME_SAMPLES)) + FRAME_SAMPLES);
    // LMGen returns null on step 0 (no decode): warm up past it so every timed step decodes.
    const { rows, byMode, workByMode, work } = await timedSteps(ctx, engine, frame, { steps, warmup, blocksMode });
    const perLayer = lm.transformer.lastForwardDispatches / layers;
    const lmRest = work.stages.lm - perLayer * layers;
    const mimiDispatches = work.stages.encode + work.stages.decode;
    const dispatches7b = 32 * perLayer + lmRest + mimiDispatches;
    const dispatchLine = `dispatches per step: ${dispatches7b} (temporal layer: ${perLayer}, depformer: ${lmRest}, mimi: ${mimiDispatches}), submits: ${work.submits}, readbacks: ${work.readbacks}`;
    const col = (k: keyof (typeof rows)[number]) => percentiles(rows.map((r) => r[k]));
    const split = { encodeMs: col('encodeMs'), lmMs: col('lmMs'), decodeMs: col('decodeMs'), totalMs: col('totalMs') };
    const label = `Mimi (released size) + LM: real 7B depformer (1024 × 6, 8 steps), text head 32000, SMALL temporal transformer ${dim} × ${layers} (7B: 4096 × 32), bf16 weights`;
    printTable(
      ['stage', 'median ms', 'p95 ms', 'max ms', 'share of step', 'vs 80 ms budget'],
      (['encodeMs', 'lmMs', 'decodeMs', 'totalMs'] as const).map((k) => [k.replace('Ms', ''), split[k].p50, split[k].p95, split[k].max, `${((split[k].p50 / split.totalMs.p50) * 100).toFixed(0)}%`, `${(split[k].p50 / STEP_BUDGET_MS).toFixed(2)}×`]),
      `${label}\n${ctx.adapter.vendor} ${ctx.adapter.architecture} (${ctx.adapter.isFallbackAdapter ? 'software fallback adapter' : 'hardware'}), copy bandwidth ${copy.gbps.toFixed(2)} GB/s; ${steps} timed steps after ${Math.max(warmup, 1)} warm-up; load ${loadS.toFixed(1)} s; GPU memory ${(ctx.liveBytes / 2 ** 20).toFixed(0)} MiB`,
    );
    console.log(`${dispatchLine}\n  (N = 32 × temporal layer + depformer + mimi: the full 7B step with this adapter's kernel choices; measured here: ${work.dispatches} with ${layers} temporal layers)`);
    const ab = blocksMode === 'ab' ? abLine(byMode, workByMode) : null;
    const result = { label, adapter: ctx.adapter, copyBandwidthGBps: copy.gbps, layerBlocks: blocksMode, layerBlocksAB: ab, steps, warmup: Math.max(warmup, 1), lm: { dim, layers, depformer: lmCfg.depformer }, split, rows, gpuBytes: ctx.liveBytes, gpuWork: { ...work, temporalLayer: perLayer, lmRest, mimi: mimiDispatches, dispatches7b, line: dispatchLine } };
    console.log(`results: ${writeResults('loop', result)}`);
    gen.destroy();
    mimi.destroy();
    lm.destroy();
    return result;
  } finally {
    ctx.destroy();
  }
}

type StepTimings = { encodeMs: number; lmMs: number; decodeMs: number; totalMs: number };

/**
 * Steps the engine (warm-up steps first, at least 1: LMGen decodes nothing on step 0) with the
 * layer blocks `blocksMode` ('ab': on for even steps, off for odd ones); returns the timed steps'
 * timings, per mode, and the GPU work of the last decoding step of each mode.
 */
async function timedSteps(ctx: GpuContext, engine: Engine, frame: (t: number) => Float32Array, o: { steps: number; warmup: number; blocksMode: 'on' | 'off' | 'ab' }) {
  const rows: StepTimings[] = [];
  const byMode = { on: [] as StepTimings[], off: [] as StepTimings[] };
  const workByMode: { on: GpuWork | null; off: GpuWork | null } = { on: null, off: null };
  const base = ctx.kernelChoice;
  let work: GpuWork | null = null;
  try {
    for (let t = 0; t < Math.max(o.warmup, 1) + o.steps; t++) {
      const mode = o.blocksMode === 'ab' ? (t % 2 === 0 ? 'on' : 'off') : o.blocksMode;
      ctx.kernelChoice = { ...base, layerBlocks: mode };
      const r = await engine.step(frame(t));
      if (t >= Math.max(o.warmup, 1)) {
        rows.push(r.timings);
        byMode[mode].push(r.timings);
      }
      if (r.frame && !r.decodeSkipped) {
        workByMode[mode] = r.gpuWork;
        if (mode === (o.blocksMode === 'off' ? 'off' : 'on')) work = r.gpuWork;
      }
    }
  } finally {
    ctx.kernelChoice = base;
  }
  if (!work) throw new Error('bench loop: no step decoded (raise --steps)');
  return { rows, byMode, workByMode, work };
}

/** The --layer-blocks ab line: each mode's median step and stage split, dispatches, on ÷ off. */
function abLine(byMode: { on: StepTimings[]; off: StepTimings[] }, workByMode: { on: GpuWork | null; off: GpuWork | null }) {
  if (!workByMode.on || !workByMode.off || !byMode.on.length || !byMode.off.length) return null;
  const med = (r: StepTimings[], k: keyof StepTimings) => percentiles(r.map((x) => x[k])).p50;
  const split = (r: StepTimings[]) => ({ encodeMs: med(r, 'encodeMs'), lmMs: med(r, 'lmMs'), decodeMs: med(r, 'decodeMs'), totalMs: med(r, 'totalMs') });
  const on = split(byMode.on);
  const off = split(byMode.off);
  const ab = { on, off, ratio: on.totalMs / off.totalMs, onDispatches: workByMode.on.dispatches, offDispatches: workByMode.off.dispatches, stepsEach: [byMode.on.length, byMode.off.length] };
  const f = (x: typeof on) => `${x.totalMs.toFixed(1)} ms (encode ${x.encodeMs.toFixed(1)} / LM ${x.lmMs.toFixed(1)} / decode ${x.decodeMs.toFixed(1)})`;
  console.log(`layer blocks, alternating steps in this run (${ab.stepsEach.join(' + ')} timed): on ${f(on)}, ${ab.onDispatches} dispatches measured; off ${f(off)}, ${ab.offDispatches}; on ÷ off = ${ab.ratio.toFixed(2)} (${ab.ratio < 1 ? 'blocks faster' : 'blocks slower'} on this adapter)`);
  return ab;
}

/** --models ref: the tiny fixture Mimi + LM (the real-time tests' models) through loadEngine. */
async function runRef(ctx: GpuContext, o: { steps: number; warmup: number; seed: number; blocksMode: 'on' | 'off' | 'ab' }): Promise<unknown> {
  const dir = resolve(FIXTURES_DIR, 'ref');
  const json = (f: string) => JSON.parse(readFileSync(resolve(dir, f), 'utf8'));
  const loaded = await loadEngine(ctx, {
    mimiConfig: json('mimi_tiny_config.json'), mimiWeights: new Uint8Array(readFileSync(resolve(dir, 'mimi_tiny.safetensors'))),
    lmConfig: json('moshi_tiny_config.json'), lmWeights: new Uint8Array(readFileSync(resolve(dir, 'moshi_tiny.safetensors'))),
    tokenizer: null, names: {}, origins: {},
  }, { sampling: { temp: 0.8, tempText: 0.7, topK: 250, topKText: 25, seed: o.seed }, condition: null });
  try {
    const speech = decodeWav(readFileSync(resolve(dir, 'mimi/input_speech_24k_pcm16.wav'))).samples;
    const frame = (t: number) => speech.subarray((t * FRAME_SAMPLES) % (speech.length - FRAME_SAMPLES), ((t * FRAME_SAMPLES) % (speech.length - FRAME_SAMPLES)) + FRAME_SAMPLES);
    const { rows, byMode, workByMode, work } = await timedSteps(ctx, loaded.engine, frame, o);
    const total = percentiles(rows.map((r) => r.totalMs));
    const label = 'tiny fixture models (ref Mimi + LM, real files)';
    console.log(`${label}\n${ctx.adapter.vendor} ${ctx.adapter.architecture} (${ctx.adapter.isFallbackAdapter ? 'software fallback adapter' : 'hardware'}); ${o.steps} timed steps after ${Math.max(o.warmup, 1)} warm-up\nstep median ${total.p50.toFixed(1)} ms, p95 ${total.p95.toFixed(1)} ms; dispatches in this step: ${work.dispatches}, submits: ${work.submits}, readbacks: ${work.readbacks}`);
    const ab = o.blocksMode === 'ab' ? abLine(byMode, workByMode) : null;
    const result = { label, adapter: ctx.adapter, layerBlocks: o.blocksMode, layerBlocksAB: ab, steps: o.steps, rows, gpuWork: work };
    console.log(`results: ${writeResults('loop', result)}`);
    return result;
  } finally {
    loaded.dispose();
  }
}
