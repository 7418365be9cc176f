// The live loop in headless Chromium (WebGPU on SwiftShader) with the fixture models and the
// fixture speech as a fake microphone: capture worklet -> input ring -> engine Worker ->
// output ring -> playback worklet, text and metrics as packets. Built app, served with COOP/COEP.
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type E2EReport, runE2E } from './run_e2e.ts';

const FIX = process.env.SOLACELIVE_FIXTURES ?? resolve(import.meta.dirname, '../../../shared/fixtures');
const SECONDS = Number(process.env.SOLACELIVE_E2E_SECONDS ?? 10);
const REF = join(FIX, 'ref');
/** The tiny `ref` golden models and the fixture speech as the microphone. */
const REF_MODELS = {
  mimiConfig: join(REF, 'mimi_tiny_config.json'),
  mimiWeights: join(REF, 'mimi_tiny.safetensors'),
  lmConfig: join(REF, 'moshi_tiny_config.json'),
  lmWeights: join(REF, 'moshi_tiny.safetensors'),
  mic: join(REF, 'mimi/input_speech_24k_pcm16.wav'),
};
/**
 * The latency fields are there, finite and plausible: more than one 80 ms frame (the input
 * frame must fill before the engine can start), less than a few seconds, p50 <= p95 <= max,
 * measured over many reply frames; the underrun share a percentage.
 */
function expectLatencyPlausible(r: E2EReport, summary: string, minFrames: number): void {
  expect(r.latencyMs, summary).not.toBeNull();
  const l = r.latencyMs!;
  for (const v of [l.p50, l.p95, l.max]) {
    expect(Number.isFinite(v), summary).toBe(true);
    expect(v, summary).toBeGreaterThan(80);
    expect(v, summary).toBeLessThan(5000);
  }
  expect(l.p50, summary).toBeLessThanOrEqual(l.p95);
  expect(l.p95, summary).toBeLessThanOrEqual(l.max);
  expect(r.latencyFrames, summary).toBeGreaterThanOrEqual(minFrames);
  expect(r.underrunPercent, summary).not.toBeNull();
  expect(Number.isFinite(r.underrunPercent!), summary).toBe(true);
  expect(r.underrunPercent!, summary).toBeGreaterThanOrEqual(0);
  expect(r.underrunPercent!, summary).toBeLessThanOrEqual(100);
  expect(r.modelDelayMs, summary).not.toBeNull();
}

/** The report as an assertion message (console and text cut short). */
const summaryOf = (r: E2EReport) => JSON.stringify({ ...r, console: r.console.slice(-10), text: r.text.slice(0, 200) }, null, 1);

describe('browser live loop (e2e)', () => {
  it(`runs ${SECONDS} s in real time: steps, audio reaches playback, text packets, no protocol errors`, async () => {
    const r = await runE2E({
      ...REF_MODELS,
      seconds: SECONDS,
      log: () => {},
    });
    const summary = summaryOf(r);
    console.log(`e2e: steps ${r.steps}/${r.expectedSteps}, step ms p50 ${r.stepMs.p50.toFixed(1)} p95 ${r.stepMs.p95.toFixed(1)} max ${r.stepMs.max.toFixed(1)}, underruns ${r.underruns} (${r.underrunsPerMinute.toFixed(1)}/min, ${r.underrunPercent?.toFixed(2)} % of the playback time), skipped decodes ${r.skippedDecodes}, output RMS ${r.outputRms.toFixed(4)}, text packets ${r.textPackets}, mic → speaker ms p50 ${r.latencyMs?.p50.toFixed(1)} p95 ${r.latencyMs?.p95.toFixed(1)} max ${r.latencyMs?.max.toFixed(1)} over ${r.latencyFrames} frames (model delay ${r.modelDelayMs} ms beside it)`);
    expect(r.errors, summary).toEqual([]);
    expect(r.transport, summary).toBe('shared');
    expect(r.steps, summary).toBeGreaterThanOrEqual(Math.floor(0.9 * r.expectedSteps));
    expect(r.outputSamples, summary).toBeGreaterThan(0);
    expect(r.outputRms, summary).toBeGreaterThan(1e-4);
    expect(r.textPackets, summary).toBeGreaterThan(0);
    expect(r.protocolErrors, summary).toBe(0);
    expectLatencyPlausible(r, summary, Math.floor(0.5 * r.expectedSteps));
  }, 900_000);

  it('a person\'s path: "Local files" picker (configs, weights, tokenizer) -> Load model -> Start microphone; text as words', async () => {
    const r = await runE2E({
      ...REF_MODELS,
      // 300 pieces: covers the tiny LM's 100 text ids.
      tokenizer: resolve(import.meta.dirname, '../fixtures/spm/tiny_unigram.model'),
      seconds: 5,
      source: 'files',
      log: () => {},
    });
    const summary = summaryOf(r);
    console.log(`e2e (local files): steps ${r.steps}/${r.expectedSteps}, step ms p50 ${r.stepMs.p50.toFixed(1)}, text ${JSON.stringify(r.text.slice(0, 60))}`);
    expect(r.errors, summary).toEqual([]);
    expect(r.steps, summary).toBeGreaterThanOrEqual(Math.floor(0.8 * r.expectedSteps));
    expect(r.outputRms, summary).toBeGreaterThan(1e-4);
    expect(r.protocolErrors, summary).toBe(0);
    // With the tokenizer loaded the transcript is SentencePiece text, not `[id]` token ids.
    expect(r.text.trim().length, summary).toBeGreaterThan(0);
    expect(r.text, summary).not.toMatch(/\[\d+\]/);
  }, 900_000);

  it('a quantized checkpoint (MLX q4) picked as local files loads in the page and runs the live loop', async () => {
    const r = await runE2E({
      ...REF_MODELS,
      lmConfig: join(FIX, 'quant', 'lm_config.json'),
      lmWeights: join(FIX, 'quant', 'model.q4.safetensors'),
      seconds: 5,
      source: 'files',
      log: () => {},
    });
    const summary = summaryOf(r);
    // This LM is 4× wider than ref's: on a CPU adapter it need not keep real time; it must run.
    console.log(`e2e (MLX q4, local files): steps ${r.steps}/${r.expectedSteps}, step ms p50 ${r.stepMs.p50.toFixed(1)}, skipped decodes ${r.skippedDecodes}, output ${r.outputSamples} samples RMS ${r.outputRms.toFixed(4)}`);
    expect(r.errors, summary).toEqual([]);
    expect(r.steps, summary).toBeGreaterThan(3);
    expect(r.steps - r.skippedDecodes, summary).toBeGreaterThan(0); // at least one reply frame decoded
    expect(r.outputSamples, summary).toBeGreaterThan(0);
    expect(r.protocolErrors, summary).toBe(0);
  }, 900_000);

  it('without SharedArrayBuffer rings: PCM both ways as AUDIO_CHUNK packets over the channel', async () => {
    const r = await runE2E({
      ...REF_MODELS,
      seconds: 5,
      transport: 'packets',
      log: () => {},
    });
    const summary = summaryOf(r);
    console.log(`e2e (packets): steps ${r.steps}/${r.expectedSteps}, step ms p50 ${r.stepMs.p50.toFixed(1)}, underruns ${r.underruns} (${r.underrunPercent?.toFixed(2)} %), dropped ${JSON.stringify(r.droppedPackets)}, output RMS ${r.outputRms.toFixed(4)}, mic → speaker ms p50 ${r.latencyMs?.p50.toFixed(1)} p95 ${r.latencyMs?.p95.toFixed(1)} max ${r.latencyMs?.max.toFixed(1)} over ${r.latencyFrames} frames`);
    expect(r.errors, summary).toEqual([]);
    expect(r.transport, summary).toBe('packets');
    expect(r.steps, summary).toBeGreaterThanOrEqual(Math.floor(0.8 * r.expectedSteps));
    expect(r.outputRms, summary).toBeGreaterThan(1e-4);
    expect(r.textPackets, summary).toBeGreaterThan(0);
    expect(r.protocolErrors, summary).toBe(0);
    expect(r.droppedPackets.AUDIO_CHUNK ?? 0, summary).toBe(0);
    // The stamp travelled in both AUDIO_CHUNK packets (version-2 trailer).
    expectLatencyPlausible(r, summary, Math.floor(0.3 * r.expectedSteps));
  }, 900_000);

  it('file-input mode: a picked WAV goes to the engine as AUDIO_CHUNK packets in real time and Moshi answers', async () => {
    const r = await runE2E({ ...REF_MODELS, seconds: 5, input: 'file', log: () => {} });
    const summary = summaryOf(r);
    console.log(`e2e (file input): steps ${r.steps}/${r.expectedSteps}, step ms p50 ${r.stepMs.p50.toFixed(1)}, underruns ${r.underruns} (${r.underrunPercent?.toFixed(2)} %), output RMS ${r.outputRms.toFixed(4)}, mic → speaker ms p50 ${r.latencyMs?.p50.toFixed(1)} p95 ${r.latencyMs?.p95.toFixed(1)} over ${r.latencyFrames} frames`);
    expect(r.errors, summary).toEqual([]);
    expect(r.transport, summary).toBe('packets');
    expect(r.steps, summary).toBeGreaterThanOrEqual(Math.floor(0.8 * r.expectedSteps));
    expect(r.capturedSamples, summary).toBeGreaterThan(0);
    expect(r.outputRms, summary).toBeGreaterThan(1e-4);
    expect(r.textPackets, summary).toBeGreaterThan(0);
    expect(r.protocolErrors, summary).toBe(0);
    // File frames are stamped as microphone frames ending when they are sent.
    expectLatencyPlausible(r, summary, Math.floor(0.3 * r.expectedSteps));
  }, 900_000);
});
