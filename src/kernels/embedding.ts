import source from '../../shaders/embedding.wgsl?raw';
import { Kernel, ParamsLayout, type Recorder, ShapeError, type Tensor, type WeightTensor, expectShape, grid1d, storageBindings } from '../gpu/index.ts';
import { WEIGHT_FORMATS_WGSL, expectWeight, weightBuffers, weightConstants, weightFormatTag } from './weight_format.ts';
import { weightRanges } from './weight_ranges.ts';

const WG = 256;

export const embeddingKernel = new Kernel('embedding', WEIGHT_FORMATS_WGSL + source, storageBindings({ w: 'read', wscale: 'read', wbias: 'read', ids: 'read', y: 'read_write' }), new ParamsLayout([
  ['rows', 'u32'],
  ['d', 'u32'],
  ['v', 'u32'],
  ['ids_offset', 'u32'],
  ['accumulate', 'u32'],
  ['row0', 'u32'],
]));

export interface EmbeddingOptions {
  /** Add into y (sum of several embeddings, as LMModel.forward_text sums text + audio) instead of overwriting. */
  accumulate: boolean;
  /** Index of the first id to use inside `ids` (default 0). */
  idsOffset?: number;
  /** Rows M to look up (default y.shape[0]). */
  rows?: number;
}

/**
 * y[m,:] (+)= table[ids[idsOffset+m], :] for m < M (nn.Embedding; ScaledEmbedding in
 * moshi/models/lm_utils.py, whose zero_idx = -1 yields a zero vector).
 * - table: [V, D] f32 | f16 | bf16 (halves packed two per u32), or a QuantizedTensor (MLX
 *   quantizes embeddings too: a row is dequantized as a weight row, in registers)
 * - ids: i32, any shape, at least idsOffset + M elements (GPU data: read by the shader)
 * - y: f32 [M', D] with M' ≥ M; rows ≥ M are untouched
 * An id < 0 or ≥ V contributes zeros (never an out-of-bounds read). Note: the official module
 * maps exactly -1 to zeros and clamps other negative ids to row 0; Moshi only ever uses -1.
 * A table over one binding's size (GpuContext.bindingLimit) is looked up in row ranges, one
 * dispatch per range (src/kernels/weight_ranges.ts).
 * Throws ShapeError naming the tensor whose shape or dtype is wrong, or a bad offset/row count.
 */
export function embedding(rec: Recorder, table: WeightTensor, ids: Tensor, y: Tensor, opts: EmbeddingOptions): void {
  const [v, d] = expectWeight('embedding table', table);
  expectShape('embedding output', y, [-1, d], ['f32']);
  expectShape('embedding ids', ids, ids.shape, ['i32']);
  const idsOffset = opts.idsOffset ?? 0;
  const rows = opts.rows ?? y.shape[0];
  if (!Number.isInteger(idsOffset) || idsOffset < 0) throw new ShapeError(`embedding: idsOffset must be a non-negative integer, got ${idsOffset}`);
  if (!Number.isInteger(rows) || rows < 0 || rows > y.shape[0]) {
    throw new ShapeError(`embedding: rows must be an integer in [0, ${y.shape[0]}] (output '${y.label}' [${y.shape.join(', ')}]), got ${rows}`);
  }
  if (idsOffset + rows > ids.numel) {
    throw new ShapeError(`embedding ids '${ids.label}' [${ids.shape.join(', ')}] has ${ids.numel} elements, needs idsOffset ${idsOffset} + rows ${rows}`);
  }
  if (rows === 0 || d === 0) return;
  // A table over one binding's size is looked up range by range: each adds the rows it holds.
  weightRanges(rec.ctx, table).forEach((r, i) => {
    rec.dispatch(embeddingKernel, {
      buffers: [...weightBuffers(r.w), ids, y],
      params: { rows, d, v: r.rows, ids_offset: idsOffset, accumulate: opts.accumulate || i > 0 ? 1 : 0, row0: r.row0 },
      constants: { ...weightConstants(table), WG },
      workgroups: grid1d(rows * d, WG),
      label: `embedding.${weightFormatTag(table)}`,
    });
  });
}
