/**
 * StreamingTransformer: port of moshi/modules/transformer.py `StreamingTransformer` /
 * `StreamingTransformerLayer` / `StreamingMultiheadAttention` (+ `RingKVCache`, `LayerScale`,
 * `RMSNorm`, `create_norm_fn`) and moshi/modules/gating.py `ActivationGating`, for batch 1 in
 * streaming mode. Used by Mimi (encoder/decoder transformers) and the Moshi LM (temporal
 * transformer and depformer).
 *
 * One layer (pre-norm, as the official `_sa_block` / `_ff_block`):
 *   x = x + layer_scale_1 ⊙ out_proj(attention(in_proj(norm1(x))))
 *   x = x + layer_scale_2 ⊙ ffn(norm2(x))
 *   ffn = linear2(gelu(linear1(·)))                         (gating 'none', exact-erf GELU)
 *       | linear_out(silu(h[:, :H]) · h[:, H:]), h = linear_in(·)   (gating 'silu')
 * All linears are bias-free (the official code builds them with bias=False). With
 * `weightsPerStep` (the depformer) step s uses the w-th in_proj/out_proj block and `gating.{w}`,
 * where s = the streaming offset (number of steps since reset) and w = s, or schedule[s] with a
 * `weightsPerStepSchedule` (Hibiki: steps sharing weight sets), as `apply_weights_per_step`.
 */
import { type GpuContext, type Recorder, ShapeError, Tensor, type WeightTensor, expectShape } from '../gpu/index.ts';
import { KVCache, attention } from '../kernels/attention.ts';
import { ropeFreqsTensor } from '../kernels/rope.ts';
import { addInPlace, addScaledInPlace, gatedSilu } from '../kernels/elementwise.ts';
import { type LinearFusion, canFuseAttendMatvec, canFuseMatmul, canFuseMatvec, fusedAttendMatvec, fusedMatmul, fusedMatvec, linear } from '../kernels/linear.ts';
import { unary } from '../kernels/unary.ts';
import { BlockStream, type BlockVectors, type LayerBlockShape, attendBlock, blockParts, blockVectors, canRunLayerBlocks, ffnBlock, sumBlock } from '../kernels/layer_block.ts';
import { gatingHidden } from './gating.ts';
import { NORM_EPS, type NormWeights, type TransformerNorm, applyNorm, freeNorm, loadNorm, packedLayerNorm } from './norm.ts';
import type { StoragePolicy, VarBuilder } from '../weights/var_builder.ts';

export type { TransformerNorm };

/** Configuration of a `StreamingTransformer`, in the official constructor's terms (camelCase). */
export interface TransformerConfig {
  dModel: number;
  numHeads: number;
  numLayers: number;
  /** `dim_feedforward`: the FFN width (gating 'none'), or the gating's nominal width from which
   * the hidden size follows (`ActivationGating`: 21·d/8 when it is 4·d, else 2·f/3). A list gives
   * one width per weight step (depformer). */
  dimFeedforward: number | number[];
  /** Only causal transformers are supported (Mimi and Moshi are causal). */
  causal: boolean;
  /** Attention window in steps (`context`); also the KV cache capacity. null = unlimited, which
   * needs `weightsPerStep` (capacity = weightsPerStep, the official rule) or `kvCapacity`. */
  context: number | null;
  maxPeriod: number;
  /** 'rope' (interleaved RotaryEmbedding) or 'none'. */
  positionalEmbedding: 'rope' | 'none';
  norm: TransformerNorm;
  gating: 'none' | 'silu';
  /** Initial LayerScale value in the official config; non-null means `layer_scale_{1,2}.scale` weights exist. */
  layerScale: number | null;
  /** Depformer: number of per-step weight sets (`weights_per_step`); 0/undefined = shared weights. */
  weightsPerStep?: number;
  /**
   * `weights_per_step_schedule` (Hibiki): step s uses weight set schedule[s]; length weightsPerStep,
   * max(schedule) + 1 weight sets are stored (official `apply_weights_per_step`).
   */
  weightsPerStepSchedule?: readonly number[] | null;
  /** Overrides the norm's eps (defaults as `create_norm_fn`: layer_norm 1e-5, layer_norm_f32 1e-8, rms_norm 1e-5, rms_norm_f32 1e-8). */
  normEps?: number;
  /** KV cache capacity when `context` is null and there are no per-step weights. */
  kvCapacity?: number;
  /** KV cache storage: f32 (default) or packed f16 halves (src/kernels/attention.ts KVCache). */
  kvDtype?: 'f32' | 'f16';
  /**
   * Run each call as two split-K layer blocks per layer (src/kernels/layer_block.ts) where the
   * device and shapes allow: for transformers of small matrices, where dispatches bound the step
   * (the depformer, Mimi's transformers). Default false (the fused matvecs / matmuls).
   */
  layerBlocks?: boolean;
}

export { NORM_EPS };

export { gatingHidden };

interface Ffn {
  /** gating none: linear1 [F, D]; silu: linear_in [2H, D]. */
  wIn: WeightTensor;
  /** gating none: linear2 [D, F]; silu: linear_out [D, H]. */
  wOut: WeightTensor;
  /** Width of the activation output (F, or H for gating). */
  hidden: number;
}

interface Layer {
  norm1: NormWeights;
  norm2: NormWeights;
  inProj: WeightTensor[]; // per weight step: [3D, D]
  outProj: WeightTensor[]; // per weight step: [D, D]
  ffn: Ffn[]; // per weight step
  scale1: Tensor | null; // [D]
  scale2: Tensor | null; // [D]
  cache: KVCache;
  /** The layer's vectors for the layer blocks, copied from its norms and scales by the first call that takes them. */
  blocks: BlockVectors | null;
}

/** A window of `rows` leading rows of a 2-D scratch tensor (offset 0, no copy). */
function rowsView(t: Tensor, rows: number): Tensor {
  return new Tensor(t.buffer, [rows, t.shape[1]], t.dtype, t.label, t.byteOffset, false);
}

/** Row `r` of a 2-D f32 tensor as a [1, C] window (for copies only: the offset need not be 256-aligned). */
function rowAt(t: Tensor, r: number): Tensor {
  const c = t.shape[1];
  return new Tensor(t.buffer, [1, c], t.dtype, `${t.label}[${r}]`, t.byteOffset + r * c * 4, false);
}

/** Scratch activations for T rows. */
interface Scratch {
  rows: number;
  norm: Tensor; // [T, D]
  qkv: Tensor; // [T, 3D]
  attn: Tensor; // [T, D]
  upd: Tensor; // [T, D]
  h: Tensor; // [T, max ffn-in width]
  act: Tensor; // [T, max hidden]
  // Per-row staging for per-step weights with T > 1.
  rowIn: Tensor; // [1, max(D, hidden)]
  rowOut: Tensor; // [1, max(3D, 2H, F)]
}

/**
 * A causal streaming transformer on the GPU (batch 1). Create with `StreamingTransformer.load`.
 * Streaming state: one `KVCache` per layer and the step offset (the official `offset_cpu`);
 * `forward` advances it by T, `reset()` clears it.
 */
export class StreamingTransformer {
  private scratch: Scratch | null = null;
  /** The residual stream of the layer blocks (created on the first step that takes them). */
  private stream: BlockStream | null = null;
  /** Scratch buffers replaced by a larger allocation; kept until destroy() because a recording
   * that is not submitted yet may still use them. */
  private retired: Tensor[] = [];
  private destroyed = false;
  /** Dispatches the last `forward` recorded (all layers): a deterministic count for benchmarks. */
  lastForwardDispatches = 0;

  private constructor(
    readonly ctx: GpuContext,
    readonly cfg: TransformerConfig,
    private readonly layers: Layer[],
    /** Number of stored weight sets (1, weightsPerStep, or max(schedule) + 1). */
    readonly mult: number,
    /** Steps with their own weight index (weightsPerStep, or 1 for shared weights). */
    readonly steps: number,
    /** Weight set of each step (identity without a schedule). */
    private readonly weightIndex: readonly number[],
  ) {}

  /**
   * Loads the weights of the official StreamingTransformer module under `vb` (e.g.
   * `encoder_transformer.transformer`, `transformer`, `depformer`) by checkpoint keys:
   * `layers.{l}.norm{1,2}.{weight,bias}` (layer_norm) or `.alpha [1,1,D]` (rms_norm),
   * `layers.{l}.self_attn.in_proj_weight [mult·3D, D]` and `.self_attn.out_proj.weight [mult·D, D]`
   * (per-step blocks stacked along dim 0, split here with `vb.chunks`; the module layout
   * `self_attn.in_projs.{i}.weight` / `out_projs.{i}.weight` is read too), `layers.{l}.linear1.weight`
   * / `linear2.weight` (gating 'none') or `layers.{l}.gating[.{s}].linear_{in,out}.weight` (silu),
   * `layers.{l}.layer_scale_{1,2}.scale [D]` when layerScale is set.
   * policy 'native' keeps F16/BF16 linear weights packed (norms and scales are always f32).
   * Throws WeightError (src/weights/var_builder.ts) for a missing or misshapen key, ShapeError for an
   * unsupported config.
   */
  static load(ctx: GpuContext, vb: VarBuilder, cfg: TransformerConfig, policy: StoragePolicy = 'f32'): StreamingTransformer {
    const D = cfg.dModel;
    const H = cfg.numHeads;
    if (!Number.isInteger(D) || !Number.isInteger(H) || H <= 0 || D % H !== 0) {
      throw new ShapeError(`transformer '${vb.prefix}': d_model ${D} is not divisible by num_heads ${H}`);
    }
    if (!cfg.causal) throw new ShapeError(`transformer '${vb.prefix}': only causal transformers are supported (causal=false given)`);
    if (cfg.positionalEmbedding !== 'rope' && cfg.positionalEmbedding !== 'none') {
      throw new ShapeError(`transformer '${vb.prefix}': positional_embedding '${cfg.positionalEmbedding}' is not supported (use 'rope' or 'none')`);
    }
    if (!(cfg.norm in NORM_EPS)) throw new ShapeError(`transformer '${vb.prefix}': unknown norm '${cfg.norm}'`);
    if (cfg.gating !== 'none' && cfg.gating !== 'silu') throw new ShapeError(`transformer '${vb.prefix}': gating '${cfg.gating}' is not supported (use 'none' or 'silu')`);
    const steps = cfg.weightsPerStep && cfg.weightsPerStep > 0 ? cfg.weightsPerStep : 1;
    const schedule = steps > 1 && cfg.weightsPerStepSchedule ? cfg.weightsPerStepSchedule : null;
    if (schedule && (schedule.length !== steps || !schedule.every((i) => Number.isInteger(i) && i >= 0))) {
      throw new ShapeError(`transformer '${vb.prefix}': weights_per_step_schedule must list ${steps} weight indices >= 0, got [${schedule.join(', ')}]`);
    }
    const mult = schedule ? Math.max(...schedule) + 1 : steps;
    const weightIndex = schedule ? [...schedule] : Array.from({ length: steps }, (_, i) => i);
    if (steps > 1 && cfg.gating === 'none') throw new ShapeError(`transformer '${vb.prefix}': weights_per_step needs gating (as the official code asserts)`);
    const capacity = cfg.context ?? (steps > 1 ? steps : cfg.kvCapacity);
    if (capacity === undefined) {
      throw new ShapeError(`transformer '${vb.prefix}': context is null and there are no per-step weights: give kvCapacity (the official code cannot stream without a context either)`);
    }
    const dims = Array.isArray(cfg.dimFeedforward) ? cfg.dimFeedforward : Array<number>(mult).fill(cfg.dimFeedforward);
    if (dims.length !== mult) throw new ShapeError(`transformer '${vb.prefix}': dim_feedforward lists ${dims.length} widths for ${mult} weight steps`);
    const eps = cfg.normEps ?? NORM_EPS[cfg.norm];
    const layers: Layer[] = [];
    try {
      for (let l = 0; l < cfg.numLayers; l++) {
        const lv = vb.pp('layers').pp(l);
        const sa = lv.pp('self_attn');
        const inProj = sa.has('in_proj_weight')
          ? sa.chunks('in_proj_weight', [mult * 3 * D, D], mult, policy)
          : Array.from({ length: mult }, (_, i) => sa.pp('in_projs').pp(i).weight('weight', [3 * D, D], policy));
        const outProj = sa.has('out_proj.weight')
          ? sa.pp('out_proj').chunks('weight', [mult * D, D], mult, policy)
          : Array.from({ length: mult }, (_, i) => sa.pp('out_projs').pp(i).weight('weight', [D, D], policy));
        let ffn: Ffn[];
        if (cfg.gating === 'none') {
          const f = dims[0];
          ffn = [{ wIn: lv.pp('linear1').weight('weight', [f, D], policy), wOut: lv.pp('linear2').weight('weight', [D, f], policy), hidden: f }];
        } else {
          ffn = dims.map((f, s) => {
            const g = steps > 1 ? lv.pp('gating').pp(s) : lv.pp('gating');
            const hid = gatingHidden(D, f);
            return { wIn: g.pp('linear_in').weight('weight', [2 * hid, D], policy), wOut: g.pp('linear_out').weight('weight', [D, hid], policy), hidden: hid };
          });
        }
        const scaled = cfg.layerScale !== null && cfg.layerScale !== undefined;
        const L: Layer = {
          norm1: loadNorm(lv.pp('norm1'), cfg.norm, D, eps),
          norm2: loadNorm(lv.pp('norm2'), cfg.norm, D, eps),
          inProj,
          outProj,
          ffn,
          scale1: scaled ? lv.pp('layer_scale_1').tensor('scale', [D]) : null,
          scale2: scaled ? lv.pp('layer_scale_2').tensor('scale', [D]) : null,
          cache: new KVCache(ctx, { numHeads: H, headDim: D / H, capacity, label: `${vb.key('layers')}.${l}.kv`, dtype: cfg.kvDtype }),
          blocks: null,
        };
        layers.push(L);
      }
    } catch (e) {
      for (const L of layers) destroyLayer(L);
      throw e;
    }
    return new StreamingTransformer(ctx, cfg, layers, mult, steps, weightIndex);
  }

  /** Bytes of the weights on the GPU (norms, projections, FFNs, layer scales; not the KV caches). */
  get weightBytes(): number {
    let n = 0;
    for (const L of this.layers) {
      for (const t of [L.norm1.weight, L.norm1.bias, L.norm2.weight, L.norm2.bias, L.scale1, L.scale2, ...L.inProj, ...L.outProj]) n += t?.byteLength ?? 0;
      for (const f of L.ffn) n += f.wIn.byteLength + f.wOut.byteLength;
    }
    return n;
  }

  /** Bytes of the KV caches of every layer on the GPU. */
  get kvCacheBytes(): number {
    return this.layers.reduce((a, L) => a + L.cache.byteLength, 0);
  }

  /** Steps recorded since the last reset (the official streaming offset). */
  get offset(): number {
    return this.layers.length ? this.layers[0].cache.offset : 0;
  }

  /** KV cache storage of every layer. */
  get kvDtype(): 'f32' | 'f16' {
    return this.cfg.kvDtype ?? 'f32';
  }

  /** KV cache capacity per layer in steps (at most this many steps per forward). */
  get capacity(): number {
    return this.layers.length ? this.layers[0].cache.capacity : Infinity;
  }

  private ensureScratch(rows: number): Scratch {
    if (this.scratch && this.scratch.rows >= rows) return this.scratch;
    if (this.scratch) {
      const s = this.scratch;
      this.retired.push(s.norm, s.qkv, s.attn, s.upd, s.h, s.act, s.rowIn, s.rowOut);
    }
    const D = this.cfg.dModel;
    const hid = Math.max(...this.layers.flatMap((L) => L.ffn.map((f) => f.hidden)), 1);
    const hIn = Math.max(...this.layers.flatMap((L) => L.ffn.map((f) => f.wIn.shape[0])), 1);
    const n = Math.max(rows, this.scratch ? Math.min(2 * this.scratch.rows, this.capacity) : rows);
    const t = (cols: number, name: string) => this.ctx.tensor([n, cols], 'f32', `transformer.${name}`);
    this.scratch = {
      rows: n,
      norm: t(D, 'norm'),
      qkv: t(3 * D, 'qkv'),
      attn: t(D, 'attn'),
      upd: t(D, 'upd'),
      h: t(hIn, 'ffn_in'),
      act: t(hid, 'ffn_act'),
      rowIn: this.ctx.tensor([1, Math.max(D, hid)], 'f32', 'transformer.row_in'),
      rowOut: this.ctx.tensor([1, Math.max(3 * D, hIn)], 'f32', 'transformer.row_out'),
    };
    return this.scratch;
  }

  /**
   * y = linear(x, ws[w(s)]) where row t of x is step s = `step + t` and w(s) its weight set
   * (s itself, or schedule[s]) with per-step weights, or ws[0] for every row (shared weights).
   * x: [T, K], y: [T, N] f32.
   */
  private linearSteps(rec: Recorder, x: Tensor, ws: WeightTensor[], step: number, y: Tensor, sc: Scratch): void {
    if (ws.length === 1) {
      linear(rec, x, ws[0], null, y);
      return;
    }
    const T = x.shape[0];
    if (T === 1) {
      linear(rec, x, ws[this.weightIndex[step]], null, y);
      return;
    }
    const [N, K] = ws[0].shape;
    const xin = new Tensor(sc.rowIn.buffer, [1, K], 'f32', 'transformer.row_in', sc.rowIn.byteOffset, false);
    const yout = new Tensor(sc.rowOut.buffer, [1, N], 'f32', 'transformer.row_out', sc.rowOut.byteOffset, false);
    for (let t = 0; t < T; t++) {
      rec.copy(rowAt(x, t), xin, K * 4);
      linear(rec, xin, ws[this.weightIndex[step + t]], null, yout);
      rec.copy(yout, rowAt(y, t), N * 4);
    }
  }

  /**
   * Records T streaming steps: y = transformer(x). x, y: [T, dModel] f32, distinct tensors.
   * With `cfg.layerBlocks`, a call every layer of which canRunLayerBlocks takes runs as two layer
   * blocks per layer plus one sum (src/kernels/layer_block.ts); else the fused (or, with fusion
   * off, the separate) kernels.
   * `opts.step` (per-step weights only) must equal the streaming offset: the depformer records
   * steps 0..S-1 in order after reset(), as the official `apply_weights_per_step`; other
   * transformers ignore it. Advances the offset by T. Scratch buffers grow on demand.
   * Throws ShapeError for bad shapes, T above the KV cache capacity, or a step out of range.
   */
  forward(rec: Recorder, x: Tensor, y: Tensor, opts: { step?: number } = {}): void {
    if (this.destroyed) throw new ShapeError('StreamingTransformer.forward after destroy()');
    const D = this.cfg.dModel;
    expectShape('transformer input', x, [-1, D], ['f32']);
    const T = x.shape[0];
    expectShape('transformer output', y, [T, D], ['f32']);
    if (x.buffer === y.buffer) throw new ShapeError(`transformer: input '${x.label}' and output '${y.label}' share a buffer; use distinct tensors`);
    if (T === 0) return;
    if (T > this.capacity) {
      throw new ShapeError(`transformer: ${T} steps in one forward exceed the KV cache capacity ${this.capacity}; feed at most ${this.capacity} steps per call`);
    }
    let step = 0;
    if (this.steps > 1) {
      step = this.offset;
      if (opts.step !== undefined && opts.step !== step) {
        throw new ShapeError(`transformer: step ${opts.step} requested but the streaming offset is ${step} (per-step weights follow the offset; call reset() before step 0)`);
      }
      if (step + T > this.steps) {
        throw new ShapeError(`transformer: steps ${step}..${step + T - 1} exceed the ${this.steps} steps with per-step weights (call reset() between frames)`);
      }
    }
    if (this.layers.length && this.layers.every((L) => this.takesBlocks(rec, L, step, T))) {
      this.forwardBlocks(rec, x, y, step);
      return;
    }
    const sc0 = this.ensureScratch(T);
    const sc: Scratch = {
      ...sc0,
      norm: rowsView(sc0.norm, T),
      qkv: rowsView(sc0.qkv, T),
      attn: rowsView(sc0.attn, T),
      upd: rowsView(sc0.upd, T),
    };
    const rope = this.cfg.positionalEmbedding === 'rope' ? { maxPeriod: this.cfg.maxPeriod } : null;
    rec.copy(x, y, T * D * 4); // y is the residual stream from here on
    const dispatches0 = rec.dispatchCount;
    const dh = D / this.cfg.numHeads;
    for (const L of this.layers) {
      // Self-attention block: qkv = in_proj(norm1(y)), RoPE on q and k, attention, y += out_proj(attn).
      const inProj = L.inProj[L.inProj.length === 1 ? 0 : this.weightIndex[step]];
      const r = rope && { freqs: ropeFreqsTensor(this.ctx, dh, rope.maxPeriod), headDim: dh, offset: L.cache.offset, rows: 2 * D };
      const qkvFusion: LinearFusion = { out: r ? 'rope' : 'store', rope: r };
      const outProj = L.outProj[L.outProj.length === 1 ? 0 : this.weightIndex[step]];
      if (T === 1 && !L.norm1.bias && canFuseMatvec(rec, y, inProj, qkvFusion.out) && canFuseAttendMatvec(rec, L.cache, outProj)) {
        // A short cache (the depformer): norm1 + in_proj + RoPE into the cache's qkv row, then
        // attention + out_proj + residual in one dispatch (each workgroup recomputes the attention).
        fusedMatvec(rec, y, inProj, L.cache.rowAt(L.cache.offset % L.cache.capacity), { ...qkvFusion, rmsNorm: { alpha: L.norm1.weight, eps: L.norm1.eps } });
        fusedAttendMatvec(rec, { cache: L.cache, w: outProj, y, context: this.cfg.context, out: 'residual', scale: L.scale1 });
      } else {
        let fused = false; // the in_proj ran with qkvFusion (q and k rotated by its epilogue)
        if (T === 1 && !L.norm1.bias && canFuseMatvec(rec, y, inProj, qkvFusion.out)) {
          fusedMatvec(rec, y, inProj, sc.qkv, { ...qkvFusion, rmsNorm: { alpha: L.norm1.weight, eps: L.norm1.eps } }); // one dispatch
          fused = true;
        } else {
          const ln1 = this.layerNormPrologue(rec, L.norm1, y, L.inProj, qkvFusion.out);
          if (ln1) {
            // norm1 + in_proj + RoPE, one dispatch (layerNormPrologue checked that the fused matmul takes it).
            fused = this.fusedLinear(rec, y, L.inProj, step, sc.qkv, { ...qkvFusion, layerNorm: ln1 });
            if (!fused) throw new Error('transformer: the LayerNorm prologue was refused after layerNormPrologue accepted it');
          } else {
            applyNorm(rec, L.norm1, y, sc.norm); // norm: [T, D]
            fused = this.fusedLinear(rec, sc.norm, L.inProj, step, sc.qkv, qkvFusion);
            if (!fused) this.linearSteps(rec, sc.norm, L.inProj, step, sc.qkv, sc); // qkv: [T, 3D]
          }
        }
        attention(rec, { qkv: sc.qkv, out: sc.attn, cache: L.cache, numHeads: this.cfg.numHeads, context: this.cfg.context, rope: fused ? null : rope }); // attn: [T, D]
        if (!this.fusedLinear(rec, sc.attn, L.outProj, step, y, { out: 'residual', scale: L.scale1 })) {
          this.linearSteps(rec, sc.attn, L.outProj, step, sc.upd, sc); // upd: [T, D]
          this.residual(rec, y, sc.upd, L.scale1);
        }
      }
      // Feed-forward block: y += ffn(norm2(y)).
      if (T === 1 && this.fusedFfn(rec, L, step, y, sc)) continue;
      const ln2 = this.cfg.gating === 'none' ? this.layerNormPrologue(rec, L.norm2, y, L.ffn.map((f) => f.wIn), 'gelu') : null;
      if (ln2) {
        this.ffn(rec, L, step, sc, T, y, ln2); // norm2 + linear1 + GELU, one dispatch
        continue;
      }
      applyNorm(rec, L.norm2, y, sc.norm);
      this.ffn(rec, L, step, sc, T, y);
    }
    this.lastForwardDispatches = rec.dispatchCount - dispatches0;
  }

  /** This step's weights of layer L (per-step weight set or the shared one). */
  private weightsAt(L: Layer, step: number): { inProj: WeightTensor; outProj: WeightTensor; ffn: Ffn } {
    const pick = <V>(a: V[]) => a[a.length === 1 ? 0 : this.weightIndex[step]];
    return { inProj: pick(L.inProj), outProj: pick(L.outProj), ffn: pick(L.ffn) };
  }

  /** Layer L's call of T rows from step `step` as layer_block.ts describes it (this step's weight set). */
  private blockShape(L: Layer, step: number, t: number): LayerBlockShape {
    const w = this.weightsAt(L, step);
    return {
      cache: L.cache, inProj: w.inProj, outProj: w.outProj, wIn: w.ffn.wIn, wOut: w.ffn.wOut, gating: this.cfg.gating,
      rope: this.cfg.positionalEmbedding === 'rope', layerNorm: L.norm1.bias !== null, t,
    };
  }

  /**
   * Whether layer L's call of T rows can run as the two layer blocks: the transformer opted in
   * (TransformerConfig.layerBlocks), one weight set for the call (T = 1 with per-step weights), both
   * norms of one kind, and src/kernels/layer_block.ts canRunLayerBlocks.
   */
  private takesBlocks(rec: Recorder, L: Layer, step: number, t: number): boolean {
    if (!this.cfg.layerBlocks || (this.steps > 1 && t > 1) || (L.norm1.bias === null) !== (L.norm2.bias === null)) return false;
    return canRunLayerBlocks(rec, this.blockShape(L, step, t));
  }

  /**
   * Layer L's vectors in one buffer (layer_block.ts blockVectors). Copied on the queue at the first
   * call, not at load: lazily loaded weights (VarBuilder uploadPending) are on the GPU by then.
   */
  private blockVectorsOf(L: Layer, l: number): BlockVectors {
    if (L.blocks) return L.blocks;
    const dh = this.cfg.dModel / this.cfg.numHeads;
    const freqs = this.cfg.positionalEmbedding === 'rope' ? ropeFreqsTensor(this.ctx, dh, this.cfg.maxPeriod) : null;
    L.blocks = blockVectors(this.ctx, { alpha1: L.norm1.weight, alpha2: L.norm2.weight, bias1: L.norm1.bias, bias2: L.norm2.bias, scale1: L.scale1, scale2: L.scale2, freqs }, `transformer layer ${l} block_vectors`);
    return L.blocks;
  }

  /**
   * One call (x, y: [T, D]) as 2 dispatches per layer plus one sum: the attention block and the
   * FFN block of every layer (split-K partial sums between them), then y = the stream's sum.
   */
  private forwardBlocks(rec: Recorder, x: Tensor, y: Tensor, step: number): void {
    const D = this.cfg.dModel;
    const T = x.shape[0];
    if (!this.stream || this.stream.rows < T) {
      if (this.stream) this.retired.push(this.stream.st, this.stream.spareRw, this.stream.spareRo, this.stream.out);
      const hid = Math.max(...this.layers.flatMap((L) => L.ffn.map((f) => f.hidden)));
      this.stream = new BlockStream(this.ctx, D, blockParts(this.cfg.numHeads, hid), Math.max(T, this.stream?.rows ?? 0), 'transformer.block_stream');
    }
    const s = this.stream;
    const dispatches0 = rec.dispatchCount;
    s.start(rec, x);
    for (const [l, L] of this.layers.entries()) {
      const v = this.blockVectorsOf(L, l);
      const shape = this.blockShape(L, step, T);
      attendBlock(rec, s, shape, { v, eps: L.norm1.eps, context: this.cfg.context });
      ffnBlock(rec, s, shape, { v, eps: L.norm2.eps });
    }
    sumBlock(rec, s, y);
    this.lastForwardDispatches = rec.dispatchCount - dispatches0;
  }

  /**
   * The LayerNorm of the linear `ws` that follows it as the matmul's prologue (LinearFusion
   * layerNorm): for a LayerNorm (with bias) before one weight set over several rows x [T, K] that
   * the fused matmul takes with `out`; null (record applyNorm) otherwise (RMSNorm, one row, per-step
   * weights, fusion off).
   */
  private layerNormPrologue(rec: Recorder, n: NormWeights, x: Tensor, ws: WeightTensor[], out: LinearFusion['out']): LinearFusion['layerNorm'] {
    if (!n.bias || x.shape[0] < 2 || ws.length !== 1 || !canFuseMatmul(rec, x, ws[0], out)) return null;
    return { params: packedLayerNorm(rec, n)!, eps: n.eps };
  }

  /** y += scale ⊙ upd (LayerScale) or y += upd. */
  private residual(rec: Recorder, y: Tensor, upd: Tensor, scale: Tensor | null): void {
    if (scale) addScaledInPlace(rec, y, upd, scale);
    else addInPlace(rec, y, upd);
  }

  /**
   * `fusion` of the linear `ws` (one weight set, or this step's) over x [T, K] into y in one
   * dispatch: the fused matvec for one row, the matmul epilogue for several rows of one weight set;
   * returns false (nothing recorded) where the shapes or the kernel choice do not allow it.
   */
  private fusedLinear(rec: Recorder, x: Tensor, ws: WeightTensor[], step: number, y: Tensor, fusion: LinearFusion): boolean {
    const T = x.shape[0];
    if (ws.length > 1 && T > 1) return false; // per-row weights: row by row (linearSteps)
    const w = ws[ws.length === 1 ? 0 : this.weightIndex[step]];
    if (T === 1 && canFuseMatvec(rec, x, w, fusion.out)) fusedMatvec(rec, x, w, y, fusion);
    else if (T > 1 && canFuseMatmul(rec, x, w, fusion.out)) fusedMatmul(rec, x, w, null, y, fusion);
    else return false;
    return true;
  }

  /**
   * The feed-forward block of one step as two fused matvecs, y += linear_out(silu-gate(linear_in(
   * rms_norm(y)))), when the layer has RMSNorm, silu gating and weights the fused matvec takes
   * (canFuseMatvec); returns false (nothing recorded) otherwise.
   */
  private fusedFfn(rec: Recorder, L: Layer, step: number, y: Tensor, sc: Scratch): boolean {
    if (this.cfg.gating !== 'silu' || L.norm2.bias) return false;
    const f = L.ffn[L.ffn.length === 1 ? 0 : this.weightIndex[step]];
    if (!canFuseMatvec(rec, y, f.wIn, 'gated_silu')) return false;
    const act = new Tensor(sc.act.buffer, [1, f.hidden], 'f32', sc.act.label, sc.act.byteOffset, false); // act: [1, H]
    if (!canFuseMatvec(rec, act, f.wOut, 'residual')) return false;
    fusedMatvec(rec, y, f.wIn, act, { rmsNorm: { alpha: L.norm2.weight, eps: L.norm2.eps }, out: 'gated_silu' });
    fusedMatvec(rec, act, f.wOut, y, { out: 'residual', scale: L.scale2 });
    return true;
  }

  /**
   * y += [scale2 ⊙] ffn(sc.norm) (sc.norm = norm2(y), [T, D]), fusing the GELU and the residual
   * where fusedLinear allows; with `ln2` (layerNormPrologue of norm2) linear1 reads y and applies
   * norm2 itself (sc.norm is not used).
   */
  private ffn(rec: Recorder, L: Layer, step: number, sc: Scratch, T: number, y: Tensor, ln2: LinearFusion['layerNorm'] = null): void {
    const gelu = this.cfg.gating === 'none';
    if (L.ffn.length === 1 || T === 1) {
      const f = L.ffn[L.ffn.length === 1 ? 0 : this.weightIndex[step]];
      const h = new Tensor(sc.h.buffer, [T, f.wIn.shape[0]], 'f32', sc.h.label, sc.h.byteOffset, false); // h: [T, F | 2H]
      const act = new Tensor(sc.act.buffer, [T, f.hidden], 'f32', sc.act.label, sc.act.byteOffset, false); // act: [T, F | H]
      if (ln2) {
        // norm2 as linear1's prologue (layerNormPrologue checked that the fused matmul takes it): reads y itself.
        if (!this.fusedLinear(rec, y, [f.wIn], 0, act, { out: 'gelu', layerNorm: ln2 })) throw new Error('transformer: the LayerNorm prologue was refused after layerNormPrologue accepted it');
      } else if (!(gelu && this.fusedLinear(rec, sc.norm, [f.wIn], 0, act, { out: 'gelu' }))) {
        linear(rec, sc.norm, f.wIn, null, h);
        if (gelu) unary(rec, 'gelu', h, act);
        else gatedSilu(rec, h, act);
      }
      if (!this.fusedLinear(rec, act, [f.wOut], 0, y, { out: 'residual', scale: L.scale2 })) {
        linear(rec, act, f.wOut, null, sc.upd);
        this.residual(rec, y, sc.upd, L.scale2);
      }
      return;
    }
    // Per-step FFN weights over several rows: row t uses gating.{w(step + t)}.
    const D = this.cfg.dModel;
    for (let t = 0; t < T; t++) {
      const f = L.ffn[this.weightIndex[step + t]];
      const xin = new Tensor(sc.rowIn.buffer, [1, D], 'f32', 'transformer.row_in', sc.rowIn.byteOffset, false);
      const h = new Tensor(sc.h.buffer, [1, f.wIn.shape[0]], 'f32', sc.h.label, sc.h.byteOffset, false);
      const act = new Tensor(sc.act.buffer, [1, f.hidden], 'f32', sc.act.label, sc.act.byteOffset, false);
      const yout = new Tensor(sc.rowOut.buffer, [1, D], 'f32', 'transformer.row_out', sc.rowOut.byteOffset, false);
      rec.copy(rowAt(sc.norm, t), xin, D * 4);
      linear(rec, xin, f.wIn, null, h);
      gatedSilu(rec, h, act);
      linear(rec, act, f.wOut, null, yout);
      rec.copy(yout, rowAt(sc.upd, t), D * 4);
    }
    this.residual(rec, y, sc.upd, L.scale2);
  }

  /** Clears the streaming state: every KV cache and the step offset (next step has position 0). */
  reset(): void {
    for (const L of this.layers) L.cache.reset();
  }

  /** Frees weights, caches and scratch buffers. The transformer cannot be used afterwards. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const L of this.layers) destroyLayer(L);
    const s = this.scratch;
    if (s) for (const t of [s.norm, s.qkv, s.attn, s.upd, s.h, s.act, s.rowIn, s.rowOut]) t.destroy();
    for (const t of this.retired) t.destroy();
    this.stream?.destroy();
    this.stream = null;
    this.scratch = null;
    this.retired = [];
  }
}

function destroyLayer(L: Layer): void {
  freeNorm(L.norm1);
  freeNorm(L.norm2);
  for (const t of [L.scale1, L.scale2, ...L.inProj, ...L.outProj]) t?.destroy();
  for (const f of L.ffn) {
    f.wIn.destroy();
    f.wOut.destroy();
  }
  L.cache.destroy();
  L.blocks?.vecs.destroy();
}
