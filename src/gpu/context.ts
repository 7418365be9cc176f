/**
 * GpuContext: one WebGPU device with raised limits and optional features, and the engine's
 * per-device state (pipeline and bind-group caches, uniform arena, profiler, device-loss
 * tracking). Steps are recorded with `record()` (src/gpu/recorder.ts).
 */
import { type DType, packHalf, storageBytes } from './dtype.ts';
import { GpuDeviceLostError, GpuLimitError, GpuOutOfMemoryError, GpuValidationError, WebGPUUnavailableError } from './errors.ts';
import type { Kernel } from './kernel.ts';
import { Profiler } from './profiler.ts';
import { type Readable, Recorder, UNIFORM_CHUNK } from './recorder.ts';
import { Tensor } from './tensor.ts';

/** Limits the engine raises to the adapter's maximum when it asks for a device. */
export const RAISED_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupStorageSize',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
] as const;
export type RaisedLimit = (typeof RAISED_LIMITS)[number];

/**
 * Optional features used when the adapter has them. Not `shader-f16`: no engine kernel computes
 * in f16 (f16 arithmetic measured slower than unpacking to f32 on lavapipe, `npm run bench -- f16`);
 * a caller that wants it asks through GpuContextOptions.features.
 */
export const OPTIONAL_FEATURES = ['subgroups', 'timestamp-query'] as const;

/**
 * Engine-wide kernel choices: the defaults pick per device; tests and benchmarks force one path
 * for every layer of a model at once (the hardware-path goldens run the LM with each). Read by
 * the kernels at record time (`linear`, `attention`, `KVCache`); an option passed to one call
 * (`LinearOptions.subgroups: false`, `attention({ split })`) still wins for that call.
 */
export interface KernelChoice {
  /** The subgroup matvec (src/kernels/linear.ts): 'auto' where the device has one fixed subgroup
   *  size (fixedSubgroupSizeOf), 'off' = always the workgroup-memory reduction. */
  subgroupMatvec: 'auto' | 'off';
  /** Fused matvecs (src/kernels/linear.ts fusedMatvec: RMSNorm prologue, residual and gated-SiLU
   *  epilogues) where the shapes allow: 'on', or 'off' = the separate norm / linear / add kernels. */
  fusion: 'on' | 'off';
  /** Flash-decoding of one step over a long cache (src/kernels/attention.ts `split`). */
  attentionSplit: 'auto' | 'always' | 'never';
  /** Cached slots per flash-decoding split (attention.ts SPLIT_SLOTS = 256 when unset). Read when a
   *  KVCache is created; a small value makes the tiny test models' short caches split too. */
  attentionSplitSlots?: number;
  /** groups = 1 conv1d / conv-transpose entry point (src/kernels/conv_gemm.ts Conv1dPath): 'auto' (direct on
   *  a fallback adapter or below 48 output channels, tiled otherwise), or forced for every such conv. */
  convPath?: 'auto' | 'tiled' | 'direct';
  /** SEANet's ELU before a conv (src/modules/conv.ts placeAct): 'auto' (a separate pass on a fallback
   *  adapter, fused into the conv's input read otherwise), or forced. */
  convAct?: 'auto' | 'fused' | 'separate';
  /** One step of a layer with a short cache (the depformer) as two split-K blocks
   *  (src/kernels/layer_block.ts) where the device allows: 'on' (default when unset), or 'off' = the
   *  four fused matvecs. Ignored when `fusion` is 'off'. */
  layerBlocks?: 'on' | 'off';
  /** Threads per layer-block workgroup (src/kernels/layer_block.ts blockThreads): 64 on hardware
   *  adapters, 4 on fallback ones when unset; a power of two 4..256 forces it. */
  layerBlockThreads?: number;
}

export const DEFAULT_KERNEL_CHOICE: Readonly<KernelChoice> = { subgroupMatvec: 'auto', fusion: 'on', attentionSplit: 'auto' };

export interface GpuContextOptions {
  /** The GPU entry point: `navigator.gpu` in a page or Worker (default), or Node's from src/gpu/node.ts. */
  gpu?: GPU;
  /** Minimum values a model needs; a GpuLimitError names any the adapter cannot give. */
  requiredLimits?: Partial<Record<RaisedLimit, number>>;
  powerPreference?: GPUPowerPreference;
  /** Collect per-kernel GPU time (timestamp-query, where the adapter has it). */
  profile?: boolean;
  /** 'node' enables the Dawn busy-wait mitigation (sleep before awaiting GPU promises). */
  host?: 'browser' | 'node';
  /**
   * Bytes one storage binding may cover (default: the device's maxStorageBufferBindingSize; a
   * lower value is honoured, rounded down to 256): weights larger than this are bound in row
   * ranges (src/kernels/weight_ranges.ts). Tests set it low to exercise that path.
   */
  maxBindingBytes?: number;
  /** Forced kernel paths (default DEFAULT_KERNEL_CHOICE); can also be changed later on `kernelChoice`. */
  kernels?: Partial<KernelChoice>;
  /** More optional features to request where the adapter has them (bench/f16.ts: 'shader-f16'). */
  features?: readonly GPUFeatureName[];
}

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
  features: string[];
  limits: Record<string, number>;
}

/** Bind groups kept before the cache is cleared (a few steps' worth of distinct dispatches). */
const BIND_GROUP_CACHE = 8192;

/**
 * One WebGPU device plus the engine's per-device state: pipeline cache, uniform arena, profiler,
 * error and device-loss tracking. Create with `GpuContext.create()` (browser/Worker) or
 * `createNodeGpuContext()` (Node).
 */
export class GpuContext {
  readonly hasSubgroups: boolean;
  readonly hasTimestamps: boolean;
  readonly profiler: Profiler | null;
  readonly uniformAlign: number;
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  /** Explicit bind group + pipeline layout per kernel (Params with a dynamic offset). */
  private readonly layouts = new WeakMap<Kernel, { id: number; group: GPUBindGroupLayout; pipeline: GPUPipelineLayout }>();
  private nextLayoutId = 1;
  /** Small ids for buffers in bind-group cache keys. */
  private readonly bufferIds = new WeakMap<GPUBuffer, number>();
  private nextBufferId = 1;
  /**
   * Bind groups by (layout, bound buffer ranges, uniform chunk): a model step binds the same
   * buffers every time, so after the first step dispatches reuse their bind groups and only the
   * Params offset changes (a dynamic offset). Cleared when it grows past BIND_GROUP_CACHE.
   */
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  private readonly kernelSources = new Map<string, string>();
  private pendingPipelineChecks: Promise<void>[] = [];
  private freeUniformChunks: GPUBuffer[] = [];
  private lostError: GpuDeviceLostError | null = null;
  private readonly lostListeners: ((e: GpuDeviceLostError) => void)[] = [];
  private waitEstimateMs = 0;
  /** Bytes held by live tensors created through this context (GPU memory the engine uses). */
  liveBytes = 0;
  /** High-water mark of liveBytes. */
  peakBytes = 0;
  /** Kernel paths in force (see KernelChoice); models read it when they record. */
  kernelChoice: KernelChoice = { ...DEFAULT_KERNEL_CHOICE };
  /** When set, every recorded dispatch adds 1 under its label (tests check which kernel path ran). */
  dispatchTally: Map<string, number> | null = null;
  /**
   * Running totals of this context's GPU work (deterministic on any adapter): compute dispatches
   * recorded, command buffers submitted (Recorder.submit) and host readbacks (Recorder.readback).
   * A caller takes the difference around a step to count a step's work.
   */
  readonly counters = { dispatches: 0, submits: 0, readbacks: 0 };
  private destroyed = false;

  /**
   * Bytes one storage binding may cover: min(maxStorageBufferBindingSize, the maxBindingBytes
   * option), a multiple of 256. Tensors created with `rangeBound` may exceed it (up to
   * maxBufferSize); the kernels that read weights bind those in row ranges.
   */
  readonly bindingLimit: number;

  private constructor(
    readonly device: GPUDevice,
    readonly adapter: AdapterSummary,
    readonly host: 'browser' | 'node',
    profile: boolean,
    maxBindingBytes?: number,
  ) {
    const lim = Math.min(device.limits.maxStorageBufferBindingSize, maxBindingBytes ?? Infinity);
    this.bindingLimit = Math.max(256, Math.floor(lim / 256) * 256);
    this.hasSubgroups = device.features.has('subgroups');
    this.hasTimestamps = device.features.has('timestamp-query');
    this.uniformAlign = device.limits.minUniformBufferOffsetAlignment;
    this.profiler = profile && this.hasTimestamps ? new Profiler(device) : null;
    device.lost.then((info) => {
      if (this.destroyed) return;
      this.lostError = new GpuDeviceLostError(String(info.reason), info.message || 'no message');
      for (const cb of this.lostListeners) cb(this.lostError);
    });
  }

  /**
   * Requests an adapter and a device with raised limits and the optional features present.
   * Throws WebGPUUnavailableError without WebGPU or an adapter, GpuLimitError when a required
   * limit exceeds what the adapter offers.
   */
  static async create(options: GpuContextOptions = {}): Promise<GpuContext> {
    const gpu = options.gpu ?? (typeof navigator !== 'undefined' ? navigator.gpu : undefined);
    if (!gpu) {
      throw new WebGPUUnavailableError(
        'WebGPU is not available here (no navigator.gpu). Use a browser with WebGPU enabled (Chrome/Edge 113+, or Chromium with --enable-unsafe-webgpu), or in Node use createNodeGpuContext().',
      );
    }
    const adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
    if (!adapter) {
      throw new WebGPUUnavailableError(
        'navigator.gpu.requestAdapter() returned no adapter: the GPU is blocklisted or no driver is present. In headless Chromium pass --enable-unsafe-webgpu; in Node set VK_ICD_FILENAMES to a Vulkan driver.',
      );
    }
    const requiredLimits: Record<string, number> = {};
    for (const name of RAISED_LIMITS) {
      const have = adapter.limits[name];
      const need = options.requiredLimits?.[name];
      if (need !== undefined && need > have) {
        throw new GpuLimitError(`the adapter offers ${name} = ${have}, the model needs ${need}. Use a GPU with more memory per buffer or a smaller model.`);
      }
      requiredLimits[name] = have;
    }
    const requiredFeatures = [...new Set([...OPTIONAL_FEATURES, ...(options.features ?? [])])].filter((f) => adapter.features.has(f)) as GPUFeatureName[];
    let device: GPUDevice;
    try {
      device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
    } catch (e) {
      throw new WebGPUUnavailableError(`the adapter refused a device with features [${requiredFeatures.join(', ')}] and its own maximum limits: ${(e as Error)?.message ?? e}`);
    }
    const info = adapter.info;
    const summary: AdapterSummary = {
      vendor: info?.vendor ?? '',
      architecture: info?.architecture ?? '',
      device: info?.device ?? '',
      description: info?.description ?? '',
      isFallbackAdapter: Boolean((info as { isFallbackAdapter?: boolean })?.isFallbackAdapter ?? (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter),
      features: [...device.features].map(String).sort(),
      limits: Object.fromEntries(RAISED_LIMITS.map((k) => [k, device.limits[k]])),
    };
    const host = options.host ?? (typeof window === 'undefined' && typeof process !== 'undefined' && !!process.versions?.node ? 'node' : 'browser');
    const ctx = new GpuContext(device, summary, host, options.profile ?? false, options.maxBindingBytes);
    ctx.kernelChoice = { ...DEFAULT_KERNEL_CHOICE, ...options.kernels };
    return ctx;
  }

  /**
   * Runs `fn` (an allocation-heavy load) inside an 'out-of-memory' error scope. When an allocation
   * failed, calls `onFail` (free what was allocated) and throws GpuOutOfMemoryError naming `what`
   * and the device's message, instead of leaving a failed buffer for a later step to trip over.
   * An error `fn` throws itself passes through (the scope is popped either way).
   */
  async catchOutOfMemory<T>(what: string, fn: () => Promise<T>, onFail: (result: T | null) => void): Promise<T> {
    this.checkAlive();
    this.device.pushErrorScope('out-of-memory');
    let result: T | null = null;
    let thrown: unknown = null;
    try {
      result = await fn();
    } catch (e) {
      thrown = e;
    }
    const oom = await this.device.popErrorScope();
    if (oom) {
      onFail(result);
      throw new GpuOutOfMemoryError(`out of GPU memory while loading ${what}: ${oom.message || 'an allocation failed'}. Close other GPU-heavy tabs or apps, or choose a smaller model (MLX q4) or a shorter context.`);
    }
    if (thrown) throw thrown;
    return result as T;
  }

  /** Registers a callback for device loss; the error is also thrown by every later submit. */
  onLost(cb: (e: GpuDeviceLostError) => void): void {
    this.lostListeners.push(cb);
    if (this.lostError) cb(this.lostError);
  }

  /** Throws the device-lost error if the device is gone. */
  checkAlive(): void {
    if (this.lostError) throw this.lostError;
  }

  /**
   * A new zero-filled tensor. Throws GpuLimitError over maxBufferSize, and over `bindingLimit`
   * unless `opts.rangeBound` (weight matrices and embedding tables, which linear and embedding
   * bind in row ranges).
   */
  tensor(shape: readonly number[], dtype: DType, label: string, opts: { rangeBound?: boolean } = {}): Tensor {
    this.checkAlive();
    const numel = shape.reduce((a, b) => a * b, 1);
    const size = Math.max(16, Math.ceil(storageBytes(dtype, numel) / 16) * 16);
    if (size > this.device.limits.maxBufferSize) {
      throw new GpuLimitError(`tensor '${label}' [${shape.join(', ')}] ${dtype} needs ${size} bytes, over the device's maxBufferSize ${this.device.limits.maxBufferSize}`);
    }
    // Other kernels bind a tensor whole as a storage buffer.
    if (size > this.bindingLimit && !opts.rangeBound) {
      throw new GpuLimitError(`tensor '${label}' [${shape.join(', ')}] ${dtype} needs ${size} bytes, over the ${this.bindingLimit} bytes one binding may cover (maxStorageBufferBindingSize ${this.device.limits.maxStorageBufferBindingSize}; kernels bind this tensor whole)`);
    }
    const buffer = this.device.createBuffer({
      label,
      size,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    const t = new Tensor(buffer, shape, dtype, label);
    this.liveBytes += size;
    this.peakBytes = Math.max(this.peakBytes, this.liveBytes);
    t.onDestroy = () => {
      this.liveBytes -= size;
    };
    return t;
  }

  /** A new tensor holding `data`. f16/bf16 accept f32 values (rounded to nearest even) or packed Uint32Array words. */
  upload(data: ArrayLike<number> | ArrayBufferView, shape: readonly number[], dtype: DType, label: string, opts: { rangeBound?: boolean } = {}): Tensor {
    const t = this.tensor(shape, dtype, label, opts);
    this.write(t, data);
    return t;
  }

  /** Writes host data into `t` through the queue (ordered before any later submit). */
  write(t: Tensor, data: ArrayLike<number> | ArrayBufferView): void {
    let bytes: ArrayBufferView;
    if ((t.dtype === 'f16' || t.dtype === 'bf16') && !(data instanceof Uint32Array)) {
      bytes = packHalf(data as ArrayLike<number>, t.dtype);
    } else if (ArrayBuffer.isView(data)) {
      bytes = data;
    } else {
      bytes = t.dtype === 'f32' ? Float32Array.from(data) : t.dtype === 'i32' ? Int32Array.from(data) : Uint32Array.from(data);
    }
    if (bytes.byteLength > t.byteLength + 3) {
      throw new GpuValidationError(`write to '${t.label}': ${bytes.byteLength} bytes do not fit ${t.byteLength}`);
    }
    const padded = bytes.byteLength % 4 === 0 ? bytes : new Uint8Array(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength).buffer.slice(0));
    const len = Math.ceil(padded.byteLength / 4) * 4;
    if (len !== padded.byteLength) {
      const tmp = new Uint8Array(len);
      tmp.set(new Uint8Array(padded.buffer, padded.byteOffset, padded.byteLength));
      this.device.queue.writeBuffer(t.buffer, t.byteOffset, tmp);
    } else {
      this.device.queue.writeBuffer(t.buffer, t.byteOffset, padded.buffer, padded.byteOffset, padded.byteLength);
    }
  }

  /** Reads a tensor back: Float32Array for f32/f16/bf16 (halves unpacked), Int32Array, Uint32Array. */
  async read(t: Tensor): Promise<Readable> {
    const rec = this.record(`read ${t.label}`);
    const p = rec.readback(t);
    await rec.submit();
    return p;
  }

  async readF32(t: Tensor): Promise<Float32Array> {
    const r = await this.read(t);
    if (!(r instanceof Float32Array)) throw new GpuValidationError(`readF32 of '${t.label}' (${t.dtype})`);
    return r;
  }

  /** Starts recording a step: every dispatch goes into one command encoder, one submit. */
  record(label: string): Recorder {
    this.checkAlive();
    return new Recorder(this, label);
  }

  /**
   * @internal The explicit layout of `kernel`: its storage bindings in WGSL order
   * ('read' = read-only-storage, 'read_write' = storage), then the Params uniform with a dynamic
   * offset (so one bind group serves every dispatch of the same buffers).
   */
  kernelLayout(kernel: Kernel): { id: number; group: GPUBindGroupLayout; pipeline: GPUPipelineLayout } {
    let l = this.layouts.get(kernel);
    if (l) return l;
    const entries: GPUBindGroupLayoutEntry[] = kernel.bindings.map((b, i) => ({
      binding: i,
      visibility: GPUShaderStage.COMPUTE,
      buffer: { type: b.access === 'read' ? 'read-only-storage' : 'storage' },
    }));
    if (kernel.params) {
      entries.push({ binding: kernel.bindings.length, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform', hasDynamicOffset: true, minBindingSize: kernel.params.byteSize } });
    }
    const group = this.device.createBindGroupLayout({ label: kernel.name, entries });
    l = { id: this.nextLayoutId++, group, pipeline: this.device.createPipelineLayout({ label: kernel.name, bindGroupLayouts: [group] }) };
    this.layouts.set(kernel, l);
    return l;
  }

  /** @internal A small id for `buffer` (bind-group cache keys). */
  bufferId(buffer: GPUBuffer): number {
    let id = this.bufferIds.get(buffer);
    if (id === undefined) {
      id = this.nextBufferId++;
      this.bufferIds.set(buffer, id);
    }
    return id;
  }

  /** @internal The cached bind group for `key`, made by `make` on a miss. */
  bindGroup(key: string, make: () => GPUBindGroup): GPUBindGroup {
    let g = this.bindGroups.get(key);
    if (!g) {
      if (this.bindGroups.size >= BIND_GROUP_CACHE) this.bindGroups.clear();
      g = make();
      this.bindGroups.set(key, g);
    }
    return g;
  }

  /** The compute pipeline for `kernel` with these override constants (compiled once, cached). */
  pipeline(kernel: Kernel, constants: Record<string, number> = {}): GPUComputePipeline {
    const ck = Object.keys(constants).sort().map((k) => `${k}=${constants[k]}`).join(',');
    const key = `${kernel.name}|${kernel.entryPoint}|${ck}`;
    let p = this.pipelines.get(key);
    if (p) return p;
    const prev = this.kernelSources.get(kernel.name);
    if (prev !== undefined && prev !== kernel.source) {
      throw new GpuValidationError(`two different kernels are named '${kernel.name}'`);
    }
    this.kernelSources.set(kernel.name, kernel.source);
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ label: kernel.name, code: kernel.source });
    p = this.device.createComputePipeline({
      label: `${kernel.name}[${ck}]`,
      layout: this.kernelLayout(kernel).pipeline,
      compute: { module, entryPoint: kernel.entryPoint, constants },
    });
    this.pendingPipelineChecks.push(
      this.device.popErrorScope().then((err) => {
        if (err) throw new GpuValidationError(`kernel '${kernel.name}' [${ck}] failed to compile: ${err.message}`);
      }),
    );
    this.pipelines.set(key, p);
    return p;
  }

  /** @internal Awaits compile checks of pipelines created since the last call. */
  async flushPipelineChecks(): Promise<void> {
    const checks = this.pendingPipelineChecks;
    this.pendingPipelineChecks = [];
    await Promise.all(checks);
  }

  /** @internal */
  takeUniformChunk(): GPUBuffer {
    return (
      this.freeUniformChunks.pop() ??
      this.device.createBuffer({ label: 'uniform arena', size: UNIFORM_CHUNK, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST })
    );
  }

  /** @internal */
  returnUniformChunks(chunks: GPUBuffer[]): void {
    this.freeUniformChunks.push(...chunks);
  }

  /**
   * Awaits a GPU promise. In Node, dawn.node busy-polls while a promise is pending and starves
   * a CPU Vulkan driver, so we first sleep for most of the recently observed wait time.
   */
  async waitFor<T>(make: () => Promise<T>): Promise<T> {
    if (this.host !== 'node') return make();
    const t0 = performance.now();
    const nap = Math.min(this.waitEstimateMs * 0.7, 200);
    if (nap >= 1) await new Promise((r) => setTimeout(r, nap));
    const out = await make();
    const dt = performance.now() - t0;
    this.waitEstimateMs = this.waitEstimateMs === 0 ? dt : 0.7 * this.waitEstimateMs + 0.3 * dt;
    return out;
  }

  /** Waits until all submitted work finished. */
  async sync(): Promise<void> {
    await this.waitFor(() => this.device.queue.onSubmittedWorkDone());
    this.checkAlive();
  }

  destroy(): void {
    this.destroyed = true;
    this.bindGroups.clear();
    for (const c of this.freeUniformChunks) c.destroy();
    this.device.destroy();
  }
}
