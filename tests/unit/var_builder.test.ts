import { describe, expect, it } from 'vitest';
import { SafetensorsFile, serializeSafetensors } from '../../src/weights/safetensors.ts';
import { firstNonFinite } from '../../src/weights/finite.ts';
import { hostToEntry, NonFiniteWeightError, VarBuilder, WeightError } from '../../src/weights/var_builder.ts';
import { nodeContext } from '../harness/node_gpu.ts';

function file() {
  const w = Float32Array.from({ length: 12 }, (_, i) => i - 5.5);
  return SafetensorsFile.parse(
    serializeSafetensors([
      hostToEntry('encoder.model.0.conv.conv.weight', w, [3, 2, 2], 'F32'),
      hostToEntry('encoder.model.0.conv.conv.bias', new Float32Array([1, 2, 3]), [3], 'F32'),
      hostToEntry('layers.0.self_attn.in_proj_weight', w, [6, 2], 'BF16'),
      hostToEntry('extra.weight', new Float32Array([1]), [1], 'F32'),
    ]),
    'test.safetensors',
  );
}

describe('VarBuilder', () => {
  it('reads by literal checkpoint keys with prefixes and checks shapes', async () => {
    const ctx = await nodeContext();
    const vb = VarBuilder.fromSafetensors(ctx, [file()]);
    const conv = vb.pp('encoder').pp('model').pp(0).pp('conv');
    expect(conv.key('conv.weight')).toBe('encoder.model.0.conv.conv.weight');
    const w = conv.tensor('conv.weight', [3, 2, 2]);
    expect([...(await ctx.readF32(w))]).toEqual(Array.from({ length: 12 }, (_, i) => i - 5.5));
    expect(() => conv.tensor('conv.bias', [4])).toThrow(/key 'encoder.model.0.conv.conv.bias' in test.safetensors has shape \[3\], expected \[4\]/);
    expect(() => conv.tensor('conv.nope', [3])).toThrow(WeightError);
    expect(() => conv.tensor('conv.nope', [3])).toThrow(/missing key 'encoder.model.0.conv.conv.nope'/);
  });

  it('keeps bf16 packed with policy native, splits stacked tensors once, and reports unused keys', async () => {
    const ctx = await nodeContext();
    const vb = VarBuilder.fromSafetensors(ctx, [file()]);
    vb.pp('encoder.model.0.conv.conv').host('weight', [3, 2, 2]);
    vb.pp('encoder.model.0.conv.conv').consume('bias', [3]);
    const parts = vb.pp('layers.0.self_attn').chunks('in_proj_weight', [6, 2], 3, 'native');
    expect(parts.map((p) => [p.dtype, ...p.shape])).toEqual([['bf16', 2, 2], ['bf16', 2, 2], ['bf16', 2, 2]]);
    expect([...(await ctx.readF32(parts[1]))]).toEqual([-1.5, -0.5, 0.5, 1.5]);
    expect(() => vb.finish()).toThrow(/1 key\(s\) in test.safetensors were not used by the model .*extra.weight/);
    vb.consume('extra.weight', [1]);
    expect(() => vb.finish()).not.toThrow();
    expect(() => vb.pp('layers.0.self_attn').chunks('in_proj_weight', [6, 2], 4)).toThrow(/not divisible into 4 parts/);
  });

  it('rejects duplicate keys across files', () => {
    expect(() => VarBuilder.fromSafetensors(null, [file(), file()])).toThrow(/appears in more than one file/);
  });

  it('reads F64 as f32 and refuses an F64 value that is not finite as f32 (1e300 would be Inf on the GPU)', async () => {
    const f64 = (values: number[]) => new Uint8Array(Float64Array.from(values).buffer);
    const entry = (name: string, values: number[]) => ({ name, dtype: 'F64' as const, shape: [values.length], data: f64(values) });
    const parse = () =>
      SafetensorsFile.parse(serializeSafetensors([entry('a.weight', [0.5, -2, 3e38]), entry('b.weight', [1, 1e300, 2]), entry('c.weight', [1, 2, -1e39]), entry('d.weight', [Number.NaN, 1, 2])]), 'f64.safetensors');
    expect(firstNonFinite(f64([0.5, -2, 3e38]), 'F64')).toBe(-1);
    expect(firstNonFinite(f64([1, 1e300, 2]), 'F64')).toBe(1);
    expect(firstNonFinite(f64([1, 2, -1e39]), 'F64')).toBe(2);
    const ctx = await nodeContext();
    const vb = VarBuilder.fromSafetensors(ctx, [parse()]);
    expect([...(await ctx.readF32(vb.tensor('a.weight', [3])))]).toEqual([0.5, -2, Math.fround(3e38)]);
    expect([...vb.host('a.weight', [3])]).toEqual([0.5, -2, Math.fround(3e38)]);
    for (const [key, at] of [['b.weight', 1], ['c.weight', 2], ['d.weight', 0]] as const) {
      const re = new RegExp(`key '${key}' in f64\\.safetensors holds a non-finite value \\(NaN or Inf, or beyond the f32 range\\) at element ${at}: the checkpoint is corrupt`);
      expect(() => vb.tensor(key, [3])).toThrow(NonFiniteWeightError);
      expect(() => vb.tensor(key, [3])).toThrow(re);
      expect(() => vb.host(key, [3])).toThrow(re);
    }
  });
});
