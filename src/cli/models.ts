/**
 * `npm run cli -- models [--context N] [--budget-gb G]`: the released Moshi models by repository
 * (src/models/catalog.ts) with their download size and the GPU memory this engine needs for them,
 * marked as fitting or not on this machine's WebGPU adapter (its buffer limits, and a total budget
 * when one is given: WebGPU does not report GPU memory), and the variant a user should pick.
 */
import { createNodeGpuContext } from '../gpu/node.ts';
import { RELEASED_MODELS, bestFittingModel, releasedModelGpuBytes, whyNotFit } from '../models/catalog.ts';
import { formatBytes } from '../models/lm_memory.ts';
import { type CliCommand, UsageError, optionalInt, parseFlags } from './args.ts';

const USAGE = `usage: npm run cli -- models [--context N] [--budget-gb G]

Lists the released Moshi repositories (moshiko / moshika × PyTorch bf16 / PyTorch q8 / MLX q8 /
MLX q4) with the download size of their LM file and the GPU memory needed (weights as stored,
an f16 KV cache over the context, activations), checked against this adapter.
  --context N     KV cache capacity in steps (default 3000 = 4 min)
  --budget-gb G   total GPU memory the model may use, in GB (default: only the adapter's buffer
                  limits are checked; WebGPU does not report GPU memory)`;

export const modelsCommand: CliCommand = {
  name: 'models',
  summary: 'the released Moshi models, their sizes and which fit this adapter',
  usage: USAGE,
  async run(argv, io) {
    const { values } = parseFlags(argv, { context: { type: 'string' }, 'budget-gb': { type: 'string' } }, USAGE);
    const context = optionalInt(values, 'context', 1, 1 << 24, USAGE);
    let totalBytes: number | null = null;
    if (values['budget-gb'] !== undefined) {
      const g = Number(values['budget-gb']);
      if (!Number.isFinite(g) || g <= 0) throw new UsageError(`--budget-gb must be a positive number, got '${String(values['budget-gb'])}'`, USAGE);
      totalBytes = g * 1e9;
    }
    const ctx = await createNodeGpuContext();
    try {
      const lim = ctx.device.limits;
      const budget = { maxBufferSize: lim.maxBufferSize, maxStorageBufferBindingSize: lim.maxStorageBufferBindingSize, totalBytes };
      const a = ctx.adapter;
      io.stdout(`adapter: ${[a.vendor, a.architecture, a.description].filter(Boolean).join(' / ')}; per buffer ≤ ${formatBytes(lim.maxBufferSize)}${totalBytes ? `; budget ${formatBytes(totalBytes)}` : ''}`);
      const w = Math.max(...RELEASED_MODELS.map((m) => m.repo.length));
      io.stdout(`${'repository'.padEnd(w)}  LM file               download  GPU memory  fits`);
      for (const m of RELEASED_MODELS) {
        const why = whyNotFit(m, budget, context);
        io.stdout(`${m.repo.padEnd(w)}  ${m.lmFile.padEnd(20)}  ${`~${formatBytes(m.downloadBytes)}`.padStart(8)}  ${formatBytes(releasedModelGpuBytes(m, context)).padStart(10)}  ${why ? `no: ${why}` : 'yes'}`);
      }
      for (const voice of ['moshiko', 'moshika'] as const) io.stdout(`best for ${voice}: ${bestFittingModel(voice, budget, context).repo}`);
    } finally {
      ctx.destroy();
    }
  },
};
