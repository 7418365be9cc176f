import { describe, expect, it } from 'vitest';
import { GpuContext, GpuLimitError, GpuValidationError, grid1d, Kernel, ParamsLayout, ShapeError } from '../../src/gpu/index.ts';
import { nodeGpu } from '../../src/gpu/node.ts';
import { unary } from '../../src/kernels/unary.ts';
import { nodeContext } from '../harness/node_gpu.ts';

const WGSL = `
struct Params { n: u32, scale: f32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  if (gid.x < params.n) { y[gid.x] = x[gid.x] * params.scale; }
}`;

describe('kernel contract', () => {
  it('accepts a matching declaration and runs it with Params from the uniform arena', async () => {
    const ctx = await nodeContext();
    const k = new Kernel('test_scale', WGSL, [{ name: 'x', access: 'read' }, { name: 'y', access: 'read_write' }], new ParamsLayout([['n', 'u32'], ['scale', 'f32']]));
    const x = ctx.upload([1, 2, 3], [3], 'f32', 'x');
    const y = ctx.tensor([3], 'f32', 'y');
    const y2 = ctx.tensor([3], 'f32', 'y2');
    const rec = ctx.record('scale twice');
    rec.dispatch(k, { buffers: [x, y], params: { n: 3, scale: 2 }, workgroups: [1] });
    rec.dispatch(k, { buffers: [x, y2], params: { n: 3, scale: -0.5 }, workgroups: [1] });
    const out = rec.readback(y2);
    await rec.submit();
    expect([...(await ctx.readF32(y))]).toEqual([2, 4, 6]);
    expect([...(await out)]).toEqual([-0.5, -1, -1.5]);
    await expect(rec.submit()).rejects.toThrow(/already submitted/);
  });

  it('rejects TS/WGSL drift in bindings, access modes, Params fields and entry points', () => {
    const b = [{ name: 'x', access: 'read' as const }, { name: 'y', access: 'read_write' as const }];
    const p = new ParamsLayout([['n', 'u32'], ['scale', 'f32']]);
    expect(() => new Kernel('t1', WGSL, [b[1], b[0]], p)).toThrow(/storage bindings TS \[0:y:read_write 1:x:read\] vs WGSL \[0:x:read 1:y:read_write\]/);
    expect(() => new Kernel('t2', WGSL, [b[0], { name: 'y', access: 'read' }], p)).toThrow(GpuValidationError);
    expect(() => new Kernel('t3', WGSL, b, new ParamsLayout([['n', 'u32'], ['scale', 'u32']]))).toThrow(/Params mismatch, TS \{n: u32, scale: u32\} vs WGSL \{n: u32, scale: f32\}/);
    expect(() => new Kernel('t4', WGSL, b, null)).toThrow(/declares a uniform but the TS side has no Params/);
    expect(() => new Kernel('t5', WGSL, b, p, 'other')).toThrow(/entry point 'other' not found/);
  });

  it('names bad Params values and wrong buffer counts', async () => {
    const ctx = await nodeContext();
    const k = new Kernel('test_scale', WGSL, [{ name: 'x', access: 'read' }, { name: 'y', access: 'read_write' }], new ParamsLayout([['n', 'u32'], ['scale', 'f32']]));
    const x = ctx.tensor([3], 'f32', 'x');
    const rec = ctx.record('bad');
    expect(() => rec.dispatch(k, { buffers: [x], params: { n: 3, scale: 1 }, workgroups: [1] })).toThrow(/takes 2 buffers \(x, y\), got 1/);
    expect(() => rec.dispatch(k, { buffers: [x, x], params: { n: -1, scale: 1 }, workgroups: [1] })).toThrow(/Params.n must be a u32, got -1/);
    expect(() => rec.dispatch(k, { buffers: [x, x], params: { n: 1, scale: NaN }, workgroups: [1] })).toThrow(/Params.scale must be a finite number/);
  });

  it('surfaces WGSL compile errors with the kernel name at submit', async () => {
    const ctx = await nodeContext();
    const bad = WGSL.replace('params.scale;', 'params.scale + undefined_thing;');
    const k = new Kernel('test_broken', bad, [{ name: 'x', access: 'read' }, { name: 'y', access: 'read_write' }], new ParamsLayout([['n', 'u32'], ['scale', 'f32']]));
    const x = ctx.tensor([3], 'f32', 'x');
    const y = ctx.tensor([3], 'f32', 'y');
    const rec = ctx.record('broken');
    rec.dispatch(k, { buffers: [x, y], params: { n: 3, scale: 1 }, workgroups: [1] });
    await expect(rec.submit()).rejects.toThrow(/kernel 'test_broken' \[\] failed to compile/);
  });

  it('checks shapes before dispatch with expected and received shapes', async () => {
    const ctx = await nodeContext();
    const x = ctx.tensor([4], 'f32', 'x');
    const y = ctx.tensor([5], 'f32', 'y');
    expect(() => unary(ctx.record('r'), 'elu', x, y)).toThrow(ShapeError);
    expect(() => unary(ctx.record('r'), 'elu', x, y)).toThrow(/unary elu output 'y' is expected to have shape \[4\], got \[5\]/);
    expect(() => unary(ctx.record('r'), 'elu', ctx.tensor([4], 'i32', 'ids'), x)).toThrow(/expected to have dtype f32, got i32/);
  });
});

describe('device acquisition', () => {
  it('raises limits to the adapter maximum and reports features', async () => {
    const ctx = await nodeContext();
    expect(ctx.device.limits.maxStorageBufferBindingSize).toBe(ctx.adapter.limits.maxStorageBufferBindingSize);
    expect(ctx.adapter.limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 * 1024 * 1024);
    expect(ctx.adapter.features).toContain('timestamp-query');
  });

  it('names a limit the adapter cannot give', async () => {
    await expect(GpuContext.create({ gpu: await nodeGpu(), requiredLimits: { maxBufferSize: 2 ** 52 } })).rejects.toThrow(GpuLimitError);
    await expect(GpuContext.create({ gpu: await nodeGpu(), requiredLimits: { maxBufferSize: 2 ** 52 } })).rejects.toThrow(/maxBufferSize = \d+, the model needs 4503599627370496/);
  });

  it('names a tensor over the buffer or binding size limit', async () => {
    const ctx = await nodeContext();
    const words = ctx.device.limits.maxStorageBufferBindingSize / 4 + 16;
    expect(() => ctx.tensor([words], 'f32', 'huge')).toThrow(GpuLimitError);
    expect(() => ctx.tensor([words], 'f32', 'huge')).toThrow(/tensor 'huge' \[\d+\] f32 needs \d+ bytes, over the device's (maxBufferSize|maxStorageBufferBindingSize)/);
  });

  it('reports device loss as a named error on later use', async () => {
    const ctx = await GpuContext.create({ gpu: await nodeGpu(), host: 'node' });
    const seen: string[] = [];
    ctx.onLost((e) => seen.push(e.name));
    ctx.device.destroy();
    await ctx.device.lost;
    await new Promise((r) => setTimeout(r, 0));
    expect(seen).toEqual(['GpuDeviceLostError']);
    expect(() => ctx.tensor([1], 'f32', 't')).toThrow(/GPU device lost/);
  });

  it('folds large grids into y and tracks live GPU bytes', async () => {
    expect(grid1d(100, 64)).toEqual([2, 1, 1]);
    const [x, y] = grid1d(65536 * 64 * 3, 64);
    expect(x).toBeLessThanOrEqual(65535);
    expect(x * y * 64).toBeGreaterThanOrEqual(65536 * 64 * 3);
    const ctx = await nodeContext();
    const before = ctx.liveBytes;
    const t = ctx.tensor([1000], 'f32', 't');
    expect(ctx.liveBytes - before).toBe(4000);
    t.destroy();
    expect(ctx.liveBytes).toBe(before);
  });
});

describe('profiler', () => {
  it('attributes GPU time per kernel label with timestamp-query', async () => {
    const ctx = await GpuContext.create({ gpu: await nodeGpu(), host: 'node', profile: true });
    const x = ctx.upload(new Float32Array(4096).fill(0.5), [4096], 'f32', 'x');
    const y = ctx.tensor([4096], 'f32', 'y');
    const rec = ctx.record('profiled');
    unary(rec, 'gelu', x, y);
    unary(rec, 'silu', x, y);
    unary(rec, 'silu', x, y);
    await rec.submit();
    const report = ctx.profiler!.report();
    expect(report.map((r) => r.label).sort()).toEqual(['unary.gelu', 'unary.silu']);
    expect(report.find((r) => r.label === 'unary.silu')!.count).toBe(2);
    expect(report.every((r) => r.ms >= 0)).toBe(true);
    ctx.destroy();
  });
});
