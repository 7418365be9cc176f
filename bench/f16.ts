/**
 * `npm run bench -- f16 [--n N] [--k K] [--runs R] [--reps P]`
 *
 * Does `shader-f16` arithmetic pay on this adapter? The decode-path matvec y = W·x over f16
 * weights W [N, K] (default 4096 × 4096, a 7B projection), the same packed u32 words read two ways
 * in one run:
 * - `unpack -> f32` (what every engine kernel does, shaders/matvec.wgsl DTYPE 1): unpack2x16float,
 *   f32 multiply and accumulate;
 * - `f16 math` (`enable f16;`): the words bitcast to vec2<f16>, x converted to f16, dot products of
 *   4 in f16, accumulated in f32.
 * Both are one workgroup of 64 threads per row (16-byte loads, a workgroup-memory reduction), so
 * only the arithmetic differs. Prints the median time per matvec of each, their ratio, and each
 * one's largest error against an f64 CPU reference (relative to the largest |y|).
 * The engine computes in f32 only; this benchmark is the measurement behind that choice (README,
 * "What a browser needs"). Throws when the adapter has no `shader-f16`.
 * Writes bench/results/f16-<time>.json.
 */
import { parseArgs } from 'node:util';
import { createNodeGpuContext } from '../src/gpu/node.ts';
import { median } from '../src/selftest/timing.ts';
import { f32ToF16Bits, f16BitsToF32 } from '../src/gpu/dtype.ts';
import { Rng } from '../src/selftest/rng.ts';
import { printTable, writeResults } from './common.ts';

const WG = 64;

function shader(k: number, f16: boolean): string {
  const dotw = f16
    ? `fn dotw(v: vec4<u32>, xa: vec4<f32>, xb: vec4<f32>) -> f32 {
  let w0 = vec4<f16>(bitcast<vec2<f16>>(v.x), bitcast<vec2<f16>>(v.y));
  let w1 = vec4<f16>(bitcast<vec2<f16>>(v.z), bitcast<vec2<f16>>(v.w));
  return f32(dot(w0, vec4<f16>(xa))) + f32(dot(w1, vec4<f16>(xb)));
}`
    : `fn dotw(v: vec4<u32>, xa: vec4<f32>, xb: vec4<f32>) -> f32 {
  let p0 = unpack2x16float(v.x); let p1 = unpack2x16float(v.y);
  let p2 = unpack2x16float(v.z); let p3 = unpack2x16float(v.w);
  return dot(vec4<f32>(p0, p1), xa) + dot(vec4<f32>(p2, p3), xb);
}`;
  return `${f16 ? 'enable f16;' : ''}
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> w: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
var<workgroup> red: array<f32, ${WG}>;
${dotw}
@compute @workgroup_size(${WG}) fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let row = wid.x;
  let kw = ${k / 8}u;
  var acc = 0.0;
  for (var j = t; j < kw; j += ${WG}u) { acc += dotw(w[row * kw + j], x[2u * j], x[2u * j + 1u]); }
  red[t] = acc;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s /= 2u) { if (t < s) { red[t] += red[t + s]; } workgroupBarrier(); }
  if (t == 0u) { y[row] = red[0]; }
}`;
}

export interface F16Result {
  adapter: unknown;
  n: number;
  k: number;
  f32Ms: number;
  f16Ms: number;
  /** f16 math time ÷ unpack -> f32 time (> 1: f16 arithmetic is slower). */
  ratio: number;
  /** max |y - y_ref| / max |y_ref| of each path (f64 reference on the same f16 weights). */
  f32RelErr: number;
  f16RelErr: number;
}

export async function run(args: string[]): Promise<F16Result> {
  const { values } = parseArgs({ args, options: { n: { type: 'string', default: '4096' }, k: { type: 'string', default: '4096' }, runs: { type: 'string', default: '5' }, reps: { type: 'string', default: '4' } }, strict: true });
  const [n, k, runs, reps] = [values.n, values.k, values.runs, values.reps].map(Number);
  for (const [name, v] of Object.entries({ n, k, runs, reps })) if (!Number.isInteger(v) || v < 1) throw new Error(`bench f16: --${name} must be a positive integer, got '${values[name as keyof typeof values]}'`);
  if (k % 8 !== 0) throw new Error(`bench f16: --k must be a multiple of 8 (16-byte rows of halves), got ${k}`);
  const ctx = await createNodeGpuContext({ features: ['shader-f16'] });
  try {
    if (!ctx.device.features.has('shader-f16')) throw new Error(`bench f16: the adapter ${ctx.adapter.vendor} ${ctx.adapter.architecture} ('${ctx.adapter.description}') has no shader-f16: nothing to compare`);
    const dev = ctx.device;
    const rng = new Rng(1);
    const x = rng.normals(k, 1);
    const wBits = new Uint16Array(n * k);
    const wv = rng.normals(n * k, 1 / Math.sqrt(k));
    for (let i = 0; i < wBits.length; i++) wBits[i] = f32ToF16Bits(wv[i]);
    // f64 reference on the f16 weights (x as given, f32).
    const ref = new Float64Array(n);
    for (let r = 0; r < n; r++) {
      let s = 0;
      for (let c = 0; c < k; c++) s += f16BitsToF32(wBits[r * k + c]) * x[c];
      ref[r] = s;
    }
    const upload = (data: ArrayBufferView) => {
      const b = dev.createBuffer({ size: data.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
      dev.queue.writeBuffer(b, 0, data as unknown as ArrayBuffer);
      return b;
    };
    const xb = upload(x);
    const wb = upload(new Uint32Array(wBits.buffer));
    const yb = dev.createBuffer({ size: n * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
    const rb = dev.createBuffer({ size: n * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const measure = async (f16: boolean) => {
      const module = dev.createShaderModule({ code: shader(k, f16) });
      const pipeline = await dev.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } });
      const bindGroup = dev.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [xb, wb, yb].map((buffer, binding) => ({ binding, resource: { buffer } })) });
      const once = async () => {
        const enc = dev.createCommandEncoder();
        const pass = enc.beginComputePass();
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, bindGroup);
        for (let r = 0; r < reps; r++) pass.dispatchWorkgroups(n);
        pass.end();
        enc.copyBufferToBuffer(yb, 0, rb, 0, n * 4);
        const t0 = performance.now();
        dev.queue.submit([enc.finish()]);
        await rb.mapAsync(GPUMapMode.READ);
        const ms = performance.now() - t0;
        const y = new Float32Array(rb.getMappedRange().slice(0));
        rb.unmap();
        return { ms: ms / reps, y };
      };
      await once(); // warm-up (pipeline, caches)
      const times: number[] = [];
      let y = new Float32Array(0);
      for (let i = 0; i < runs; i++) ({ ms: times[i], y } = await once());
      let err = 0;
      let scale = 0;
      for (let r = 0; r < n; r++) {
        err = Math.max(err, Math.abs(y[r] - ref[r]));
        scale = Math.max(scale, Math.abs(ref[r]));
      }
      if (!Number.isFinite(err)) throw new Error(`bench f16: the ${f16 ? 'f16 math' : 'unpack -> f32'} matvec returned non-finite values`);
      return { ms: median(times), relErr: err / scale };
    };
    // Interleaved twice, the second round reported (both warm, same machine state).
    let a = await measure(false);
    let b = await measure(true);
    a = await measure(false);
    b = await measure(true);
    for (const buf of [xb, wb, yb, rb]) buf.destroy();
    const result: F16Result = { adapter: ctx.adapter, n, k, f32Ms: a.ms, f16Ms: b.ms, ratio: b.ms / a.ms, f32RelErr: a.relErr, f16RelErr: b.relErr };
    printTable(
      ['path', 'ms per matvec', 'vs unpack -> f32', 'max error / max |y|'],
      [
        ['unpack -> f32 (the engine)', a.ms, '1.00', a.relErr.toExponential(1)],
        ['f16 math (shader-f16)', b.ms, result.ratio.toFixed(2), b.relErr.toExponential(1)],
      ],
      `f16 weights [${n}, ${k}] · x, ${runs} runs of ${reps} matvecs, median; ${ctx.adapter.vendor} ${ctx.adapter.architecture} '${ctx.adapter.description}'${ctx.adapter.isFallbackAdapter ? ' (software fallback adapter: NOT a GPU figure)' : ''}`,
    );
    console.log(`f16 math ÷ unpack -> f32: ${result.ratio.toFixed(2)} (${result.ratio < 1 ? 'f16 arithmetic is faster here' : 'f16 arithmetic is not faster here'})`);
    console.log(`results: ${writeResults('f16', result)}`);
    return result;
  } finally {
    ctx.destroy();
  }
}
