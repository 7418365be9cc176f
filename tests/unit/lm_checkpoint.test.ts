// Bad quantized checkpoints are refused with an error naming the file and the key: a missing or
// misshapen scale, an unsupported MLX bit width, mixed layouts, per-slice norms that differ, NaN.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { LMModel } from '../../src/models/lm.ts';
import { detectLmFormat } from '../../src/models/lm_checkpoint.ts';
import { parseLmConfig } from '../../src/models/lm_config.ts';
import { SafetensorsFile, type TensorEntry } from '../../src/weights/safetensors.ts';
import { VarBuilder } from '../../src/weights/var_builder.ts';
import { nodeContext } from '../harness/node_gpu.ts';

const FIX = process.env.SOLACELIVE_FIXTURES ?? resolve(import.meta.dirname, '../../../shared/fixtures');
const cfg = parseLmConfig(JSON.parse(readFileSync(resolve(FIX, 'quant/lm_config.json'), 'utf8')), 'quant/lm_config.json');
const entries = (file: string) => new Map(SafetensorsFile.parse(readFileSync(resolve(FIX, 'quant', file)), file).tensors);

async function loadError(m: Map<string, TensorEntry>, name: string): Promise<string> {
  const ctx = await nodeContext();
  const live = ctx.liveBytes;
  try {
    const lm = await LMModel.load(ctx, VarBuilder.fromEntries(ctx, m, name), cfg);
    lm.destroy();
    return '';
  } catch (e) {
    expect(ctx.liveBytes, 'a failed load frees what it uploaded').toBe(live);
    return (e as Error).message;
  }
}

describe('LM checkpoint formats', () => {
  it('detects each published layout from its tensors', () => {
    expect(detectLmFormat(entries('lm_f32.safetensors'), 'x', 256).name).toBe('f32');
    expect(detectLmFormat(entries('model.bf16.safetensors'), 'x', 256).name).toBe('bf16');
    expect(detectLmFormat(entries('model.q8.safetensors'), 'x', 256).name).toBe('q8 (PyTorch int8)');
    expect(detectLmFormat(entries('model.q4.safetensors'), 'x', 256).name).toBe('MLX affine q4 g32');
    expect(detectLmFormat(entries('model.q8.mlx.safetensors'), 'x', 256).name).toBe('MLX affine q8 g64');
  });

  it('q8 without a weight_scb names the key', async () => {
    const m = entries('model.q8.safetensors');
    m.delete('text_linear.weight_scb');
    expect(await loadError(m, 'q8.safetensors')).toMatch(/missing key 'text_linear\.weight_scb' in q8\.safetensors/);
  });

  it('MLX scales that do not match their weight name the key', async () => {
    const m = entries('model.q4.safetensors');
    const s = m.get('text_linear.scales')!;
    m.set('text_linear.scales', { ...s, shape: [s.shape[0], s.shape[1] / 2], data: s.data.subarray(0, s.data.byteLength / 2) });
    expect(await loadError(m, 'q4.safetensors')).toMatch(/text_linear\.scales.*q4\.safetensors.*group size of 64|text_linear\.biases/);
    const m2 = entries('model.q4.safetensors');
    m2.delete('transformer.layers.1.gating.linear_in.biases');
    expect(await loadError(m2, 'q4.safetensors')).toMatch(/transformer\.layers\.1\.gating\.linear_in/);
  });

  it('an MLX 6-bit weight (moshi-swift q6) is refused by name', async () => {
    const m = entries('model.q4.safetensors');
    const w = m.get('text_linear.weight')!; // [100, 32] words = 4 bits of K = 256
    const cols = (256 * 6) / 32;
    m.set('text_linear.weight', { ...w, shape: [100, cols], data: new Uint8Array(100 * cols * 4) });
    expect(await loadError(m, 'q6.safetensors')).toMatch(/text_linear\.weight.*q6\.safetensors.*6-bit quantization is not supported/);
  });

  it('a file mixing layouts is refused, naming a key of each', async () => {
    const m = entries('model.q8.safetensors');
    const q4 = entries('model.q4.safetensors');
    m.set('audio_embs.0.weight', q4.get('audio_embs.0.weight')!);
    expect(await loadError(m, 'mixed.safetensors')).toMatch(/mixed\.safetensors mixes checkpoint layouts: '.*' is a PyTorch.*'audio_embs\.0\.weight' an MLX/);
    const m2 = entries('model.q4.safetensors');
    m2.set('text_linear.weight_extra', { ...m.get('text_linear.weight')!, name: 'x' });
    expect(await loadError(m2, 'mixed2.safetensors')).toMatch(/mixes quantization formats/);
  });

  it('MLX per-slice depformer norms that differ are refused', async () => {
    const m = entries('model.q4.safetensors');
    const key = 'depformer.slices.3.transformer.layers.1.norm2.weight';
    const e = m.get(key)!;
    const data = e.data.slice();
    data[0] ^= 0x01;
    m.set(key, { ...e, data });
    expect(await loadError(m, 'q4.safetensors')).toMatch(/depformer\.slices\.3\.transformer\.layers\.1\.norm2\.weight.*differ/);
  });

  it('a model over the memory budget is refused before any upload, naming the need and the q4 size', async () => {
    const ctx = await nodeContext();
    const live = ctx.liveBytes;
    const vb = VarBuilder.fromEntries(ctx, entries('model.q8.safetensors'), 'q8.safetensors');
    await expect(LMModel.load(ctx, vb, cfg, { memoryBudgetBytes: 2e6 })).rejects.toThrow(/the LM in q8\.safetensors \(q8 \(PyTorch int8\)\) needs 1[0-9] MB of GPU memory \(weights 4 MB, KV cache [0-9]+ MB for a context of 3000 steps\), over the budget of 2 MB; the MLX q4 format of this model needs/);
    expect(ctx.liveBytes).toBe(live);
    // A shorter context is a load option: the KV cache shrinks with it.
    const lm = await LMModel.load(ctx, VarBuilder.fromEntries(ctx, entries('model.q8.safetensors'), 'q8.safetensors'), cfg, { context: 100 });
    expect(lm.transformer.capacity).toBe(100);
    lm.destroy();
    await expect(LMModel.load(ctx, VarBuilder.fromEntries(ctx, entries('model.q8.safetensors'), 'q8'), cfg, { context: 0 })).rejects.toThrow(/context must be a positive integer/);
  });

  it('a context whose KV cache tensor cannot be one GPU buffer is refused before any upload, naming the context', async () => {
    const ctx = await nodeContext();
    const live = ctx.liveBytes;
    // Counts the tensors made: none may be (the refusal comes before the upload).
    const tensor = ctx.tensor;
    let made = 0;
    ctx.tensor = (...a: Parameters<typeof tensor>) => (made++, tensor.apply(ctx, a));
    onTestFinished(() => void (ctx.tensor = tensor));
    const huge = { ...cfg, context: 1e9 };
    await expect(LMModel.load(ctx, VarBuilder.fromEntries(ctx, entries('model.q8.safetensors'), 'q8.safetensors'), huge)).rejects.toThrow(
      /the LM in q8\.safetensors \(q8 \(PyTorch int8\)\) needs .* for a context of 1000000000 steps\); one layer's key \(or value\) cache takes [0-9.]+ GB, over this adapter's maxBufferSize of .*; a shorter context .* takes less/,
    );
    const long = Math.ceil((ctx.bindingLimit + 1) / (2 * cfg.dim)); // f16 keys of one layer: 2·dim bytes a step
    await expect(LMModel.load(ctx, VarBuilder.fromEntries(ctx, entries('model.q8.safetensors'), 'q8.safetensors'), cfg, { context: long })).rejects.toThrow(
      new RegExp(`for a context of ${long} steps\\); one layer's key \\(or value\\) cache takes .*, over (this adapter's maxBufferSize|the .* one binding may cover)`),
    );
    expect(ctx.liveBytes).toBe(live);
    expect(made).toBe(0);
  });

  it('a NaN weight is an error naming the tensor', async () => {
    const m = entries('model.bf16.safetensors');
    const e = m.get('transformer.layers.1.gating.linear_out.weight')!;
    const data = e.data.slice();
    data[11] = 0x7f; // high byte of element 5: exponent all ones
    data[10] = 0xc1;
    m.set(e.name, { ...e, data });
    expect(await loadError(m, 'nan.safetensors')).toMatch(/transformer\.layers\.1\.gating\.linear_out\.weight' in nan\.safetensors holds a non-finite value .* element 5/);
  });
});

describe('out of GPU memory during a load', () => {
  it('is reported by name (GpuOutOfMemoryError), the partial load freed, the device still usable', async () => {
    const { createNodeGpuContext } = await import('../../src/gpu/node.ts');
    const { GpuOutOfMemoryError } = await import('../../src/gpu/index.ts');
    const ctx = await createNodeGpuContext();
    const live = ctx.liveBytes;
    // The adapter cannot be made to run out of memory on demand: the 'out-of-memory' error scope
    // reports a failed allocation as a real device would (WebGPU spec: popErrorScope resolves to
    // a GPUOutOfMemoryError).
    const dev = ctx.device as GPUDevice & { pushErrorScope: GPUDevice['pushErrorScope']; popErrorScope: GPUDevice['popErrorScope'] };
    const push = dev.pushErrorScope.bind(dev);
    const pop = dev.popErrorScope.bind(dev);
    const scopes: string[] = [];
    dev.pushErrorScope = (f: GPUErrorFilter) => { scopes.push(f); push(f); };
    dev.popErrorScope = async () => {
      const real = await pop();
      return scopes.pop() === 'out-of-memory' ? ({ message: 'Allocation of 262144000 bytes failed (simulated)' } as GPUError) : real;
    };
    try {
      await expect(LMModel.load(ctx, VarBuilder.fromEntries(ctx, entries('model.q4.safetensors'), 'q4.safetensors'), cfg)).rejects.toThrow(GpuOutOfMemoryError);
      await expect(LMModel.load(ctx, VarBuilder.fromEntries(ctx, entries('model.q4.safetensors'), 'q4.safetensors'), cfg)).rejects.toThrow(/out of GPU memory while loading the LM from q4\.safetensors: Allocation of 262144000 bytes failed \(simulated\)\. .*smaller model/);
      expect(ctx.liveBytes).toBe(live);
    } finally {
      dev.pushErrorScope = push;
      dev.popErrorScope = pop;
    }
    const lm = await LMModel.load(ctx, VarBuilder.fromEntries(ctx, entries('model.q4.safetensors'), 'q4.safetensors'), cfg);
    expect(lm.weightBytes).toBeGreaterThan(0);
    lm.destroy();
    ctx.destroy();
  });
});
