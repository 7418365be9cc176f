/**
 * `npm run bench -- loop [--steps N] [--warmup N] [--lm-dim D] [--lm-layers L] [--seed S] [--layer-blocks on|off|ab]`
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
 * step, its dispatch count and the ratio on ÷ off (the table then covers both).
 * Writes bench/results/loop-<time>.json.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { decodeWav } from '../src/audio/wav.ts';
import { Engine, type GpuWork } from '../src/engine/engine.ts';
import { mimiLmLoop } from '../src/engine/load.ts';
import { FRAME_SAMPLES, STEP_BUDGET_MS, percentiles } from '../src/engine/metrics.ts';
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
    },
    strict: true,
  });
  const blocksMode = values['layer-blocks'];
  if (blocksMode !== 'on' && blocksMode !== 'off' && blocksMode !== 'ab') throw new Error(`bench loop: --layer-blocks must be on, off or ab, got '${blocksMode}'`);
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
    const rows: { encodeMs: number; lmMs: number; decodeMs: number; totalMs: number }[] = [];
    const byMode = { on: [] as number[], off: [] as number[] };
    const workByMode: { on: GpuWork | null; off: GpuWork | null } = { on: null, off: null };
    const base = ctx.kernelChoice;
    let work: GpuWork | null = null;
    for (let t = 0; t < Math.max(warmup, 1) + steps; t++) {
      const mode = blocksMode === 'ab' ? (t % 2 === 0 ? 'on' : 'off') : blocksMode;
      ctx.kernelChoice = { ...base, layerBlocks: mode };
      const r = await engine.step(frame(t));
      if (t >= Math.max(warmup, 1)) {
        rows.push(r.timings);
        byMode[mode].push(r.timings.totalMs);
      }
      if (r.frame && !r.decodeSkipped) {
        workByMode[mode] = r.gpuWork;
        if (mode === (blocksMode === 'off' ? 'off' : 'on')) work = r.gpuWork;
      }
    }
    ctx.kernelChoice = base;
    if (!work) throw new Error('bench loop: no step decoded (raise --steps)');
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
    let ab: { onMs: number; offMs: number; ratio: number; onDispatches: number; offDispatches: number } | null = null;
    if (blocksMode === 'ab' && workByMode.on && workByMode.off && byMode.on.length && byMode.off.length) {
      const onMs = percentiles(byMode.on).p50;
      const offMs = percentiles(byMode.off).p50;
      ab = { onMs, offMs, ratio: onMs / offMs, onDispatches: workByMode.on.dispatches, offDispatches: workByMode.off.dispatches };
      console.log(`layer blocks, alternating steps in this run: on ${onMs.toFixed(1)} ms (${ab.onDispatches} dispatches measured), off ${offMs.toFixed(1)} ms (${ab.offDispatches}); on ÷ off = ${ab.ratio.toFixed(2)} (${ab.ratio < 1 ? 'blocks faster' : 'blocks slower'} on this adapter)`);
    }
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
