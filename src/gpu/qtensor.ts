/**
 * Quantized weight matrices as the official checkpoints store them, kept packed on the GPU and
 * dequantized in registers by the kernels that read them (src/kernels/linear.ts, embedding.ts).
 *
 * Formats (../shared/fixtures/quant/README.md gives each layout exactly):
 * - 'q8' (PyTorch, bitsandbytes int8; moshi/utils/quantize.py `QLinear`): `CB` int8 [N, K] and
 *   `SCB` f32 [N]; W[n, k] = CB[n, k] · SCB[n] / 127. On the GPU `q` holds the int8 bytes packed four
 *   per u32 word (element e in byte e mod 4 of word e / 4, little-endian) and `scales` the f32 SCB.
 * - 'affine' (MLX `nn.quantize`, moshi_mlx): `q` u32 [N, K·bits/32] with element i of a row in bits
 *   [bits·(i mod 32/bits), +bits) of word i / (32/bits); `scales` and `biases` BF16 [N, K/groupSize]
 *   (packed two per u32 on the GPU); W[n, k] = scales[n, g] · q + biases[n, g], g = k / groupSize,
 *   computed in f32. Bits 2, 4 or 8; group sizes 32, 64 or 128 (MLX's).
 */
import { ShapeError } from './errors.ts';
import type { Tensor } from './tensor.ts';

export type QuantFormat = 'q8' | 'affine';

/** Bit widths of the MLX affine format the kernels read. */
export const AFFINE_BITS: readonly number[] = [2, 4, 8];
/** MLX group sizes. */
export const AFFINE_GROUP_SIZES: readonly number[] = [32, 64, 128];

/** A quantized [N, K] weight matrix (or embedding table [V, D]) on the GPU. Owns its tensors. */
export class QuantizedTensor {
  readonly numel: number;
  readonly dtype = 'quantized' as const;

  constructor(
    readonly format: QuantFormat,
    readonly shape: readonly [number, number],
    /** 8 for 'q8'; 2, 4 or 8 for 'affine'. */
    readonly bits: number,
    /** Elements sharing one scale (and bias): K for 'q8' (one per row), 32/64/128 for 'affine'. */
    readonly groupSize: number,
    /** Packed quantized values (u32 words). */
    readonly q: Tensor,
    /** 'q8': f32 [N] (SCB); 'affine': bf16 [N, K/groupSize]. */
    readonly scales: Tensor,
    /** 'affine': bf16 [N, K/groupSize]; null for 'q8'. */
    readonly biases: Tensor | null,
    readonly label: string,
  ) {
    const [n, k] = shape;
    this.numel = n * k;
    if (format === 'q8') {
      if (bits !== 8 || groupSize !== k || biases) throw new ShapeError(`quantized '${label}': q8 has bits 8, one scale per row and no biases`);
      if (scales.dtype !== 'f32' || scales.numel !== n) throw new ShapeError(`quantized '${label}': q8 scales must be f32 [${n}], got ${scales.dtype}[${scales.shape.join(', ')}]`);
      if (q.numel * 4 < n * k) throw new ShapeError(`quantized '${label}': ${q.numel} words cannot hold ${n}×${k} int8 values`);
    } else {
      if (!AFFINE_BITS.includes(bits)) throw new ShapeError(`quantized '${label}': ${bits}-bit affine is not supported (bits ${AFFINE_BITS.join(', ')})`);
      if (!AFFINE_GROUP_SIZES.includes(groupSize) || k % groupSize !== 0) throw new ShapeError(`quantized '${label}': group size ${groupSize} must be one of ${AFFINE_GROUP_SIZES.join(', ')} and divide K = ${k}`);
      const groups = n * (k / groupSize);
      if (q.numel !== (n * k * bits) / 32) throw new ShapeError(`quantized '${label}': ${q.numel} words for ${n}×${k} ${bits}-bit values (want ${(n * k * bits) / 32})`);
      for (const t of [scales, biases]) {
        if (!t || t.dtype !== 'bf16' || t.numel !== groups) throw new ShapeError(`quantized '${label}': scales and biases must be bf16 [${n}, ${k / groupSize}]`);
      }
    }
  }

  get rank(): number {
    return 2;
  }

  /** Bytes the packed values, scales and biases occupy on the GPU. */
  get byteLength(): number {
    return this.q.byteLength + this.scales.byteLength + (this.biases?.byteLength ?? 0);
  }

  /** Human-readable format, e.g. 'q8' or 'affine q4 g32'. */
  get formatName(): string {
    return this.format === 'q8' ? 'q8' : `affine q${this.bits} g${this.groupSize}`;
  }

  destroy(): void {
    this.q.destroy();
    this.scales.destroy();
    this.biases?.destroy();
  }

  toString(): string {
    return `${this.label}: ${this.formatName}[${this.shape.join(', ')}]`;
  }
}

/** A weight matrix as kernels take it: a plain tensor (f32 | f16 | bf16) or a quantized one. */
export type WeightTensor = Tensor | QuantizedTensor;

export function isQuantized(w: WeightTensor): w is QuantizedTensor {
  return w instanceof QuantizedTensor;
}
