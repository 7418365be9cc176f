// Weights opened from a Blob (a picked File, fs.openAsBlob): the header is parsed at once, large
// tensors stay in the Blob and stream to the GPU tensor by tensor (VarBuilder.uploadPending), so a
// 15 GB checkpoint is never held in memory whole. The lazy path must give exactly the eager bytes.
import { describe, expect, it } from 'vitest';
import { LMModel } from '../../src/models/lm.ts';
import { LMGen } from '../../src/models/lm_gen.ts';
import { parseLmConfig } from '../../src/models/lm_config.ts';
import { SafetensorsError, SafetensorsFile, entryToF32, serializeSafetensors } from '../../src/weights/safetensors.ts';
import { VarBuilder, WeightError, hostToEntry } from '../../src/weights/var_builder.ts';
import { fixtureI32, fixtureJson, nodeFixtures } from '../harness/fixtures.ts';
import { nodeContext } from '../harness/node_gpu.ts';

const read = nodeFixtures();
const ramp = (n: number, s = 1) => Float32Array.from({ length: n }, (_, i) => s * (i - n / 2) / 7);
function bytes() {
  return serializeSafetensors([
    hostToEntry('a.weight', ramp(12), [3, 4], 'F32'),
    hostToEntry('b.in_proj_weight', ramp(30, 0.5), [6, 5], 'BF16'), // 30 halves: rows of 5 cross u32 words
    hostToEntry('c.small', new Float32Array([1, 2]), [2], 'F32'),
  ]);
}

describe('SafetensorsFile.fromBlob', () => {
  it('parses the header like parse(); large tensors are lazy and read back the same bytes', async () => {
    const b = bytes();
    const eager = SafetensorsFile.parse(b, 'x');
    const lazy = await SafetensorsFile.fromBlob(new Blob([b.slice()]), 'x', { eagerBytes: 8 });
    expect(lazy.keys().sort()).toEqual(eager.keys().sort());
    expect(lazy.get('c.small')!.lazy).toBeUndefined(); // 8 bytes: read at open
    for (const k of ['a.weight', 'b.in_proj_weight']) {
      const e = lazy.get(k)!;
      expect(e.shape).toEqual(eager.get(k)!.shape);
      expect(e.lazy!.byteLength).toBe(eager.get(k)!.data.byteLength);
      expect(await e.lazy!.read()).toEqual(eager.get(k)!.data);
      expect(() => entryToF32(e, 'x')).toThrow(/key 'a\.weight' \(48 bytes\) is read lazily|key 'b\.in_proj_weight' \(60 bytes\) is read lazily/);
    }
  });

  it('names truncated and malformed Blobs', async () => {
    const b = bytes();
    await expect(SafetensorsFile.fromBlob(new Blob([b.subarray(0, 5).slice()]), 'short.safetensors')).rejects.toThrow(/short\.safetensors: truncated: 5 bytes/);
    await expect(SafetensorsFile.fromBlob(new Blob([b.subarray(0, 40).slice()]), 'cut.safetensors')).rejects.toThrow(/cut\.safetensors: truncated: header length \d+ but the file has only 32 bytes/);
    await expect(SafetensorsFile.fromBlob(new Blob([b.subarray(0, b.byteLength - 4).slice()]), 'tail.safetensors')).rejects.toThrow(SafetensorsError);
    await expect(SafetensorsFile.fromBlob(new Blob([b.subarray(0, b.byteLength - 4).slice()]), 'tail.safetensors')).rejects.toThrow(/out of range .*file truncated/);
  });
});

describe('VarBuilder over a Blob', () => {
  it('tensors and chunks of lazy entries are filled by uploadPending (f32, packed bf16, bf16 widened)', async () => {
    const ctx = await nodeContext();
    const b = bytes();
    const eager = VarBuilder.fromSafetensors(ctx, [SafetensorsFile.parse(b, 'eager')]);
    const lazy = VarBuilder.fromSafetensors(ctx, [await SafetensorsFile.fromBlob(new Blob([b.slice()]), 'lazy', { eagerBytes: 0 })]);
    const take = (vb: VarBuilder) => ({
      a: vb.pp('a').tensor('weight', [3, 4]),
      bNative: vb.pp('b').chunks('in_proj_weight', [6, 5], 3, 'native'),
      bF32: vb.pp('b').tensor('in_proj_weight', [6, 5]),
    });
    const e = take(eager);
    const l = take(lazy);
    expect(l.bNative[1].dtype).toBe('bf16');
    await lazy.uploadPending();
    expect(await ctx.readF32(l.a)).toEqual(await ctx.readF32(e.a));
    expect(await ctx.readF32(l.bF32)).toEqual(await ctx.readF32(e.bF32));
    for (let i = 0; i < 3; i++) expect(await ctx.readF32(l.bNative[i])).toEqual(await ctx.readF32(e.bNative[i]));
    expect(() => lazy.pp('c').host('small', [2])).toThrow(WeightError);
    expect(() => lazy.pp('c').host('small', [2])).toThrow(/key 'c\.small' in lazy \(8 bytes\) is read lazily/);
  });

  it('the tiny Moshi LM loaded lazily from a Blob reproduces lmgen_out_tokens', async () => {
    const ctx = await nodeContext();
    const cfg = parseLmConfig(await fixtureJson(read, 'ref/moshi_tiny_config.json'), 'ref');
    const blob = new Blob([(await read('ref/moshi_tiny.safetensors')).slice()]);
    const file = await SafetensorsFile.fromBlob(blob, 'moshi_tiny.safetensors', { eagerBytes: 0 });
    expect([...file.tensors.values()].every((t) => t.lazy)).toBe(true);
    const progress: number[] = [];
    const lm = await LMModel.load(ctx, VarBuilder.fromSafetensors(ctx, [file]), cfg, { onUploadProgress: (d, t) => progress.push(d / t) });
    expect(progress.at(-1)).toBe(1);
    const user = await fixtureI32(read, 'ref/lm/user_input_codes.i32.bin');
    const want = await fixtureI32(read, 'ref/lm/lmgen_out_tokens.i32.bin');
    const gen = new LMGen(lm, { temp: 0, tempText: 0 });
    const T = want.length / 9;
    for (let t = 0; t < T; t++) {
      const r = await gen.step(user.subarray(t * 8, (t + 1) * 8));
      const got = r ? [r.text, ...r.audio] : Array(9).fill(-1000);
      expect(got, `step ${t}`).toEqual([...want.subarray(t * 9, (t + 1) * 9)]);
    }
    gen.destroy();
    lm.destroy();
  }, 300_000);
});
