/**
 * The Moshi language model on WebGPU: port of moshi/models/lm.py `LMModel` (inference paths
 * `forward_text` and `forward_depformer`), with its weights read by their checkpoint keys 1:1.
 *
 * Per step (one 80 ms frame):
 *   x = Σ_k emb[k](tok[1 + k]) + text_emb(tok[0]) (+ condition sum)          // x: [1, D]
 *   h = out_norm(transformer(x))                                             // h: [1, D]
 *   text_logits = text_linear(h)                                             // [1, text_card_out]
 * then, for each depformer step k < dep_q (inside one fresh depformer streaming state):
 *   d = depformer_in[k](h) + (k == 0 ? depformer_text_emb(text) : depformer_emb[k-1](audio[k-1]))
 *   logits[k] = linears[k](depformer_norms[k](depformer(d, step k)))          // [1, card]
 * Embeddings follow `ScaledEmbedding` (lm_utils.py): the zero token -1 embeds to exactly 0.
 * With fusion on (plain multi-linear checkpoints), recordForwardText computes depformer_in[k](h) of
 * every k in one matvec over the stacked blocks, and LMGen's sampling of the token step k reads adds
 * its embedding there (fuseDepformerEmbedding): the same sums, fewer dispatches.
 * Extra heads (STT models: `extra_heads_num_heads` bias-free linears `extra_heads.{h}` on h, e.g. the
 * voice-activity heads of kyutai/stt-1b-en_fr): extra_logits[h] = extra_heads[h](h)  // [1, extra_heads_dim]
 */
import { type DType, type GpuContext, GpuLimitError, QuantizedTensor, type Recorder, ShapeError, Tensor, type WeightTensor, expectShape, roundThrough } from '../gpu/index.ts';
import { addInPlace } from '../kernels/elementwise.ts';
import { embedding, stackTables } from '../kernels/embedding.ts';
import { linear } from '../kernels/linear.ts';
import { canFuseSampleEmbedding } from '../kernels/sample.ts';
import { ConditionProvider } from '../conditioners/base.ts';
import { type NormWeights, applyNorm, freeNorm, loadNorm } from '../modules/norm.ts';
import { StreamingTransformer, type TransformerConfig } from '../modules/transformer.ts';
import type { StoragePolicy, VarBuilder } from '../weights/var_builder.ts';
import { type LmCheckpointFormat, detectLmFormat, mlxToOfficialNames } from './lm_checkpoint.ts';
import { formatBytes, lmKvTensorBytes, lmMemory } from './lm_memory.ts';
import { type LmConfig, mainDimFeedforward } from './lm_config.ts';


/** Options of LMModel.load. */
export interface LmLoadOptions {
  /**
   * Storage of the large matrices (embeddings, text_linear, depformer_in, linears, attention and
   * FFN weights): 'native' keeps F16/BF16 checkpoints packed (default), 'f32' widens them.
   */
  policy?: StoragePolicy;
  /** Bytes of lazily read (Blob-backed) weights uploaded so far (VarBuilder.uploadPending). */
  onUploadProgress?: (doneBytes: number, totalBytes: number) => void;
  /**
   * KV cache storage of the temporal transformer and the depformer: 'auto' (default) keeps it in
   * half precision (packed f16) when the checkpoint is F16/BF16, as the official model keeps its
   * cache in the model dtype (Moshi 7B: 1.6 GB instead of 3.1 GB at 3000 steps), f32 otherwise.
   */
  kvCache?: 'auto' | 'f32' | 'f16';
  /**
   * KV cache capacity of the temporal transformer in steps (the official `context`; default the
   * config's, 3000 steps = 4 min for Moshi 7B). Attention looks back this many steps at most.
   */
  context?: number;
  /**
   * Total GPU bytes the model may take (weights + KV cache + activations); the load is refused
   * before any upload when the estimate exceeds it. WebGPU does not report GPU memory, so the
   * caller decides (default: no total check; single tensors are always checked against the limits).
   */
  memoryBudgetBytes?: number;
}

/**
 * Copies row `src` of an embedding table [rows, D] over row `dst` on the GPU (f32 / u32 words, or
 * packed f16/bf16 rows that need not start on a 4-byte word; a quantized table copies the row of
 * its packed values, scales and biases): reads the words covering both rows, moves the bytes on
 * the host, writes them back.
 */
async function copyTableRow(ctx: GpuContext, table: WeightTensor, src: number, dst: number): Promise<void> {
  if (table instanceof QuantizedTensor) {
    for (const t of [table.q.reshape([table.shape[0], table.q.numel / table.shape[0]]), table.scales.reshape([table.shape[0], table.scales.numel / table.shape[0]]), table.biases]) {
      if (t) await copyTableRow(ctx, t, src, dst);
    }
    return;
  }
  const [rows, D] = table.shape;
  if (src >= rows || dst >= rows) throw new ShapeError(`copyTableRow: rows ${src} -> ${dst} outside '${table.label}' [${table.shape.join(', ')}]`);
  const rowBytes = D * (table.dtype === 'f16' || table.dtype === 'bf16' ? 2 : 4);
  const lo = Math.floor((Math.min(src, dst) * rowBytes) / 4) * 4;
  const hi = Math.ceil(((Math.max(src, dst) + 1) * rowBytes) / 4) * 4;
  const view = new Tensor(table.buffer, [(hi - lo) / 4], 'u32', `${table.label}[rows ${src},${dst}]`, table.byteOffset + lo, false);
  const words = (await ctx.read(view)) as Uint32Array;
  const bytes = new Uint8Array(words.buffer, words.byteOffset, words.byteLength);
  bytes.copyWithin(dst * rowBytes - lo, src * rowBytes - lo, src * rowBytes - lo + rowBytes);
  ctx.write(view, words);
}

/**
 * LMModel (moshi/models/lm.py) on the GPU. Build with `LMModel.load`. The model keeps the
 * streaming state of its temporal transformer (KV cache over `context` steps); the depformer is
 * reset for every frame, as `LMGen.depformer_step` does with `depformer.streaming()`.
 *
 * Scratch outputs of the last recorded step (GPU tensors, f32): `transformerOut` [1, D] (after
 * out_norm), `textLogits` [1, text_card_out], `depformerLogits[k]` [1, card], and, after
 * `recordExtraHeads`, `extraHeadLogits` [extra_heads_num_heads, extra_heads_dim] (before softmax).
 */
export class LMModel {
  readonly transformerOut: Tensor;
  readonly textLogits: Tensor;
  readonly depformerLogits: Tensor[];
  /**
   * Logits of the extra heads of the last `recordExtraHeads`, f32 [H, Dh] row-major
   * (H = extra_heads_num_heads, Dh = extra_heads_dim); null when the model has no extra heads.
   */
  readonly extraHeadLogits: Tensor | null;
  private readonly extraHeadRows: Tensor[]; // H × [1, Dh], each head's linear output
  /**
   * The model's dtype in the official sense: f32 / f16 / bf16 for plain checkpoints, bf16 for the
   * quantized ones (their other tensors are BF16), f32 when loaded with policy 'f32' (widened).
   * Condition sums are rounded through it.
   */
  readonly dtype: DType;
  private readonly x: Tensor; // [1, D] summed input embeddings
  private readonly h: Tensor; // [1, D] temporal transformer output before out_norm
  private readonly dIn: Tensor; // [1, Dd] depformer input
  private readonly dOut: Tensor; // [1, Dd] depformer output
  private readonly dNorm: Tensor | null; // [1, Dd] after depformer_norms[k]
  private readonly dInAll: Tensor | null; // [1, nIn · Dd] depformer_in of every weight set (with depformerInStack)
  /** dInAll holds this step's depformer_in outputs (recordForwardText, or the first depformer step that needed them). */
  private dInAllFresh = false;
  /** embPending[k]: the sampling of codebook k - 1 adds depformer_emb[k-1](token) to dInAll's block k (fuseDepformerEmbedding). */
  private readonly embPending: boolean[] = [];
  private destroyed = false;

  private constructor(
    readonly ctx: GpuContext,
    readonly cfg: LmConfig,
    /** The checkpoint's layout and weight format (detected from its tensors). */
    readonly format: LmCheckpointFormat,
    private readonly emb: WeightTensor[], // n_q × [card + 1, D]; empty when embStack holds them
    /** emb.{k}.weight stacked row-wise [n_q · (card + 1), D] (stackTables), or null: one table each. */
    private readonly embStack: Tensor | null,
    /** text_emb.weight [text_card + 1, D] as stored on the GPU (f32, packed f16/bf16, or quantized). */
    readonly textEmb: WeightTensor,
    private readonly textLinear: WeightTensor, // [text_card_out, D]
    private readonly textLinearBias: Tensor | null, // [text_card_out]
    private readonly outNorm: NormWeights,
    readonly transformer: StreamingTransformer,
    private readonly depformerIn: WeightTensor[], // dep_q (multi-linear) or 1 × [Dd, D]; views into depformerInStack when it is set
    /** depformer_in.{k}.weight stacked row-wise [nIn · Dd, D] (stackTables), or null: one tensor each. */
    private readonly depformerInStack: Tensor | null,
    private readonly depformerEmb: WeightTensor[], // (dep_q - 1) × [card + 1, Dd]
    private readonly depformerTextEmb: WeightTensor | null, // [text_card + 1, Dd]
    readonly depformer: StreamingTransformer | null,
    private readonly depformerNorms: NormWeights[] | null,
    private readonly linears: WeightTensor[], // dep_q × [card, Dd]
    private readonly linearBiases: (Tensor | null)[],
    /** The LUT conditioners and sum fuser (null for an unconditioned model). */
    readonly conditions: ConditionProvider | null,
    /** Loaded with policy 'f32': half weights widened, the model computes as an f32 model. */
    widened: boolean,
    private readonly extraHeads: WeightTensor[], // extra_heads_num_heads × [extra_heads_dim, D]
  ) {
    const D = cfg.dim;
    const Dd = cfg.depformer.dim;
    this.dtype = widened || format.format === 'f32' ? 'f32' : format.format === 'f16' ? 'f16' : 'bf16';
    this.x = ctx.tensor([1, D], 'f32', 'lm.x');
    this.h = ctx.tensor([1, D], 'f32', 'lm.h');
    this.transformerOut = ctx.tensor([1, D], 'f32', 'lm.transformer_out');
    this.textLogits = ctx.tensor([1, cfg.textCardOut], 'f32', 'lm.text_logits');
    this.dIn = ctx.tensor([1, Dd], 'f32', 'lm.depformer_in');
    this.dOut = ctx.tensor([1, Dd], 'f32', 'lm.depformer_out');
    this.dNorm = depformerNorms ? ctx.tensor([1, Dd], 'f32', 'lm.depformer_norm') : null;
    this.dInAll = depformerInStack ? ctx.tensor([1, depformerInStack.shape[0]], 'f32', 'lm.depformer_in_all') : null;
    this.depformerLogits = Array.from({ length: cfg.depQ }, (_, k) => ctx.tensor([1, cfg.card], 'f32', `lm.depformer_logits.${k}`));
    const H = extraHeads.length;
    this.extraHeadRows = Array.from({ length: H }, (_, h) => ctx.tensor([1, cfg.extraHeadsDim], 'f32', `lm.extra_heads.${h}`));
    this.extraHeadLogits = H ? ctx.tensor([H, cfg.extraHeadsDim], 'f32', 'lm.extra_head_logits') : null;
  }

  /**
   * Loads every weight of `LMModel(**cfg)` from `vb` (the checkpoint root) by its official key:
   * `emb.{k}.weight`, `text_emb.weight`, `text_linear.weight`, `out_norm.*`, `transformer.*`,
   * `depformer_in.{k}.weight`, `depformer_emb.{k}.weight`, `depformer_text_emb.weight`,
   * `depformer.*` (per-step weights stacked along dim 0, split once by the transformer loader through
   * `vb.chunks`), `linears.{k}.weight`, `extra_heads.{h}.weight` [extra_heads_dim, dim] (h <
   * extra_heads_num_heads), `condition_provider.conditioners.*` (kept f32 on the host).
   * Then `vb.finish()`: a missing, misshapen or unused key throws WeightError naming it.
   * F32/F16/BF16 checkpoints; with policy 'native' (default) half matrices stay packed on the GPU.
   * Quantized checkpoints (src/models/lm_checkpoint.ts: PyTorch q8, MLX affine q4/q8 under the
   * moshi_mlx names) are detected from their tensors and stay packed: every Linear (and, for MLX,
   * Embedding) is dequantized in registers by the kernels (weight-only; the official q8 forward
   * also quantizes activations to int8, which is not emulated).
   * Before uploading: GpuLimitError when the model cannot fit (checkFits); while allocating:
   * GpuOutOfMemoryError when the device runs out of memory, the partial load freed.
   */
  static async load(ctx: GpuContext, fileVb: VarBuilder, cfg: LmConfig, opts: LmLoadOptions = {}): Promise<LMModel> {
    // A failed load (missing key, unreadable file, device error) frees what it had uploaded.
    let transformer: StreamingTransformer | null = null;
    let depformer: StreamingTransformer | null = null;
    const format = detectLmFormat(fileVb.entries, fileVb.source, cfg.dim);
    const kvDtype: 'f32' | 'f16' = (opts.kvCache ?? 'auto') === 'auto' ? (format.format === 'f32' ? 'f32' : 'f16') : (opts.kvCache as 'f32' | 'f16');
    const context = opts.context ?? cfg.context;
    if (!Number.isInteger(context) || context < 1) throw new RangeError(`LM context must be a positive integer number of steps, got ${context}`);
    LMModel.checkFits(ctx, fileVb.source, cfg, format, kvDtype, context, opts.policy === 'f32', opts.memoryBudgetBytes);
    const vb = format.layout === 'mlx' ? fileVb.withEntries(mlxToOfficialNames(fileVb.entries, fileVb.source)) : fileVb;
    // An allocation that fails for lack of GPU memory is caught here, the partial load freed.
    return ctx.catchOutOfMemory(`the LM from ${fileVb.source}`, async () => {
      try {
        const policy = opts.policy ?? 'native';
        const D = cfg.dim;
        const Dd = cfg.depformer.dim;
        const emb = Array.from({ length: cfg.nQ }, (_, k) => vb.pp('emb').pp(k).weight('weight', [cfg.card + 1, D], policy));
        const textEmb = vb.pp('text_emb').weight('weight', [cfg.textCard + 1, D], policy);
        const textLinear = vb.pp('text_linear').weight('weight', [cfg.textCardOut, D], policy);
        const textLinearBias = cfg.biasProj ? vb.pp('text_linear').tensor('bias', [cfg.textCardOut]) : null;
        const mainCfg: TransformerConfig = {
          dModel: D,
          numHeads: cfg.numHeads,
          numLayers: cfg.numLayers,
          dimFeedforward: mainDimFeedforward(cfg),
          causal: cfg.causal,
          context,
          maxPeriod: cfg.maxPeriod,
          positionalEmbedding: cfg.positionalEmbedding,
          norm: cfg.norm,
          gating: cfg.gating,
          layerScale: cfg.layerScale,
          kvDtype,
        };
        transformer = await StreamingTransformer.load(ctx, vb.pp('transformer'), mainCfg, policy);
        const outNorm = loadNorm(vb.pp('out_norm'), cfg.norm, D);
        const schedule = cfg.depformer.weightsPerStepSchedule;
        const nIn = cfg.depformer.multiLinear ? (schedule ? Math.max(...schedule) + 1 : cfg.depQ) : 1;
        const depformerIn = Array.from({ length: nIn }, (_, k) => vb.pp('depformer_in').pp(k).weight('weight', [Dd, D], policy));
        let depformerEmb: WeightTensor[] = [];
        let depformerTextEmb: WeightTensor | null = null;
        let depformerNorms: NormWeights[] | null = null;
        if (cfg.depQ > 0) {
          depformerEmb = Array.from({ length: cfg.depQ - 1 }, (_, k) => vb.pp('depformer_emb').pp(k).weight('weight', [cfg.card + 1, Dd], policy));
          depformerTextEmb = vb.pp('depformer_text_emb').weight('weight', [cfg.textCard + 1, Dd], policy);
          const depNorm = cfg.depformer.norm;
          if (depNorm) depformerNorms = Array.from({ length: cfg.depQ }, (_, k) => loadNorm(vb.pp('depformer_norms').pp(k), depNorm, Dd));
          const depCfg: TransformerConfig = {
            dModel: Dd,
            numHeads: cfg.depformer.numHeads,
            numLayers: cfg.depformer.numLayers,
            dimFeedforward: cfg.depformer.dimFeedforward,
            causal: cfg.causal,
            // LMModel forces the depformer's context to None: its KV cache holds the dep_q steps of one
            // frame (capacity = weights_per_step, the official rule; dep_q without per-step weights).
            context: null,
            kvCapacity: cfg.depQ,
            maxPeriod: cfg.depformer.maxPeriod,
            positionalEmbedding: cfg.depformer.posEmb,
            norm: cfg.norm,
            gating: cfg.depformer.gating,
            layerScale: cfg.depformer.layerScale,
            kvDtype,
            // dep_q sequential steps of small matrices per frame: dispatches, not bytes, bound them.
            layerBlocks: true,
            ...(cfg.depformer.weightsPerStep ? { weightsPerStep: cfg.depQ, weightsPerStepSchedule: schedule } : {}),
          };
          depformer = await StreamingTransformer.load(ctx, vb.pp('depformer'), depCfg, policy);
        }
        const linears = Array.from({ length: cfg.depQ }, (_, k) => vb.pp('linears').pp(k).weight('weight', [cfg.card, Dd], policy));
        const linearBiases = Array.from({ length: cfg.depQ }, (_, k) => (cfg.biasProj ? vb.pp('linears').pp(k).tensor('bias', [cfg.card]) : null));
        const extraHeads = Array.from({ length: cfg.extraHeadsNumHeads }, (_, h) => vb.pp('extra_heads').pp(h).weight('weight', [cfg.extraHeadsDim, D], policy));
        const conditions = ConditionProvider.load(vb, cfg);
        vb.finish();
        // Weights of a Blob-backed file are read and uploaded now, one tensor at a time.
        await vb.uploadPending(opts.onUploadProgress);
        // Hibiki: an early EOS (2) is read as PAD (3) (loaders.py CheckpointInfo.get_moshi).
        if (cfg.modelType === 'hibiki') await copyTableRow(ctx, textEmb, 3, 2);
        // The n_q audio tables in one tensor: forward_text sums their lookups in one dispatch
        // (per binding range). Quantized or mismatched tables stay one tensor (one dispatch) each.
        const embStack = await stackTables(ctx, emb, 'lm.emb (stacked)');
        if (embStack) for (const t of emb) t.destroy();
        // The depformer_in.{k} blocks in one tensor [nIn · Dd, D]: one matvec computes every
        // codebook's depformer input at step 0 (they all read the same transformer_out). Each
        // block stays usable on its own as a view (fusion off), so only blocks at 256-byte offsets stack.
        const blockBytes = depformerIn[0] instanceof Tensor ? (depformerIn[0] as Tensor).byteLength : 1;
        const dinStack = cfg.depQ > 1 && depformerIn.length > 1 && blockBytes % 256 === 0 ? await stackTables(ctx, depformerIn, 'lm.depformer_in (stacked)') : null;
        let dinWeights = depformerIn;
        if (dinStack) {
          dinWeights = depformerIn.map((t, i) => new Tensor(dinStack.buffer, t.shape, dinStack.dtype, `lm.depformer_in.${i} (in the stack)`, dinStack.byteOffset + i * blockBytes, false));
          for (const t of depformerIn) t.destroy();
        }
        return new LMModel(ctx, cfg, format, embStack ? [] : emb, embStack, textEmb, textLinear, textLinearBias, outNorm, transformer, dinWeights, dinStack, depformerEmb, depformerTextEmb, depformer, depformerNorms, linears, linearBiases, conditions, policy === 'f32', extraHeads);
      } catch (e) {
        transformer?.destroy();
        depformer?.destroy();
        vb.destroyLoaded();
        throw e;
      }
    }, (lm) => {
      lm?.destroy();
      transformer?.destroy();
      depformer?.destroy();
      vb.destroyLoaded();
    });
  }

  /** Bytes of every weight on the GPU (embeddings, projections, norms, both transformers). */
  get weightBytes(): number {
    const ts: (WeightTensor | null)[] = [...this.emb, this.embStack, this.textEmb, this.textLinear, this.textLinearBias, ...(this.depformerInStack ? [this.depformerInStack] : this.depformerIn), ...this.depformerEmb, this.depformerTextEmb, ...this.linears, ...this.linearBiases, ...this.extraHeads];
    const norms = [this.outNorm, ...(this.depformerNorms ?? [])].flatMap((n) => [n.weight, n.bias]);
    return [...ts, ...norms].reduce((a, t) => a + (t?.byteLength ?? 0), 0) + this.transformer.weightBytes + (this.depformer?.weightBytes ?? 0);
  }

  /** Bytes of the KV caches of both transformers on the GPU. */
  get kvCacheBytes(): number {
    return this.transformer.kvCacheBytes + (this.depformer?.kvCacheBytes ?? 0);
  }

  /**
   * Refuses, before anything is uploaded, a model whose largest tensor exceeds the device's
   * maxBufferSize or whose estimated total (src/models/lm_memory.ts)
   * exceeds `budget`: GpuLimitError saying what is needed, what the adapter allows, and that a
   * smaller format (MLX q4 needs 0.625 bytes per weight) would take less.
   */
  private static checkFits(ctx: GpuContext, source: string, cfg: LmConfig, format: LmCheckpointFormat, kv: 'f32' | 'f16', context: number, widen: boolean, budget?: number): void {
    const mem = lmMemory(cfg, widen ? { kind: 'f32' } : format.storage, kv, context);
    const q4 = lmMemory(cfg, { kind: 'affine', bits: 4, groupSize: 32 }, 'f16', context);
    const need = `the LM in ${source} (${format.name}) needs ${formatBytes(mem.total)} of GPU memory (weights ${formatBytes(mem.weights)}, KV cache ${formatBytes(mem.kvCache)} for a context of ${context} steps)`;
    const smaller = format.storage.kind === 'affine' && format.storage.bits <= 4 ? 'a shorter context (load option context) takes less' : `the MLX q4 format of this model needs ${formatBytes(q4.total)} (largest tensor ${formatBytes(q4.largestTensor.bytes)})`;
    // Weight matrices are bound in row ranges when over one binding (src/kernels/weight_ranges.ts),
    // so each must only fit one buffer.
    const limit = ctx.device.limits.maxBufferSize;
    if (mem.largestTensor.bytes > limit) {
      throw new GpuLimitError(`${need}; its largest tensor ${mem.largestTensor.name} takes ${formatBytes(mem.largestTensor.bytes)}, over this adapter's maxBufferSize of ${formatBytes(limit)}; ${smaller}`);
    }
    // A KV cache tensor is bound whole: it must fit one buffer and one binding.
    const kvTensor = lmKvTensorBytes(cfg, kv, context);
    if (kvTensor > limit || kvTensor > ctx.bindingLimit) {
      const over = kvTensor > limit ? `this adapter's maxBufferSize of ${formatBytes(limit)}` : `the ${formatBytes(ctx.bindingLimit)} one binding may cover (maxStorageBufferBindingSize)`;
      throw new GpuLimitError(`${need}; one layer's key (or value) cache takes ${formatBytes(kvTensor)}, over ${over}; a shorter context (the config's 'context', load option context, --context) takes less`);
    }
    if (budget !== undefined && mem.total > budget) throw new GpuLimitError(`${need}, over the budget of ${formatBytes(budget)}; ${smaller}`);
  }

  /** Number of token streams fed to forward_text: 1 text + n_q audio. */
  get numCodebooks(): number {
    return this.cfg.nQ + 1;
  }

  /**
   * The condition vector to add to the input embeddings (`fuser.get_sum` of the conditioners'
   * outputs for `values`), rounded to the model dtype as LMGen does (`condition_sum.to(lm dtype)`),
   * or null when the fuser sums nothing. Throws ConditionError for missing/unknown names or values,
   * and an Error when `values` is given to a model without conditioners.
   */
  async conditionSum(values: Record<string, string | null> | undefined): Promise<Float32Array | null> {
    if (!this.conditions) {
      if (values && Object.keys(values).length) throw new Error(`this model has no conditioners, but conditions were given: ${Object.keys(values).join(', ')}`);
      return null;
    }
    if (!values) {
      throw new Error(`this model is conditioned (${[...this.conditions.conditioners.keys()].join(', ')}): pass condition values, e.g. { ${[...this.conditions.conditioners.entries()].map(([n, c]) => `${n}: '${c.cfg.possibleValues?.[0] ?? 'value'}'`).join(', ')} }`);
    }
    const sum = await this.conditions.conditionSum(values);
    return sum && (this.dtype === 'f16' || this.dtype === 'bf16') ? roundThrough(sum, this.dtype) : sum;
  }

  /**
   * Records `forward_text` for one step: tokens i32 [K = n_q + 1] (text, then the n_q audio streams;
   * -1 = zero token: no input) at element `tokensOffset` of `tokens`; `condSum` [1, D] f32 or null.
   * Writes `transformerOut` [1, D] and `textLogits` [1, text_card_out]; advances the temporal
   * transformer's streaming state by one step.
   */
  recordForwardText(rec: Recorder, tokens: Tensor, condSum: Tensor | null, tokensOffset = 0): void {
    this.checkAlive();
    expectShape('forward_text tokens', tokens, tokens.shape, ['i32']);
    if (tokens.numel < tokensOffset + this.numCodebooks) {
      throw new ShapeError(`forward_text tokens '${tokens.label}' must hold ${this.numCodebooks} tokens at offset ${tokensOffset}, has ${tokens.numel} elements`);
    }
    const nQ = this.cfg.nQ;
    if (this.embStack && nQ > 0) {
      // Σ_k emb[k](tok[1 + k]) in one dispatch (same f32 sums in the same order), or, with fusion
      // off, one dispatch per table of the stack.
      const tableRows = this.cfg.card + 1;
      if (this.ctx.kernelChoice.fusion !== 'off') embedding(rec, this.embStack, tokens, this.x, { accumulate: false, idsOffset: tokensOffset + 1, rows: 1, stacked: { tables: nQ, tableRows } });
      else for (let k = 0; k < nQ; k++) embedding(rec, this.embStack, tokens, this.x, { accumulate: k > 0, idsOffset: tokensOffset + 1 + k, rows: 1, stacked: { tables: 1, firstTable: k, tableRows } });
    } else {
      for (let k = 0; k < nQ; k++) embedding(rec, this.emb[k], tokens, this.x, { accumulate: k > 0, idsOffset: tokensOffset + 1 + k, rows: 1 });
    }
    embedding(rec, this.textEmb, tokens, this.x, { accumulate: this.cfg.nQ > 0, idsOffset: tokensOffset, rows: 1 });
    if (condSum) {
      expectShape('condition sum', condSum, [1, this.cfg.dim], ['f32']);
      addInPlace(rec, this.x, condSum);
    }
    this.transformer.forward(rec, this.x, this.h);
    applyNorm(rec, this.outNorm, this.h, this.transformerOut);
    linear(rec, this.transformerOut, this.textLinear, this.textLinearBias, this.textLogits);
    // Every depformer codebook's depformer_in(transformer_out) in one matvec over the stacked blocks
    // (the same row sums as one linear each), before the text sampling so that it can add codebook 0's embedding.
    this.dInAllFresh = false;
    if (this.depformerInStack && this.dInAll && this.ctx.kernelChoice.fusion !== 'off') {
      linear(rec, this.transformerOut, this.depformerInStack, null, this.dInAll);
      this.embPending.fill(false);
      this.dInAllFresh = true;
    }
  }

  /** Number of extra heads (`extra_heads_num_heads`; 0 for Moshi). */
  get numExtraHeads(): number {
    return this.extraHeads.length;
  }

  /**
   * Records the extra heads on the current `transformerOut` [1, D] (official
   * `extra_head(transformer_out)` for each head of `lm_model.extra_heads`): writes
   * `extraHeadLogits` [H, Dh] f32, the logits before the softmax. Call after `recordForwardText`
   * of the step. Throws when the model has no extra heads.
   */
  recordExtraHeads(rec: Recorder): void {
    this.checkAlive();
    if (!this.extraHeadLogits) throw new Error('this LM has no extra heads (extra_heads_num_heads = 0)');
    const Dh = this.cfg.extraHeadsDim;
    this.extraHeads.forEach((w, h) => {
      linear(rec, this.transformerOut, w, null, this.extraHeadRows[h]);
      rec.copy(this.extraHeadRows[h], new Tensor(this.extraHeadLogits!.buffer, [Dh], 'f32', `lm.extra_head_logits[${h}]`, this.extraHeadLogits!.byteOffset + 4 * h * Dh, false));
    });
  }

  /** Resets the depformer's streaming state (call before step 0 of each frame). */
  resetDepformer(): void {
    this.depformer?.reset();
  }

  /**
   * Records `forward_depformer(k, prev, transformer_out)` for depformer step k < dep_q, reading the
   * previous token (the text token for k = 0, audio token k-1 otherwise) from `tokens` (i32) at
   * element `tokenIndex`, and the current `transformerOut`. Writes `depformerLogits[k]` [1, card].
   * Steps must be recorded in order 0..dep_q-1 after `resetDepformer()`.
   */
  recordForwardDepformer(rec: Recorder, k: number, tokens: Tensor, tokenIndex: number): void {
    this.checkAlive();
    if (!this.depformer) throw new Error('this LM has dep_q = 0: it has no depformer');
    if (!Number.isInteger(k) || k < 0 || k >= this.cfg.depQ) throw new RangeError(`depformer step ${k} out of range [0, ${this.cfg.depQ})`);
    expectShape('depformer tokens', tokens, tokens.shape, ['i32']);
    if (tokenIndex < 0 || tokenIndex >= tokens.numel) throw new ShapeError(`depformer token index ${tokenIndex} outside '${tokens.label}' (${tokens.numel} elements)`);
    const schedule = this.cfg.depformer.weightsPerStepSchedule;
    const wi = this.cfg.depformer.multiLinear ? (schedule ? schedule[k] : k) : 0;
    const Dd = this.cfg.depformer.dim;
    if (this.depformerInStack && this.dInAll && this.ctx.kernelChoice.fusion !== 'off') {
      // This codebook's block of the stacked depformer_in output (recordForwardText computed it; again here if it did not).
      if (!this.dInAllFresh) {
        linear(rec, this.transformerOut, this.depformerInStack, null, this.dInAll);
        this.embPending.fill(false);
      }
      this.dInAllFresh = true;
      rec.copy(new Tensor(this.dInAll.buffer, [1, Dd], 'f32', `lm.depformer_in_all[${wi}]`, this.dInAll.byteOffset + 4 * wi * Dd, false), this.dIn, 4 * Dd);
    } else {
      linear(rec, this.transformerOut, this.depformerIn[wi], null, this.dIn);
      if (k === 0) this.dInAllFresh = false;
      this.embPending[k] = false; // dIn is fresh: look the embedding up below
    }
    if (this.embPending[k]) {
      // The sampling of codebook k - 1 added depformer_emb[k-1](token) to this block (fuseDepformerEmbedding).
      this.embPending[k] = false;
    } else {
      const table = k === 0 ? this.depformerTextEmb! : this.depformerEmb[k - 1];
      embedding(rec, table, tokens, this.dIn, { accumulate: true, idsOffset: tokenIndex, rows: 1 });
    }
    this.depformer.forward(rec, this.dIn, this.dOut, { step: k });
    let y = this.dOut;
    if (this.depformerNorms) {
      applyNorm(rec, this.depformerNorms[k], this.dOut, this.dNorm!);
      y = this.dNorm!;
    }
    linear(rec, y, this.linears[k], this.linearBiases[k], this.depformerLogits[k]);
  }

  /**
   * Where the sampling of the token that depformer step k reads (the text token for k = 0, audio
   * codebook k - 1 after) can add that step's input embedding itself (src/kernels/sample.ts
   * `embed`: depformer_text_emb / depformer_emb[k-1](token) into this step's depformer_in output,
   * dInAll's block k): returns the target and then recordForwardDepformer(k) records no embedding
   * lookup; null (nothing changes) without the stacked depformer_in, with a weights-per-step schedule
   * (blocks shared by steps), with fusion off, or a table bound in row ranges. Call after
   * recordForwardText (k = 0) or recordForwardDepformer(k - 1), and pass the result to that sample.
   */
  fuseDepformerEmbedding(rec: Recorder, k: number): { table: WeightTensor; y: Tensor; yOffset: number } | null {
    this.checkAlive();
    if (!Number.isInteger(k) || k < 0 || k >= this.cfg.depQ) throw new RangeError(`depformer embedding step ${k} out of range [0, ${this.cfg.depQ})`);
    if (!this.dInAll || !this.dInAllFresh || this.cfg.depformer.weightsPerStepSchedule || !this.cfg.depformer.multiLinear || rec.ctx.kernelChoice.fusion === 'off') return null;
    const table = k === 0 ? this.depformerTextEmb! : this.depformerEmb[k - 1];
    if (!canFuseSampleEmbedding(rec, table)) return null;
    this.embPending[k] = true;
    return { table, y: this.dInAll, yOffset: k * this.cfg.depformer.dim };
  }

  /** Resets all streaming state (temporal transformer KV cache and position, depformer). */
  reset(): void {
    this.transformer.reset();
    this.depformer?.reset();
  }

  private checkAlive(): void {
    if (this.destroyed) throw new Error('LMModel was destroyed');
  }

  /** Frees every GPU buffer of the model. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    const ts: (WeightTensor | null)[] = [
      ...this.emb, this.embStack, this.textEmb, this.textLinear, this.textLinearBias, ...this.depformerIn, this.depformerInStack, this.dInAll, ...this.depformerEmb, this.depformerTextEmb,
      ...this.linears, ...this.linearBiases, ...this.extraHeads, ...this.extraHeadRows, this.extraHeadLogits, this.x, this.h, this.transformerOut, this.textLogits, this.dIn, this.dOut, this.dNorm, ...this.depformerLogits,
    ];
    for (const t of ts) t?.destroy();
    freeNorm(this.outNorm);
    this.depformerNorms?.forEach(freeNorm);
    this.transformer.destroy();
    this.depformer?.destroy();
  }
}
