/**
 * `npm run soak -- [--minutes N] [--sample-seconds S]`: the live loop in headless Chromium with
 * the tiny `ref` models and the fixture speech as a looping fake microphone, for N minutes
 * (default 5), printing every S seconds (default 60) the GPU memory the engine holds, the page's
 * JS heap and the RSS of the browser's processes. Memory must stay flat: after the first sample,
 * the GPU bytes never change, RSS grows by at most max(30 MB, 10 %) and the page heap by at most
 * 20 MB, and the loop keeps stepping. Exit 1 (with the reason) otherwise.
 */
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type E2ESample, runE2E } from './run_e2e.ts';

const FIX = process.env.SOLACELIVE_FIXTURES ?? resolve(import.meta.dirname, '../../../shared/fixtures');
const REF = join(FIX, 'ref');

export interface SoakResult {
  samples: E2ESample[];
  /** Why memory is not flat (empty when it is). */
  problems: string[];
}

const MB = 1e6;

/** Checks the flatness rules over `samples` (the first one is the warm-up baseline). */
export function judgeSoak(samples: E2ESample[]): string[] {
  const problems: string[] = [];
  if (samples.length < 2) return ['fewer than two samples: run longer than one sampling period'];
  const [base, ...rest] = samples;
  for (const s of rest) {
    if (s.gpuBytes !== base.gpuBytes) problems.push(`GPU memory changed: ${base.gpuBytes} bytes at ${base.elapsedS} s, ${s.gpuBytes} at ${s.elapsedS} s`);
  }
  const last = samples[samples.length - 1];
  const rssLimit = Math.max(30 * MB, 0.1 * base.browserRssBytes);
  if (last.browserRssBytes - base.browserRssBytes > rssLimit) problems.push(`browser RSS grew by ${((last.browserRssBytes - base.browserRssBytes) / MB).toFixed(1)} MB (limit ${(rssLimit / MB).toFixed(1)} MB)`);
  if (last.pageHeapBytes - base.pageHeapBytes > 20 * MB) problems.push(`page JS heap grew by ${((last.pageHeapBytes - base.pageHeapBytes) / MB).toFixed(1)} MB (limit 20 MB)`);
  for (let i = 1; i < samples.length; i++) if (samples[i].steps <= samples[i - 1].steps) problems.push(`the loop stopped stepping between ${samples[i - 1].elapsedS} s and ${samples[i].elapsedS} s`);
  return problems;
}

export async function runSoak(minutes: number, sampleSeconds = 60, log: (line: string) => void = console.log): Promise<SoakResult> {
  const samples: E2ESample[] = [];
  await runE2E({
    mimiConfig: join(REF, 'mimi_tiny_config.json'),
    mimiWeights: join(REF, 'mimi_tiny.safetensors'),
    lmConfig: join(REF, 'moshi_tiny_config.json'),
    lmWeights: join(REF, 'moshi_tiny.safetensors'),
    mic: join(REF, 'mimi/input_speech_24k_pcm16.wav'),
    seconds: minutes * 60,
    sampleEverySeconds: sampleSeconds,
    log: () => {},
    onSample: (s) => {
      samples.push(s);
      log(`soak ${(s.elapsedS / 60).toFixed(1)} min: steps ${s.steps}, GPU ${s.gpuBytes === null ? '?' : (s.gpuBytes / MB).toFixed(2)} MB, page heap ${(s.pageHeapBytes / MB).toFixed(1)} MB, browser RSS ${(s.browserRssBytes / MB).toFixed(0)} MB, underruns ${s.underruns}`);
    },
  });
  return { samples, problems: judgeSoak(samples) };
}

const invokedDirectly = process.argv[1] !== undefined && resolve(process.argv[1]) === resolve(import.meta.filename);
if (invokedDirectly) {
  const { values } = parseArgs({ options: { minutes: { type: 'string', default: '5' }, 'sample-seconds': { type: 'string', default: '60' } }, strict: true });
  const minutes = Number(values.minutes);
  const every = Number(values['sample-seconds']);
  if (!(minutes > 0) || !(every > 0)) {
    console.error(`soak: --minutes and --sample-seconds must be positive numbers, got '${values.minutes}', '${values['sample-seconds']}'`);
    process.exit(2);
  }
  const r = await runSoak(minutes, every);
  if (r.problems.length) {
    console.error(`soak: memory is not flat:\n- ${r.problems.join('\n- ')}`);
    process.exit(1);
  }
  console.log(`soak: flat over ${minutes} min (${r.samples.length} samples)`);
}
