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
});
