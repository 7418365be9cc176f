/**
 * The normalizations of moshi/modules/transformer.py `create_norm_fn` as modules with weights:
 * LayerNorm (`weight`, `bias` [D]) and RMSNorm (`alpha` [1, 1, D], moshi's `RMSNorm`), loaded by
 * their checkpoint keys and applied with the kernels of src/kernels/norm.ts. Used by the
 * transformer layers and by LMModel (`out_norm`, `depformer_norms`).
 */
import { type Recorder, Tensor } from '../gpu/index.ts';
import { layerNorm, rmsNorm } from '../kernels/norm.ts';
import type { VarBuilder } from '../weights/var_builder.ts';

/** Normalizations of `create_norm_fn` (moshi/modules/transformer.py). */
export type TransformerNorm = 'layer_norm' | 'layer_norm_f32' | 'rms_norm' | 'rms_norm_f32';

/** Default eps per norm type, as `create_norm_fn`. */
export const NORM_EPS: Record<TransformerNorm, number> = { layer_norm: 1e-5, layer_norm_f32: 1e-8, rms_norm: 1e-5, rms_norm_f32: 1e-8 };

/** A loaded norm: `weight` is LayerNorm's weight [D] or RMSNorm's alpha [1, 1, D] (f32). */
export interface NormWeights {
  kind: TransformerNorm;
  weight: Tensor;
  /** LayerNorm's bias [D]; null for RMSNorm. */
  bias: Tensor | null;
  eps: number;
  /** LayerNorm's (weight; bias) as one f32 [2, D] tensor, made by packedLayerNorm on first use. */
  packed?: Tensor | null;
}

/** Loads the norm module under `vb` (`weight` + `bias`, or `alpha`); throws WeightError naming a missing or misshapen key. */
export function loadNorm(vb: VarBuilder, kind: TransformerNorm, d: number, eps = NORM_EPS[kind]): NormWeights {
  if (kind === 'layer_norm' || kind === 'layer_norm_f32') {
    return { kind, weight: vb.tensor('weight', [d]), bias: vb.tensor('bias', [d]), eps };
  }
  return { kind, weight: vb.tensor('alpha', [1, 1, d]), bias: null, eps };
}

/** y = norm(x), x and y [T, D] f32. */
export function applyNorm(rec: Recorder, n: NormWeights, x: Tensor, y: Tensor): void {
  if (n.bias) layerNorm(rec, x, n.weight, n.bias, y, n.eps);
  else rmsNorm(rec, x, n.weight, y, n.eps);
}

export function freeNorm(n: NormWeights): void {
  n.weight.destroy();
  n.bias?.destroy();
  n.packed?.destroy();
}

/**
 * LayerNorm's weight and bias [D] as one f32 [2, D] tensor (row 0 weight, row 1 bias), the
 * `layerNorm.params` of the matmul's LayerNorm prologue (src/kernels/linear.ts LinearFusion).
 * Made on first use: the two copies are recorded into `rec`, before the dispatch that reads it;
 * kept in `n.packed`, freed by freeNorm. Null for RMSNorm (no bias).
 */
export function packedLayerNorm(rec: Recorder, n: NormWeights): Tensor | null {
  if (!n.bias) return null;
  if (n.packed) return n.packed;
  const d = n.weight.numel;
  const p = rec.ctx.tensor([2, d], 'f32', `${n.weight.label} + bias (packed)`);
  rec.copy(n.weight, new Tensor(p.buffer, [d], 'f32', `${p.label}[0]`, p.byteOffset, false), 4 * d);
  rec.copy(n.bias, new Tensor(p.buffer, [d], 'f32', `${p.label}[1]`, p.byteOffset + 4 * d, false), 4 * d);
  n.packed = p;
  return p;
}
