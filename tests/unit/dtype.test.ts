import { describe, expect, it } from 'vitest';
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits, packHalf, unpackHalf } from '../../src/gpu/dtype.ts';

describe('half-precision packing', () => {
  it('f16 conversion rounds to nearest even and covers subnormals, inf and nan', () => {
    expect(f32ToF16Bits(1)).toBe(0x3c00);
    expect(f32ToF16Bits(-2)).toBe(0xc000);
    expect(f32ToF16Bits(65504)).toBe(0x7bff);
    expect(f32ToF16Bits(65520)).toBe(0x7c00);
    expect(f32ToF16Bits(2 ** -24)).toBe(0x0001);
    expect(f32ToF16Bits(2 ** -26)).toBe(0);
    expect(f32ToF16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie -> even
    expect(f32ToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie -> even (up)
    expect(Number.isNaN(f16BitsToF32(f32ToF16Bits(NaN)))).toBe(true);
    for (const v of [0.1, -3.14159, 1e-4, 12345]) expect(Math.abs(f16BitsToF32(f32ToF16Bits(v)) - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -11);
  });

  it('bf16 conversion matches torch rounding (nearest even)', () => {
    expect(f32ToBf16Bits(1)).toBe(0x3f80);
    expect(bf16BitsToF32(f32ToBf16Bits(0.333333))).toBe(0.333984375);
    expect(f32ToBf16Bits(1 + 2 ** -8)).toBe(0x3f80); // tie -> even
    expect(f32ToBf16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82);
  });

  it('packs two halves per u32, low half first, odd lengths padded', () => {
    const w = packHalf([1, -2, 0.5], 'f16');
    expect(w.length).toBe(2);
    expect(w[0]).toBe(((0xc000 << 16) | 0x3c00) >>> 0);
    expect(w[1]).toBe(0x3800);
    expect([...unpackHalf(w, 'f16', 3)]).toEqual([1, -2, 0.5]);
    expect([...unpackHalf(packHalf([3, 0.25, -7], 'bf16'), 'bf16', 3)]).toEqual([3, 0.25, -7]);
  });
});
