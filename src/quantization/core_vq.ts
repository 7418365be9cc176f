/**
 * Ports of moshi/quantization/core_vq.py for inference: `EuclideanCodebook` (centroids),
 * `VectorQuantization` (codebook_dim == dim: no project_in/out) and `ResidualVectorQuantization`
 * (encode: nearest centroid, subtract, next layer; decode: sum of lookups). The layers of one
 * residual quantizer are stacked into one GPU tensor [L, bins, D] for the rvq kernels.
 */
import type { GpuContext, Recorder, Tensor } from '../gpu/index.ts';
import { type CodePlacement, rvqDecode, rvqEncode } from '../kernels/rvq.ts';
import type { VarBuilder } from '../weights/var_builder.ts';

/** EuclideanCodebook epsilon (core_vq.py default `epsilon=1e-5`). */
export const CODEBOOK_EPSILON = 1e-5;

/**
 * EuclideanCodebook centroids, computed once at load (the official `embedding` property):
 * `embedding_sum / cluster_usage.clamp(min=epsilon)[:, None]`, rounded to f32 like torch's f32
 * division. Reads `<vb>.embedding_sum` [bins, dim], `.cluster_usage` [bins] and consumes
 * `._initialized` [1] (vb at `..._codebook`).
 */
export function loadCodebookCentroids(vb: VarBuilder, bins: number, dim: number): Float32Array {
  const sum = vb.host('embedding_sum', [bins, dim]);
  const usage = vb.host('cluster_usage', [bins]);
  vb.consume('_initialized', [1]);
  const out = new Float32Array(bins * dim);
  for (let j = 0; j < bins; j++) {
    const u = Math.max(usage[j], CODEBOOK_EPSILON);
    const uf = Math.fround(u);
    for (let d = 0; d < dim; d++) out[j * dim + d] = Math.fround(sum[j * dim + d] / uf);
  }
  return out;
}

/**
 * ResidualVectorQuantization over the first `active` of `numLayers` layers at
 * `<vb>.layers.{j}._codebook` (vb at `...vq`). Inactive layers are checked and consumed but not
 * uploaded (MimiModel.set_num_codebooks uses a prefix of the layers).
 */
export class ResidualVectorQuantization {
  private constructor(readonly codebooks: Tensor, readonly layers: number, readonly bins: number, readonly dim: number) {}

  static load(ctx: GpuContext, vb: VarBuilder, numLayers: number, active: number, bins: number, dim: number): ResidualVectorQuantization {
    const all = new Float32Array(Math.max(active, 1) * bins * dim);
    for (let j = 0; j < numLayers; j++) {
      const cb = vb.pp('layers').pp(j).pp('_codebook');
      if (j < active) all.set(loadCodebookCentroids(cb, bins, dim), j * bins * dim);
      else {
        cb.consume('embedding_sum', [bins, dim]);
        cb.consume('cluster_usage', [bins]);
        cb.consume('_initialized', [1]);
      }
    }
    const t = ctx.upload(all, [Math.max(active, 1), bins, dim], 'f32', `${vb.prefix}.centroids`);
    return new ResidualVectorQuantization(t, active, bins, dim);
  }

  /** x: [F, dim] -> codes rows [row0, row0 + layers) at column col0; quantized: [F, dim] = Σ centroids. */
  encode(rec: Recorder, x: Tensor, codes: Tensor, quantized: Tensor, at: CodePlacement): void {
    rvqEncode(rec, x, this.codebooks, codes, quantized, at);
  }

  /**
   * codes rows [row0, row0 + n), columns [col0, col0 + F) -> y: [F, dim], summing the first
   * n = `layers` (default: all active) codebooks. Throws ShapeError for n outside [1, layers].
   */
  decode(rec: Recorder, codes: Tensor, y: Tensor, frames: number, at: CodePlacement, layers = this.layers): void {
    rvqDecode(rec, codes, this.codebooks, null, y, frames, at, layers);
  }

  destroy(): void {
    this.codebooks.destroy();
  }
}
