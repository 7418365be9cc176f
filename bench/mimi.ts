/**
 * `npm run bench -- mimi [--frames N] [--warmup N] [--no-profile] [--seed S]`
 *
 * The released Mimi's real size (MIMI_RELEASED_CONFIG: SEANet 512, 8-layer transformer, 32 × 2048
 * codebooks, 8 emitted) with seeded random weights generated in memory for every key of the
 * checkpoint layout in ../shared/fixtures/ref/mimi_keys_full.json (no weight file is read):
 * conv / linear weights N(0, 1/fan_in), transposed convs N(0, stride/(in/groups·k)), biases
 * 0.01·N, LayerNorm weight 1 + 0.1·N and bias 0.1·N, layer scales 0.01, codebooks with centroids
 * N(0, 1), cluster_usage U(0.5, 2) > 0 and embedding_sum = centroid·usage, `_initialized` = 1.
 *
 * Measures streaming encode (one 1920-sample frame per MimiModel.encode call) and streaming decode
 * (one frame per MimiModel.decode call) on Node's WebGPU (Dawn): `warmup` untimed frames, then the
 * median wall time of `frames` timed frames, host input to host output. Reports ms per 80 ms frame,
 * the real-time factor (ms / 80), GPU memory (ctx.liveBytes after load, ctx.peakBytes), and the
 * per-kernel GPU time from the timestamp profiler. The timed frames run without the profiler;
 * the same frames then run again, from a fresh state, profiled (each dispatch in its own pass)
 * for the per-kernel table (`--no-profile` skips that pass). Writes bench/results/mimi-<time>.json.
 *
 * On a software adapter (SwiftShader) one frame takes seconds: the defaults (1 warm-up + 3 timed
 * frames) keep the run to a few minutes; the numbers say how this adapter does, not a GPU.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createNodeGpuContext } from '../src/gpu/node.ts';
import { MimiModel } from '../src/models/mimi.ts';
import { MIMI_RELEASED_CONFIG, type MimiConfig } from '../src/models/mimi_config.ts';
import type { TensorEntry } from '../src/weights/safetensors.ts';
import { hostToEntry, VarBuilder } from '../src/weights/var_builder.ts';
import { Rng } from '../src/selftest/rng.ts';
import { measureCopyBandwidth, median, printTable, ROOT, writeResults } from './common.ts';

interface KeySpec {
  name: string;
  shape: number[];
}

const FRAME_MS = 80;
const FIXTURES_DIR = process.env.SOLACELIVE_FIXTURES ?? resolve(ROOT, '../shared/fixtures');

/**
 * Seeded random weights for every checkpoint key of the real Mimi (see the module comment for
 * the distributions). Throws when the key list has a key whose kind it does not know.
 */
export function mimiRandomWeights(keys: KeySpec[], config: MimiConfig, seed: number): Map<string, TensorEntry> {
  const rng = new Rng(seed);
  const out = new Map<string, TensorEntry>();
  const ratios = config.seanet.ratios; // decoder order [8, 6, 5, 4]
  // Decoder convtr layer index i (2, 5, 8, 11) -> stride ratios[(i - 2) / 3].
  const convtrStride = (name: string): number => {
    if (name.startsWith('upsample.')) return 2;
    const m = /^decoder\.model\.(\d+)\.convtr/.exec(name);
    if (!m) throw new Error(`bench mimi: unknown transposed conv key '${name}'`);
    return ratios[(Number(m[1]) - 2) / 3];
  };
  for (const { name, shape } of keys) {
    const n = shape.reduce((a, b) => a * b, 1);
    let v: Float32Array;
    if (name.endsWith('._initialized')) v = new Float32Array(n).fill(1);
    else if (name.endsWith('.cluster_usage')) v = rng.uniforms(n, 0.5, 2);
    else if (name.endsWith('.embedding_sum')) {
      const usageKey = name.replace(/embedding_sum$/, 'cluster_usage');
      const usage = out.get(usageKey);
      const [bins, dim] = shape;
      let u: Float32Array;
      if (usage) u = new Float32Array(usage.data.buffer, usage.data.byteOffset, bins);
      else {
        u = rng.uniforms(bins, 0.5, 2);
        out.set(usageKey, hostToEntry(usageKey, u, [bins], 'F32'));
      }
      v = rng.normals(n, 1);
      for (let b = 0; b < bins; b++) for (let d = 0; d < dim; d++) v[b * dim + d] *= u[b];
    } else if (name.endsWith('.scale')) v = new Float32Array(n).fill(0.01);
    else if (/norm\d*\.weight$/.test(name)) v = Float32Array.from(rng.normals(n, 0.1), (x) => 1 + x);
    else if (/norm\d*\.bias$/.test(name)) v = rng.normals(n, 0.1);
    else if (name.endsWith('.bias')) v = rng.normals(n, 0.01);
    else if (name.endsWith('convtr.weight')) {
      const [cin, coutPerGroup, k] = shape;
      const groups = name.startsWith('upsample.') ? cin : 1;
      const fan = ((cin / groups) * k) / convtrStride(name);
      void coutPerGroup;
      v = rng.normals(n, 1 / Math.sqrt(fan));
    } else if (name.endsWith('.weight') || name.endsWith('in_proj_weight')) {
      const fan = shape.slice(1).reduce((a, b) => a * b, 1); // [out, in(, k)]
      v = rng.normals(n, 1 / Math.sqrt(fan));
    } else throw new Error(`bench mimi: no random initialisation rule for key '${name}' [${shape.join(', ')}]`);
    if (!out.has(name)) out.set(name, hostToEntry(name, v, shape, 'F32'));
  }
  return out;
}

/** A deterministic speech-like test signal: a few harmonics with vibrato plus a little noise; n samples at `rate` Hz, f32. */
export function testSignal(n: number, rate: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const t = i / rate;
    const f0 = 140 + 20 * Math.sin(2 * Math.PI * 3 * t);
    let s = 0;
    for (let h = 1; h <= 6; h++) s += Math.sin(2 * Math.PI * f0 * h * t) / h;
    x[i] = 0.2 * s + 0.01 * rng.normal();
  }
  return x;
}

const MB = 1024 * 1024;

export async function run(args: string[]): Promise<unknown> {
  const { values } = parseArgs({
    args,
    options: {
      frames: { type: 'string', default: '3' },
      warmup: { type: 'string', default: '1' },
      seed: { type: 'string', default: '1234' },
      'no-profile': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const frames = Number(values.frames);
  const warmup = Number(values.warmup);
  const seed = Number(values.seed);
  if (!Number.isInteger(frames) || frames < 1 || !Number.isInteger(warmup) || warmup < 0) {
    throw new Error('usage: npm run bench -- mimi [--frames N>=1] [--warmup N>=0] [--seed S] [--no-profile]');
  }
  const profile = !values['no-profile'];
  const keysFile = resolve(FIXTURES_DIR, 'ref/mimi_keys_full.json');
  const keyList = JSON.parse(readFileSync(keysFile, 'utf8')) as { checkpoint_layout_keys: KeySpec[] };
  const config: MimiConfig = { ...MIMI_RELEASED_CONFIG, num_codebooks: 8 };

  const tGen = performance.now();
  const entries = mimiRandomWeights(keyList.checkpoint_layout_keys, config, seed);
  const params = [...entries.values()].reduce((a, e) => a + e.shape.reduce((p, d) => p * d, 1), 0);
  const genMs = performance.now() - tGen;

  // Weight bytes each direction must read at least once per frame (f32): a floor on its traffic.
  const bytesOf = (re: RegExp) => [...entries.values()].filter((e) => re.test(e.name)).reduce((a, e) => a + e.data.byteLength, 0);
  const encWeightBytes = bytesOf(/^(encoder\.|encoder_transformer\.|downsample\.|quantizer\.)/);
  const decWeightBytes = bytesOf(/^(decoder\.|decoder_transformer\.|upsample\.|quantizer\.)/);

  const ctx = await createNodeGpuContext({ profile });
  try {
    const copy = await measureCopyBandwidth(ctx);
    const tLoad = performance.now();
    const model = await MimiModel.load(ctx, config, VarBuilder.fromEntries(ctx, entries, `seeded random weights (layout of ${keysFile})`));
    const loadMs = performance.now() - tLoad;
    const weightBytes = ctx.liveBytes;
    const fs = model.frameSize;
    const nQ = model.numCodebooks;
    const total = warmup + frames;
    const pcm = testSignal(total * fs, config.sample_rate, seed);
    process.stderr.write(`mimi bench: ${params.toLocaleString('en')} checkpoint values (parameters + codebook buffers; ${(weightBytes / MB).toFixed(0)} MiB on the GPU), adapter ${ctx.adapter.vendor}/${ctx.adapter.architecture}, ${warmup} warm-up + ${frames} timed frames, profiling ${profile ? 'on' : 'off'}\n`);

    // Timed pass with the profiler off (one compute pass per recording, as in production), then,
    // with profiling, the same frames again from a fresh state for the per-kernel breakdown.
    const codes = new Int32Array(nQ * total); // [nQ, total]
    const frame = new Int32Array(nQ);
    const encodePass = async (timed: boolean): Promise<number[]> => {
      model.reset();
      const times: number[] = [];
      for (let t = 0; t < total; t++) {
        if (t === warmup) ctx.profiler?.reset();
        const t0 = performance.now();
        const c = await model.encode(pcm.subarray(t * fs, (t + 1) * fs)); // c: [nQ, 1]
        const ms = performance.now() - t0;
        if (t >= warmup) times.push(ms);
        for (let q = 0; q < nQ; q++) codes[q * total + t] = c[q];
        if (timed) process.stderr.write(`  encode frame ${t}${t < warmup ? ' (warm-up)' : ''}: ${ms.toFixed(0)} ms\n`);
      }
      return times;
    };
    const decodePass = async (timed: boolean): Promise<number[]> => {
      model.reset();
      const times: number[] = [];
      for (let t = 0; t < total; t++) {
        if (t === warmup) ctx.profiler?.reset();
        for (let q = 0; q < nQ; q++) frame[q] = codes[q * total + t];
        const t0 = performance.now();
        const y = await model.decode(frame, 1); // y: [1920]
        const ms = performance.now() - t0;
        if (y.length !== fs) throw new Error(`decode returned ${y.length} samples for one frame, expected ${fs}`);
        if (t >= warmup) times.push(ms);
        if (timed) process.stderr.write(`  decode frame ${t}${t < warmup ? ' (warm-up)' : ''}: ${ms.toFixed(0)} ms\n`);
      }
      return times;
    };
    if (ctx.profiler) ctx.profiler.enabled = false;
    const encMs = await encodePass(true);
    const decMs = await decodePass(true);
    let encKernels: { label: string; ms: number; count: number }[] = [];
    let decKernels: { label: string; ms: number; count: number }[] = [];
    if (ctx.profiler) {
      ctx.profiler.enabled = true;
      process.stderr.write('  profiling the same frames (one pass per dispatch)\n');
      await encodePass(false);
      encKernels = ctx.profiler.report();
      await decodePass(false);
      decKernels = ctx.profiler.report();
    }
    const peakBytes = ctx.peakBytes;
    model.destroy();

    const enc = median(encMs);
    const dec = median(decMs);
    console.log(`\nMimi streaming, real size (${params.toLocaleString('en')} checkpoint values, ${nQ} codebooks emitted), seeded random weights, adapter ${ctx.adapter.vendor}/${ctx.adapter.architecture}${ctx.adapter.isFallbackAdapter ? ' (fallback)' : ''}`);
    console.log(`${warmup} warm-up + ${frames} timed frames (small on purpose: a software adapter needs seconds per frame), timed without the profiler${profile ? '; per-kernel times from a second, profiled pass over the same frames' : ''}`);
    printTable(
      ['op', 'median ms / 80 ms frame', 'min ms', 'max ms', 'real-time factor'],
      [
        ['encode (streaming)', enc, Math.min(...encMs), Math.max(...encMs), enc / FRAME_MS],
        ['decode (streaming)', dec, Math.min(...decMs), Math.max(...decMs), dec / FRAME_MS],
        ['encode + decode', enc + dec, Math.min(...encMs) + Math.min(...decMs), Math.max(...encMs) + Math.max(...decMs), (enc + dec) / FRAME_MS],
      ],
    );
    const gbps = (bytes: number, ms: number) => bytes / (ms * 1e6);
    console.log(
      `adapter copy bandwidth ${copy.gbps.toFixed(2)} GB/s; weight bytes read per frame at least ${(encWeightBytes / MB).toFixed(0)} MiB (encode) / ${(decWeightBytes / MB).toFixed(0)} MiB (decode) -> ${gbps(encWeightBytes, enc).toFixed(3)} / ${gbps(decWeightBytes, dec).toFixed(3)} GB/s = ${((100 * gbps(encWeightBytes, enc)) / copy.gbps).toFixed(1)}% / ${((100 * gbps(decWeightBytes, dec)) / copy.gbps).toFixed(1)}% of the copy bandwidth`,
    );
    console.log(`GPU memory: weights ${(weightBytes / MB).toFixed(1)} MiB, peak ${(peakBytes / MB).toFixed(1)} MiB (tensors made through the context)`);
    console.log(`host: weight generation ${(genMs / 1000).toFixed(1)} s, model load ${(loadMs / 1000).toFixed(1)} s`);
    const breakdown = (name: string, ks: { label: string; ms: number; count: number }[]) => {
      if (!ks.length) {
        console.log(`\n${name}: no per-kernel times (${profile ? 'the adapter has no timestamp-query' : '--no-profile'})`);
        return;
      }
      const sum = ks.reduce((a, k) => a + k.ms, 0);
      printTable(
        ['kernel', 'ms / frame', 'share %', 'dispatches / frame'],
        [...ks.map((k) => [k.label, k.ms / frames, (100 * k.ms) / sum, k.count / frames]), ['total', sum / frames, 100, ks.reduce((a, k) => a + k.count, 0) / frames]],
        `${name}: GPU time per kernel over the ${frames} timed frames, per frame (timestamp queries)`,
      );
    };
    breakdown('encode', encKernels);
    breakdown('decode', decKernels);

    const result = {
      bench: 'mimi',
      date: new Date().toISOString(),
      adapter: ctx.adapter,
      config: 'MIMI_RELEASED_CONFIG (num_codebooks 8)',
      checkpointValues: params,
      seed,
      warmupFrames: warmup,
      timedFrames: frames,
      profiling: profile,
      encode: { medianMs: enc, timesMs: encMs, realTimeFactor: enc / FRAME_MS, kernels: encKernels },
      decode: { medianMs: dec, timesMs: decMs, realTimeFactor: dec / FRAME_MS, kernels: decKernels },
      gpuBytes: { weights: weightBytes, peak: peakBytes },
      copyBandwidth: copy,
      weightBytesPerFrame: { encode: encWeightBytes, decode: decWeightBytes },
      hostMs: { generateWeights: genMs, load: loadMs },
    };
    const out = writeResults('mimi', result);
    console.log(`\nwrote ${out}`);
    return result;
  } finally {
    ctx.destroy();
  }
}
