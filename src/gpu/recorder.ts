/**
 * Recorder: one model step recorded into one command encoder, submitted once (created by
 * `GpuContext.record`), with the uniform arena for Params and the readbacks of that step.
 */
import type { GpuContext } from './context.ts'; // type only: a Recorder hands kernels the context that made it
import { type DType, unpackHalf } from './dtype.ts';
import { GpuLimitError, GpuValidationError } from './errors.ts';
import type { Kernel } from './kernel.ts';
import type { Profiler } from './profiler.ts';
import { Tensor } from './tensor.ts';

/** A tensor read back to the host: Float32Array for f32/f16/bf16 (halves unpacked), Int32Array, Uint32Array. */
export type Readable = Float32Array | Int32Array | Uint32Array;

/** Bytes of one uniform-arena chunk (Params of many dispatches, each at an aligned offset). */
export const UNIFORM_CHUNK = 64 * 1024;

/** The host value of `numel` elements of `dtype` from mapped storage bytes (copied out of the mapping). */
function readValue(dtype: DType, bytes: ArrayBuffer, numel: number): Readable {
  if (dtype === 'f32') return new Float32Array(bytes, 0, numel).slice();
  if (dtype === 'i32') return new Int32Array(bytes, 0, numel).slice();
  if (dtype === 'u32') return new Uint32Array(bytes, 0, numel).slice();
  return unpackHalf(new Uint32Array(bytes, 0, Math.ceil(numel / 2)), dtype, numel);
}

/** A dispatch of one kernel: buffers in WGSL binding order, Params values, workgroup counts. */
export interface DispatchArgs<K extends string> {
  buffers: readonly (Tensor | GPUBufferBinding)[];
  params?: Record<K, number>;
  workgroups: readonly [number, number?, number?];
  constants?: Record<string, number>;
  /** Profiler label (defaults to the kernel name). */
  label?: string;
}

/**
 * Records a whole model step into one command encoder. Dispatches share one compute pass (or
 * one pass each with timestamps while profiling); Params go to a uniform arena written once at
 * submit; readbacks are copied into staging buffers in the same submit.
 */
export class Recorder {
  private readonly encoder: GPUCommandEncoder;
  private pass: GPUComputePassEncoder | null = null;
  private chunks: GPUBuffer[] = [];
  private staging: ArrayBuffer[] = [];
  private chunkOffset = UNIFORM_CHUNK;
  private readonly reads: { buffer: GPUBuffer; owned: boolean; tensor: Tensor; resolve: (v: Readable) => void; reject: (e: unknown) => void }[] = [];
  private submitted = false;
  dispatchCount = 0;
  /** The context's profiler if it was enabled when this recording started, else null. */
  private readonly profiler: Profiler | null;

  constructor(readonly ctx: GpuContext, readonly label: string) {
    this.encoder = ctx.device.createCommandEncoder({ label });
    this.profiler = ctx.profiler?.enabled ? ctx.profiler : null;
  }

  dispatch<K extends string>(kernel: Kernel<K>, args: DispatchArgs<K>): void {
    if (this.submitted) throw new GpuValidationError(`recording '${this.label}' was already submitted`);
    if (args.buffers.length !== kernel.bindings.length) {
      throw new GpuValidationError(`kernel '${kernel.name}' takes ${kernel.bindings.length} buffers (${kernel.bindings.map((b) => b.name).join(', ')}), got ${args.buffers.length}`);
    }
    const ctx = this.ctx;
    const pipeline = ctx.pipeline(kernel, args.constants);
    const layout = ctx.kernelLayout(kernel);
    const resources: GPUBufferBinding[] = args.buffers.map((b) => (b instanceof Tensor ? b.binding() : b));
    resources.forEach((r, i) => {
      if ((r.size ?? 0) > ctx.bindingLimit) {
        const t = args.buffers[i];
        throw new GpuLimitError(`kernel '${kernel.name}': binding '${kernel.bindings[i].name}' (${t instanceof Tensor ? `'${t.label}'` : 'a buffer range'}) covers ${r.size} bytes, over the ${ctx.bindingLimit} bytes one binding may cover; this kernel does not bind in ranges`);
      }
    });
    let key = String(layout.id);
    for (const r of resources) key += `|${ctx.bufferId(r.buffer)}:${r.offset ?? 0}:${r.size ?? -1}`;
    let dynamicOffsets: number[] | null = null;
    let uniform: GPUBuffer | null = null;
    if (kernel.params) {
      if (!args.params) throw new GpuValidationError(`kernel '${kernel.name}' needs Params`);
      const size = kernel.params.byteSize;
      if (this.chunkOffset + size > UNIFORM_CHUNK) {
        this.chunks.push(ctx.takeUniformChunk());
        this.staging.push(new ArrayBuffer(UNIFORM_CHUNK));
        this.chunkOffset = 0;
      }
      const ci = this.chunks.length - 1;
      kernel.params.write(new DataView(this.staging[ci]), this.chunkOffset, args.params, kernel.name);
      uniform = this.chunks[ci];
      key += `|u${ctx.bufferId(uniform)}`;
      dynamicOffsets = [this.chunkOffset];
      this.chunkOffset += Math.ceil(size / ctx.uniformAlign) * ctx.uniformAlign;
    }
    const bindGroup = ctx.bindGroup(key, () => {
      const entries: GPUBindGroupEntry[] = resources.map((resource, binding) => ({ binding, resource }));
      if (uniform && kernel.params) entries.push({ binding: kernel.bindings.length, resource: { buffer: uniform, offset: 0, size: kernel.params.byteSize } });
      return ctx.device.createBindGroup({ label: kernel.name, layout: layout.group, entries });
    });
    const [x, y = 1, z = 1] = args.workgroups;
    if (x === 0 || y === 0 || z === 0) return;
    const profiler = this.profiler;
    let pass: GPUComputePassEncoder;
    if (profiler) {
      this.endPass();
      pass = this.encoder.beginComputePass({ label: args.label ?? kernel.name, timestampWrites: profiler.next(args.label ?? kernel.name) });
    } else {
      pass = this.pass ??= this.encoder.beginComputePass({ label: this.label });
    }
    pass.setPipeline(pipeline);
    if (dynamicOffsets) pass.setBindGroup(0, bindGroup, dynamicOffsets);
    else pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    if (profiler) pass.end();
    this.dispatchCount++;
    ctx.counters.dispatches++;
    const tally = ctx.dispatchTally;
    if (tally) {
      const l = args.label ?? kernel.name;
      tally.set(l, (tally.get(l) ?? 0) + 1);
    }
  }

  /** Copies `src` into `dst` (same byte length) in command order. */
  copy(src: Tensor, dst: Tensor, bytes = src.byteLength): void {
    this.endPass();
    if (bytes > dst.byteLength) throw new GpuValidationError(`copy ${src.label} -> ${dst.label}: ${bytes} bytes do not fit ${dst.byteLength}`);
    this.encoder.copyBufferToBuffer(src.buffer, src.byteOffset, dst.buffer, dst.byteOffset, Math.ceil(bytes / 4) * 4);
  }

  /** Zero-fills `t` in command order. */
  clear(t: Tensor): void {
    this.endPass();
    this.encoder.clearBuffer(t.buffer, t.byteOffset, Math.ceil(t.byteLength / 4) * 4);
  }

  /**
   * Schedules a copy of `t` to the host; the promise resolves after `submit()`. `staging`: a
   * MAP_READ | COPY_DST buffer of at least t's byte length to copy through (kept, unmapped again
   * after the read; the caller reuses it every step), else a buffer made and destroyed for this read.
   */
  readback(t: Tensor, staging?: GPUBuffer): Promise<Readable> {
    this.endPass();
    const size = Math.ceil(t.byteLength / 4) * 4;
    if (staging && staging.size < size) throw new GpuValidationError(`readback of '${t.label}': the staging buffer '${staging.label}' holds ${staging.size} bytes, ${size} needed`);
    const buffer = staging ?? this.ctx.device.createBuffer({ label: `read ${t.label}`, size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    this.encoder.copyBufferToBuffer(t.buffer, t.byteOffset, buffer, 0, size);
    this.ctx.counters.readbacks++;
    return new Promise((resolve, reject) => this.reads.push({ buffer, owned: !staging, tensor: t, resolve, reject }));
  }

  /**
   * Writes a GPU timestamp (timestamp-query) at this point of the recording into `querySet` at
   * `index`: an empty compute pass whose beginning is timestamped. Requires the device feature.
   */
  timestamp(querySet: GPUQuerySet, index: number): void {
    this.endPass();
    this.encoder.beginComputePass({ label: `${this.label} timestamp ${index}`, timestampWrites: { querySet, beginningOfPassWriteIndex: index } }).end();
  }

  /** Resolves timestamps [0, count) of `querySet` into `resolve` (QUERY_RESOLVE | COPY_SRC) and copies them (u64 ns each) into `dst` at byte `dstOffset`. */
  resolveTimestamps(querySet: GPUQuerySet, count: number, resolve: GPUBuffer, dst: Tensor, dstOffset: number): void {
    this.endPass();
    this.encoder.resolveQuerySet(querySet, 0, count, resolve, 0);
    this.encoder.copyBufferToBuffer(resolve, 0, dst.buffer, dst.byteOffset + dstOffset, 8 * count);
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }

  /** Writes Params, finishes and submits the encoder, then resolves pending readbacks. */
  async submit(): Promise<void> {
    if (this.submitted) throw new GpuValidationError(`recording '${this.label}' was already submitted`);
    this.submitted = true;
    this.ctx.checkAlive();
    this.endPass();
    const device = this.ctx.device;
    this.chunks.forEach((c, i) => device.queue.writeBuffer(c, 0, this.staging[i], 0, i === this.chunks.length - 1 ? this.chunkOffset : UNIFORM_CHUNK));
    const profiler = this.profiler;
    profiler?.resolve(this.encoder);
    device.pushErrorScope('validation');
    device.queue.submit([this.encoder.finish()]);
    this.ctx.counters.submits++;
    const err = await device.popErrorScope();
    this.ctx.returnUniformChunks(this.chunks);
    this.chunks = [];
    try {
      await this.ctx.flushPipelineChecks();
      if (err) throw new GpuValidationError(`recording '${this.label}': ${err.message}`);
      if (profiler) await this.ctx.waitFor(() => profiler.collect());
      if (this.reads.length) {
        await this.ctx.waitFor(() => Promise.all(this.reads.map((r) => r.buffer.mapAsync(GPUMapMode.READ))));
        for (const r of this.reads) {
          r.resolve(readValue(r.tensor.dtype, r.buffer.getMappedRange(), r.tensor.numel));
          r.buffer.unmap();
          if (r.owned) r.buffer.destroy();
        }
      }
      this.ctx.checkAlive();
    } catch (e) {
      // A readback or map that failed because the device went away reports the loss by name.
      let err = e;
      try {
        this.ctx.checkAlive();
      } catch (lost) {
        err = lost;
      }
      for (const r of this.reads) r.reject(err);
      throw err;
    }
  }
}
