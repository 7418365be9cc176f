import { describe, expect, it } from 'vitest';
import { entryToF32, SafetensorsError, SafetensorsFile, serializeSafetensors } from '../../src/weights/safetensors.ts';
import { hostToEntry } from '../../src/weights/var_builder.ts';
import { nodeFixtures } from '../harness/fixtures.ts';

const f32 = (xs: number[]) => new Uint8Array(new Float32Array(xs).buffer);

function header(obj: unknown, data = new Uint8Array(0)): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(obj));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

describe('safetensors reader', () => {
  it('round-trips F32, F16, BF16, I32, U8 and metadata', () => {
    const vals = new Float32Array([1, -2.5, 0.333251953125, 65504]);
    const bytes = serializeSafetensors(
      [
        hostToEntry('a.f32', vals, [2, 2], 'F32'),
        hostToEntry('b.f16', vals, [4], 'F16'),
        hostToEntry('c.bf16', vals, [4], 'BF16'),
        { name: 'd.i32', dtype: 'I32', shape: [2], data: new Uint8Array(new Int32Array([-7, 9]).buffer) },
        { name: 'e.u8', dtype: 'U8', shape: [3], data: new Uint8Array([1, 2, 255]) },
      ],
      { format: 'pt' },
    );
    const f = SafetensorsFile.parse(bytes, 'x.safetensors');
    expect(f.keys()).toEqual(['a.f32', 'b.f16', 'c.bf16', 'd.i32', 'e.u8']);
    expect(f.metadata).toEqual({ format: 'pt' });
    expect([...entryToF32(f.get('a.f32')!)]).toEqual([...vals]);
    expect([...entryToF32(f.get('b.f16')!)]).toEqual([1, -2.5, 0.333251953125, 65504]);
    expect([...entryToF32(f.get('c.bf16')!)]).toEqual([1, -2.5, 0.333984375, 65536]);
    expect([...entryToF32(f.get('d.i32')!)]).toEqual([-7, 9]);
    expect([...entryToF32(f.get('e.u8')!)]).toEqual([1, 2, 255]);
  });

  it('reads the tiny Mimi fixture in the official checkpoint layout', async () => {
    const bytes = await nodeFixtures()('ref/mimi_tiny.safetensors');
    const f = SafetensorsFile.parse(bytes, 'mimi_tiny.safetensors');
    expect(f.tensors.size).toBe(126);
    expect(f.get('encoder.model.0.conv.conv.weight')?.shape).toEqual([8, 1, 7]);
    expect(f.get('encoder.model.0.conv.conv.weight')?.dtype).toBe('F32');
  });

  it('names the problem for truncated files, bad headers, bad offsets and unknown dtypes', () => {
    const err = (b: Uint8Array) => {
      try {
        SafetensorsFile.parse(b, 'w.safetensors');
      } catch (e) {
        expect(e).toBeInstanceOf(SafetensorsError);
        return (e as Error).message;
      }
      throw new Error('expected a SafetensorsError');
    };
    expect(err(new Uint8Array(5))).toMatch(/w\.safetensors: truncated: 5 bytes/);
    const longHeader = new Uint8Array(16);
    new DataView(longHeader.buffer).setBigUint64(0, 1000n, true);
    expect(err(longHeader)).toMatch(/header length 1000 but the file has only 8 bytes/);
    const notJson = header({});
    notJson[8] = 0x7b + 1;
    expect(err(notJson)).toMatch(/not valid UTF-8 JSON/);
    expect(err(header({ x: { dtype: 'F8', shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)))).toMatch(/key 'x': unknown dtype "F8"/);
    expect(err(header({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, f32([1])))).toMatch(/key 'x': data_offsets \[0, 8\] out of range/);
    expect(err(header({ x: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, f32([1, 2])))).toMatch(/F32\[3\] needs 12 bytes, data_offsets span 8/);
    expect(err(header({ x: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, f32([1])))).toMatch(/key 'x': bad shape/);
    expect(err(header([1, 2]))).toMatch(/not a JSON object/);
  });

  it('rejects what the reference library rejects: shared or overlapping bytes, holes, trailing data, non-string metadata', () => {
    const err = (b: Uint8Array) => {
      try {
        SafetensorsFile.parse(b, 'w.safetensors');
      } catch (e) {
        expect(e).toBeInstanceOf(SafetensorsError);
        return (e as Error).message;
      }
      throw new Error('expected a SafetensorsError');
    };
    const e = (begin: number, end: number) => ({ dtype: 'F32', shape: [(end - begin) / 4], data_offsets: [begin, end] });
    // Two keys on the same bytes (aliasing) and partly overlapping ranges.
    expect(err(header({ a: e(0, 8), b: e(0, 8) }, f32([1, 2])))).toMatch(/w\.safetensors: key 'b': data_offsets \[0, 8\] overlap the bytes of 'a'/);
    expect(err(header({ a: e(0, 8), b: e(4, 12) }, f32([1, 2, 3])))).toMatch(/key 'b': data_offsets \[4, 12\] overlap the bytes of 'a' \(which end at 8\)/);
    // A hole between tensors, and one before the first.
    expect(err(header({ a: e(0, 4), b: e(8, 12) }, f32([1, 2, 3])))).toMatch(/key 'b': data_offsets \[8, 12\] leave a hole of 4 bytes after 'a'/);
    expect(err(header({ a: e(4, 8) }, f32([1, 2])))).toMatch(/key 'a': .* leave a hole of 4 bytes after the header/);
    // Bytes after the last tensor.
    expect(err(header({ a: e(0, 4) }, f32([1, 2])))).toMatch(/w\.safetensors: 4 bytes of data after the last tensor \('a', ending at 4\)/);
    expect(err(header({}, f32([1])))).toMatch(/4 bytes of data after the last tensor/);
    // __metadata__ must map strings to strings.
    expect(err(header({ __metadata__: { format: 'pt', n: 3 }, a: e(0, 4) }, f32([1])))).toMatch(/'__metadata__' key 'n': value must be a string, got 3/);
    expect(err(header({ __metadata__: ['pt'], a: e(0, 4) }, f32([1])))).toMatch(/'__metadata__' must be a map of strings to strings, got an array/);
    expect(err(header({ __metadata__: null, a: e(0, 4) }, f32([1])))).toMatch(/got null/);
    // Still fine: out-of-order keys that tile the data, zero-size tensors, string metadata.
    const ok = SafetensorsFile.parse(header({ __metadata__: { format: 'pt' }, z: e(4, 8), y: { dtype: 'F32', shape: [0], data_offsets: [4, 4] }, x: e(0, 4) }, f32([1, 2])), 'ok');
    expect(ok.keys().sort()).toEqual(['x', 'y', 'z']);
    expect(ok.metadata).toEqual({ format: 'pt' });
  });
});
