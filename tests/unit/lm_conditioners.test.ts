import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConditionError, ConditionProvider, LUTConditioner } from '../../src/conditioners/base.ts';
import { hashTrick } from '../../src/conditioners/text.ts';
import { parseLmConfig } from '../../src/models/lm_config.ts';
import { SafetensorsFile } from '../../src/weights/safetensors.ts';
import { VarBuilder } from '../../src/weights/var_builder.ts';
import { assertClose } from '../../src/selftest/check.ts';

const FIX = resolve(import.meta.dirname, '../../../shared/fixtures');

function load2b() {
  const cfg = parseLmConfig(readFileSync(resolve(FIX, 'ref2b/moshi_tiny_config.json'), 'utf8'), 'ref2b');
  const st = SafetensorsFile.parse(readFileSync(resolve(FIX, 'ref2b/moshi_tiny.safetensors')), 'moshi_tiny.safetensors');
  const vb = VarBuilder.fromSafetensors(null, [st]);
  return { cfg, vb, provider: ConditionProvider.load(vb, cfg)! };
}

describe('LUT conditioner + sum fuser (ref2b)', () => {
  it('description = "good" gives the fixture condition_sum', async () => {
    const { provider } = load2b();
    const raw = readFileSync(resolve(FIX, 'ref2b/lm/condition_sum.f32.bin'));
    const want = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
    const got = await provider.conditionSum({ description: 'good' });
    const r = assertClose('condition_sum', got!, want, { atol: 1e-6, rtol: 1e-5 });
    expect(r.maxAbs).toBeLessThan(1e-5);
  });

  it('null selects the learnt padding; other values differ', async () => {
    const { provider, vb } = load2b();
    const pad = vb.pp('condition_provider.conditioners.description').host('learnt_padding', [1, 1, 80]);
    expect(Array.from((await provider.conditionSum({ description: null }))!)).toEqual(Array.from(pad));
    const a = await provider.conditionSum({ description: 'very_good' });
    const b = await provider.conditionSum({ description: 'very_bad' });
    expect(Array.from(a!)).not.toEqual(Array.from(b!));
  });

  it('rejects unknown values, unknown names and missing conditions', async () => {
    const { provider } = load2b();
    await expect(provider.conditionSum({ description: 'superb' })).rejects.toThrow(/'superb' is not one of/);
    await expect(provider.conditionSum({ description: 'good', mood: 'x' })).rejects.toThrow(/unknown condition 'mood'/);
    await expect(provider.conditionSum({})).rejects.toThrow(ConditionError);
    await expect(provider.conditionSum({})).rejects.toThrow(/did not receive a value: 'description'/);
  });

  it('a model without conditioners has no provider; missing weights are named', () => {
    const cfg = parseLmConfig(readFileSync(resolve(FIX, 'ref/moshi_tiny_config.json'), 'utf8'), 'ref');
    const vb = VarBuilder.fromSafetensors(null, [SafetensorsFile.parse(readFileSync(resolve(FIX, 'ref/moshi_tiny.safetensors')), 'moshi_tiny.safetensors')]);
    expect(ConditionProvider.load(vb, cfg)).toBeNull();
    const { cfg: cfg2 } = load2b();
    expect(() => LUTConditioner.load(vb.pp('condition_provider.conditioners.description'), 'description', cfg2.conditioners.description, 80)).toThrow(
      /missing key 'condition_provider\.conditioners\.description\.embed\.weight'/,
    );
  });

  it('hash trick = int(sha256(word).hexdigest(), 16) % n', async () => {
    // sha256("a") = ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb
    const big = BigInt('0xca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb');
    expect(await hashTrick('a', 31)).toBe(Number(big % 31n));
    expect(await hashTrick('a', 1000)).toBe(Number(big % 1000n));
  });
});
