// The pieces of the Transcribe mode that need no browser: the STT hub presets (files, sizes from
// lm_memory), the hub URLs of an STT repository (its config.json too), which configs load as STT,
// and the page's caption track (order, gaps, words, pauses, the .txt / .srt / .vtt files).
import { describe, expect, it } from 'vitest';
import type { CaptionMeta, SttModelInfo } from '../../src/engine/worker_api.ts';
import { isSttModelConfig } from '../../src/engine/load_stt.ts';
import { RELEASED_MODELS, STT_MIMI_FILE, STT_MODELS, sttModel, sttModelGpuBytes, whyNotFitStt } from '../../src/models/catalog.ts';
import { lmMatrices } from '../../src/models/lm_memory.ts';
import { sourceUrls } from '../../src/weights/hub.ts';
import { CaptionTrack } from '../../src/ui/captions.ts';

describe('STT hub presets', () => {
  it('stt-1b-en_fr and stt-2.6b-en: files, sizes, stt_config, parameters', () => {
    expect(STT_MODELS.map((m) => m.repo)).toEqual(['kyutai/stt-1b-en_fr', 'kyutai/stt-2.6b-en']);
    const [a, b] = STT_MODELS;
    expect([a.configFile, a.lmFile, a.mimiFile, a.tokenizerFile]).toEqual(['config.json', 'model.safetensors', 'mimi-pytorch-e351c8d8@125.safetensors', 'tokenizer_en_fr_audio_8000.model']);
    expect(b.tokenizerFile).toBe('tokenizer_en_audio_4000.model');
    expect([a.config.dim, a.config.numLayers, a.config.numHeads, a.config.context, a.config.textCard, a.config.nQ, a.config.depQ, a.config.extraHeadsNumHeads, a.config.extraHeadsDim]).toEqual([2048, 16, 16, 750, 8000, 32, 0, 4, 6]);
    expect([b.config.dim, b.config.numLayers, b.config.numHeads, b.config.context, b.config.textCard, b.config.nQ, b.config.depQ, b.config.extraHeadsNumHeads]).toEqual([2048, 48, 32, 375, 4000, 32, 0, 0]);
    expect(a.config.stt).toEqual({ audioDelaySeconds: 0.5, audioSilencePrefixSeconds: 0 });
    expect(b.config.stt).toEqual({ audioDelaySeconds: 2.5, audioSilencePrefixSeconds: 1 });
    // Parameters: ~1.0 B and ~2.6 B, as the names say; bf16 download = 2 bytes each.
    const params = (m: (typeof STT_MODELS)[number]) => {
      const { matrices, vectors } = lmMatrices(m.config);
      return matrices.reduce((s, x) => s + x.rows * x.cols, 0) + vectors;
    };
    expect(params(a) / 1e9).toBeGreaterThan(0.95);
    expect(params(a) / 1e9).toBeLessThan(1.05);
    expect(params(b) / 1e9).toBeGreaterThan(2.55);
    expect(params(b) / 1e9).toBeLessThan(2.7);
    // (lm_memory keeps the RMS norms' alphas in f32: a few hundred kB over 2 bytes per parameter.)
    expect(Math.abs(a.downloadBytes / (2 * params(a)) - 1)).toBeLessThan(1e-3);
    expect(Math.abs(b.downloadBytes / (2 * params(b)) - 1)).toBeLessThan(1e-3);
    // GPU: weights + an f16 KV cache over the context + activations: a little more than the download.
    for (const m of STT_MODELS) {
      expect(sttModelGpuBytes(m)).toBeGreaterThan(m.downloadBytes);
      expect(sttModelGpuBytes(m)).toBeLessThan(m.downloadBytes * 1.1);
    }
    expect(sttModel('stt-2.6b-en')).toBe(b);
    expect(sttModel('kyutai/moshiko-pytorch-bf16')).toBeNull();
    expect(RELEASED_MODELS.some((m) => m.repo.includes('stt'))).toBe(false);
  });

  it('fit: the budget and the largest buffer, with the reason', () => {
    const [a, b] = STT_MODELS;
    expect(whyNotFitStt(a, { maxBufferSize: 2 ** 30, maxStorageBufferBindingSize: 2 ** 30, totalBytes: 8e9 })).toBeNull();
    expect(whyNotFitStt(b, { maxBufferSize: 2 ** 30, maxStorageBufferBindingSize: 2 ** 30, totalBytes: 4e9 })).toMatch(/^it needs 5\.\d\d GB of GPU memory, the budget is 4\.00 GB$/);
    expect(whyNotFitStt(a, { maxBufferSize: 1e6, maxStorageBufferBindingSize: 1e6, totalBytes: null })).toMatch(/^its largest tensor .* needs \d+ MB, the adapter's buffers hold at most 1 MB$/);
  });

  it('hub URLs of an STT repository: config.json, the LM, its Mimi and tokenizer', () => {
    const m = STT_MODELS[0];
    const u = sourceUrls({ kind: 'hub', repo: m.repo, files: { lmConfig: m.configFile, lmWeights: m.lmFile, mimiWeights: m.mimiFile, tokenizer: m.tokenizerFile } });
    expect(u).toEqual({
      lmConfig: 'https://huggingface.co/kyutai/stt-1b-en_fr/resolve/main/config.json',
      lmWeights: 'https://huggingface.co/kyutai/stt-1b-en_fr/resolve/main/model.safetensors',
      mimiWeights: `https://huggingface.co/kyutai/stt-1b-en_fr/resolve/main/${encodeURIComponent(STT_MIMI_FILE)}`,
      tokenizer: 'https://huggingface.co/kyutai/stt-1b-en_fr/resolve/main/tokenizer_en_fr_audio_8000.model',
    });
    // Moshi's hub source still has no config URL (the released configs are built in).
    expect(sourceUrls({ kind: 'hub' }).lmConfig).toBeUndefined();
  });

  it('which configs load as speech-to-text', () => {
    expect(isSttModelConfig({ model_type: 'stt', dep_q: 0 })).toBe(true);
    expect(isSttModelConfig({ dep_q: 0 })).toBe(true);
    expect(isSttModelConfig({ model_type: 'moshi', dep_q: 8 })).toBe(false);
    expect(isSttModelConfig(null)).toBe(false);
    expect(isSttModelConfig('stt')).toBe(false);
  });
});

describe('CaptionTrack (the page side of the captions)', () => {
  const info: SttModelInfo = { numHeads: 2, headDim: 2, audioDelaySeconds: 0.16, audioSilencePrefixSeconds: 0, frameSeconds: 0.08, endOfPaddingId: 0 };
  const cap = (step: number, token: number, piece: string | null, p0: number): CaptionMeta => ({
    kind: 'caption', step, frame: step, token, piece, text: piece === null || token === 0 || token === 3 ? null : piece.replace(/\u2581/g, ' '),
    time: Math.max(0, step * 0.08 - 0.16), heads: [p0, 1 - p0, 0.5, 0.5],
  });
  const all = [cap(0, 3, '<pad>', 0.1), cap(1, 9, '\u2581the', 0.2), cap(2, 5, 's', 0.9), cap(3, 0, '<eop>', 0.95), cap(4, 7, '\u2581a', 0.1), cap(5, 3, '<pad>', 0.8)];

  it('orders by step, shows only the run without gaps, words and text as the procedure prints them', () => {
    const t = new CaptionTrack(info);
    // Out of order (a resent packet): the gap at step 2 holds back the rest.
    for (const i of [0, 1, 3, 4, 5]) t.add(all[i]);
    expect(Array.from(t.tokens)).toEqual([3, 9]);
    t.add(all[2]);
    expect(Array.from(t.tokens)).toEqual([3, 9, 5, 0, 7, 3]);
    expect(t.text()).toBe('thes a');
    const w = t.words();
    expect(w.map((x) => x.text)).toEqual(['thes', 'a']);
    // 'the' at frame 1 (0.08 − 0.16 → 0), ends at the end-of-padding token (frame 3); 'a' at frame 4 to the end (frame 6).
    [0, 0.08, 0.16, 0.32].forEach((v, i) => expect(w.flatMap((x) => [x.start, x.end])[i]).toBeCloseTo(v, 9));
  });

  it('pauses: steps where the chosen head rises above the threshold', () => {
    const t = new CaptionTrack(info);
    all.forEach((c) => t.add(c));
    expect(t.headProbabilities(0)).toEqual([0.1, 0.2, 0.9, 0.95, 0.1, 0.8]);
    expect(t.pauses(0, 0.5)).toEqual([2, 5]);
    expect(t.pauses(0, 0.05)).toEqual([0]);
    expect(t.pauses(1, 0.5)).toEqual([]); // head 1 stays at 0.5
    expect(t.pauses(1, 0.4)).toEqual([0]);
    expect(() => t.pauses(2, 0.5)).toThrow(/extra head 2 does not exist: the model has 2/);
    expect(() => t.pauses(0, 1.5)).toThrow(/pause threshold must be a probability in \[0, 1\], got 1\.5/);
  });

  it('files: .txt, .srt and .vtt of the words', () => {
    const t = new CaptionTrack(info);
    all.forEach((c) => t.add(c));
    const f = t.files();
    expect(f.txt).toBe('thes a\n');
    // One cue: no sentence end, no gap over 1 s.
    expect(f.srt).toBe('1\n00:00:00,000 --> 00:00:00,320\nthes a\n');
    expect(f.vtt).toBe('WEBVTT\n\n00:00:00.000 --> 00:00:00.320\nthes a\n');
  });

  it('refuses captions that do not fit the model', () => {
    const t = new CaptionTrack(info);
    expect(() => t.add({ ...all[0], heads: [1, 2] })).toThrow(/caption 0 has 2 extra-head values, the model has 2 × 2/);
    expect(() => t.add({ ...all[0], step: -1 })).toThrow(/caption step must be an integer >= 0, got -1/);
  });

  it('without a tokenizer: ids as [id], each its own word', () => {
    const t = new CaptionTrack({ ...info, numHeads: 0, headDim: 0 });
    [4, 8].forEach((id, i) => t.add({ kind: 'caption', step: i, frame: i, token: id, piece: null, text: null, time: 0, heads: [] }));
    expect(t.text()).toBe('[4][8]');
    expect(t.words().map((w) => w.text)).toEqual(['[4]', '[8]']);
  });
});
