/**
 * Ports of moshi/quantization/vq.py `ResidualVectorQuantizer` (1x1 conv input/output projections
 * around a ResidualVectorQuantization, force_projection=True in the split quantizer) and
 * `SplitResidualVectorQuantizer` (rvq_first: 1 semantic codebook; rvq_rest: n_q - 1 acoustic
 * codebooks, each with its own projections; codes concatenated, latents summed). Time-major:
 * latents [F, D], codes i32 [K, frames] (codebook-major, as Mimi's [B, K, T]).
 */
import { type GpuContext, type Recorder, ShapeError, type Tensor } from '../gpu/index.ts';
import { addInPlace } from '../kernels/elementwise.ts';
import { linear } from '../kernels/linear.ts';
import type { CodePlacement } from '../kernels/rvq.ts';
import type { Workspace } from '../modules/conv.ts';
import type { VarBuilder } from '../weights/var_builder.ts';
import { ResidualVectorQuantization } from './core_vq.ts';

/** `_quantizer_kwargs` (moshi/quantization/vq.py SplitResidualVectorQuantizer). */
export interface QuantizerConfig {
  /** Codebook dimension. */
  dimension: number;
  /** Total codebooks in the checkpoint (1 semantic + n_q-1 acoustic). */
  n_q: number;
  /** Entries per codebook (cardinality). */
  bins: number;
  input_dimension: number;
  output_dimension: number;
}

/**
 * ResidualVectorQuantizer with projections: `<vb>.input_proj.weight` [dim, in_dim, 1],
 * `<vb>.output_proj.weight` [out_dim, dim, 1] (Conv1d k=1, no bias = a linear over time-major rows),
 * `<vb>.vq.layers.{j}._codebook.*`.
 */
export class ResidualVectorQuantizer {
  private constructor(
    readonly name: string,
    readonly inputProj: Tensor, // [dim, in_dim]
    readonly outputProj: Tensor, // [out_dim, dim]
    readonly vq: ResidualVectorQuantization,
    private readonly owned: Tensor[],
  ) {}

  static load(ctx: GpuContext, vb: VarBuilder, cfg: QuantizerConfig, numLayers: number, active: number): ResidualVectorQuantizer {
    const inW = vb.tensor('input_proj.weight', [cfg.dimension, cfg.input_dimension, 1]);
    const outW = vb.tensor('output_proj.weight', [cfg.output_dimension, cfg.dimension, 1]);
    const vq = ResidualVectorQuantization.load(ctx, vb.pp('vq'), numLayers, active, cfg.bins, cfg.dimension);
    return new ResidualVectorQuantizer(vb.prefix, inW.reshape([cfg.dimension, cfg.input_dimension]), outW.reshape([cfg.output_dimension, cfg.dimension]), vq, [inW, outW]);
  }

  get activeLayers(): number {
    return this.vq.layers;
  }

  /** x: [F, in_dim] -> projected [F, dim] (a workspace buffer). */
  project(rec: Recorder, ws: Workspace, x: Tensor): Tensor {
    const p = ws.get(`${this.name}.input_proj`, [x.shape[0], this.inputProj.shape[0]]); // p: [F, dim]
    linear(rec, x, this.inputProj, null, p);
    return p;
  }

  /** x: [F, in_dim] -> codes rows [row0, row0 + active) from column col0. Returns the projection [F, dim]. */
  encode(rec: Recorder, ws: Workspace, x: Tensor, codes: Tensor, at: CodePlacement): Tensor {
    const p = this.project(rec, ws, x);
    const q = ws.get(`${this.name}.quantized`, p.shape);
    this.vq.encode(rec, p, codes, q, at);
    return p;
  }

  /** codes -> y: [F, out_dim] = output_proj(Σ centroids of the first `layers` codebooks, default all active). */
  decode(rec: Recorder, ws: Workspace, codes: Tensor, frames: number, y: Tensor, at: CodePlacement, layers = this.activeLayers): void {
    const q = ws.get(`${this.name}.decoded`, [frames, this.vq.dim]); // q: [F, dim]
    this.vq.decode(rec, codes, q, frames, at, layers);
    linear(rec, q, this.outputProj, null, y);
  }

  destroy(): void {
    for (const t of this.owned) t.destroy();
    this.vq.destroy();
  }
}

/**
 * SplitResidualVectorQuantizer (n_q_semantic = 1) with `numCodebooks` active codebooks
 * (set_num_codebooks): codebook 0 from rvq_first, codebooks 1.. from the first numCodebooks - 1
 * layers of rvq_rest. Weights under `<vb>.rvq_first.*` and `<vb>.rvq_rest.*` (vb at `quantizer`).
 */
export class SplitResidualVectorQuantizer {
  private constructor(readonly cfg: QuantizerConfig, readonly numCodebooks: number, readonly rvqFirst: ResidualVectorQuantizer, readonly rvqRest: ResidualVectorQuantizer) {}

  static load(ctx: GpuContext, vb: VarBuilder, cfg: QuantizerConfig, numCodebooks: number): SplitResidualVectorQuantizer {
    const first = ResidualVectorQuantizer.load(ctx, vb.pp('rvq_first'), cfg, 1, 1);
    let rest: ResidualVectorQuantizer;
    try {
      rest = ResidualVectorQuantizer.load(ctx, vb.pp('rvq_rest'), cfg, cfg.n_q - 1, numCodebooks - 1);
    } catch (e) {
      first.destroy(); // its codebooks were made on the host, not through the VarBuilder
      throw e;
    }
    return new SplitResidualVectorQuantizer(cfg, numCodebooks, first, rest);
  }

  /**
   * latent: f32 [F, in_dim] -> codes i32 [K_total, cols], rows [0, numCodebooks) written at column col0.
   * Returns the two input projections (for intermediate checks).
   */
  encode(rec: Recorder, ws: Workspace, latent: Tensor, codes: Tensor, col0 = 0): { first: Tensor; rest: Tensor | null } {
    const first = this.rvqFirst.encode(rec, ws, latent, codes, { row0: 0, col0 });
    const rest = this.numCodebooks > 1 ? this.rvqRest.encode(rec, ws, latent, codes, { row0: 1, col0 }) : null;
    return { first, rest };
  }

  /**
   * codes rows [0, n) at columns [col0, col0 + frames) -> latent f32 [frames, out_dim] (a workspace
   * buffer), n = `codebooks` (default numCodebooks). As the official decode, the number of codes
   * given decides the codebooks summed: rvq_first takes row 0, rvq_rest rows 1..n-1 when n > 1
   * (`if codes.shape[1] > self.n_q_semantic`), so Moshi's dep_q codes decode through a Mimi loaded
   * with more codebooks. Throws ShapeError for n outside [1, numCodebooks].
   */
  decode(rec: Recorder, ws: Workspace, codes: Tensor, frames: number, col0 = 0, codebooks = this.numCodebooks): Tensor {
    if (!Number.isInteger(codebooks) || codebooks < 1 || codebooks > this.numCodebooks) {
      throw new ShapeError(`quantizer decode: ${codebooks} codebooks asked, this quantizer was loaded with ${this.numCodebooks} (1 ≤ codebooks ≤ num_codebooks)`);
    }
    const y = ws.get('quantizer.decoded', [frames, this.cfg.output_dimension]);
    this.rvqFirst.decode(rec, ws, codes, frames, y, { row0: 0, col0 });
    if (codebooks > 1) {
      const r = ws.get('quantizer.decoded_rest', [frames, this.cfg.output_dimension]);
      this.rvqRest.decode(rec, ws, codes, frames, r, { row0: 1, col0 }, codebooks - 1);
      addInPlace(rec, y, r); // quantized += rvq_rest.decode(...)
    }
    return y;
  }

  destroy(): void {
    this.rvqFirst.destroy();
    this.rvqRest.destroy();
  }
}
