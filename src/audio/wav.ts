/**
 * RIFF/WAVE reading and writing, host-only (no GPU, no file system: callers pass bytes, so this
 * works in Node, a page and a Worker alike).
 *
 * Reads: integer PCM 16-bit (format tag 1) and IEEE float 32-bit (format tag 3), also inside a
 * WAVE_FORMAT_EXTENSIBLE (0xFFFE) header whose sub-format GUID is PCM or IEEE float. Samples come
 * back as f32: PCM16 is divided by 32768 (the same mapping as the golden fixtures:
 * `input_pcm_f32 = int16 / 32768`), float32 is returned as stored.
 *
 * Channels: Mimi takes mono. A multi-channel file is an error (WavError naming the file and the
 * channel count) unless `{ downmix: true }` is passed, in which case every frame is the arithmetic
 * mean of its channels (documented downmix; the CLI exposes it as `--downmix`).
 *
 * Checks (each a WavError naming the file and what is wrong): the sample rate must lie in
 * [WAV_MIN_RATE, WAV_MAX_RATE] = [1 kHz, 384 kHz]; every sample must be finite and within
 * ±WAV_MAX_ABS (a NaN, an infinity or 1e30 in a float WAV would poison the streaming codec state
 * for the rest of the stream): the error gives the count and the first bad sample's index and
 * value. A `data` chunk size of 0xFFFFFFFF (left by streaming writers that do not know the
 * length) means "to the end of the file", cut to whole frames.
 *
 * Writes: 32-bit IEEE float mono WAV (format tag 3, with the `fact` chunk that format requires).
 *
 * Format reference: Microsoft "Multimedia Programming Interface and Data Specifications 1.0"
 * (RIFF, fmt , data chunks; chunks are padded to an even size) and the WAVE_FORMAT_EXTENSIBLE
 * documentation (KSDATAFORMAT_SUBTYPE_PCM / _IEEE_FLOAT GUIDs).
 */

import { countBadSamples, MAX_SAMPLE_ABS } from '../protocol/samples.ts';

/** A WAV that is not RIFF/WAVE, is truncated, or uses a format this reader does not take. The message names the file. */
export class WavError extends Error {
  override name = 'WavError';
}

/** Decoded mono audio. */
export interface WavAudio {
  /** Samples per second (Hz). */
  sampleRate: number;
  /** Mono samples as f32 (PCM16 scaled by 1/32768). Length = frames in the file. */
  samples: Float32Array;
  /** The stored sample format. */
  format: 'pcm16' | 'float32';
  /** Channels in the file (1, or more when downmixed). */
  channels: number;
}

export interface DecodeWavOptions {
  /** Average the channels of a multi-channel file into mono instead of throwing. Default false. */
  downmix?: boolean;
}

/** Lowest sample rate accepted, Hz. */
export const WAV_MIN_RATE = 1000;
/** Highest sample rate accepted, Hz. */
export const WAV_MAX_RATE = 384000;
/** Largest |sample| accepted in a float WAV (24 dB above full scale; no recording goes there). */
export const WAV_MAX_ABS = MAX_SAMPLE_ABS;
export { countBadSamples };
/** `data` chunk size written by streaming writers that do not know the length: "to the end of the file". */
const STREAMING_SIZE = 0xffffffff;

const FORMAT_PCM = 1;
const FORMAT_FLOAT = 3;
const FORMAT_EXTENSIBLE = 0xfffe;
/** Tail shared by the KSDATAFORMAT_SUBTYPE_* GUIDs (bytes 2..15); bytes 0..1 hold the format tag. */
const GUID_TAIL = [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71];

function fourcc(u8: Uint8Array, at: number): string {
  return String.fromCharCode(u8[at], u8[at + 1], u8[at + 2], u8[at + 3]);
}

/**
 * Decodes a RIFF/WAVE file held in memory into mono f32 samples.
 *
 * @param bytes the whole file
 * @param fileName used in error messages
 * @throws WavError when the bytes are not RIFF/WAVE, a chunk is truncated, `fmt ` or `data` is
 *   missing, the format is not PCM16/float32, the sample rate is outside [1 kHz, 384 kHz], a
 *   sample is not finite or beyond ±WAV_MAX_ABS, or the file has more than one channel and
 *   `downmix` is off.
 */
export function decodeWav(bytes: Uint8Array | ArrayBuffer, fileName = '<memory>', options: DecodeWavOptions = {}): WavAudio {
  const u8 = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const fail = (msg: string) => new WavError(`${fileName}: ${msg}`);
  if (u8.byteLength < 12 || fourcc(u8, 0) !== 'RIFF' || fourcc(u8, 8) !== 'WAVE') {
    const head = fourcc(u8, 0).replace(/[^\x20-\x7e]/g, '?');
    throw fail(`not a WAV file (expected a 'RIFF....WAVE' header, found '${u8.byteLength >= 4 ? head : ''}'${u8.byteLength < 12 ? ` and only ${u8.byteLength} bytes` : ''})`);
  }
  const view = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  let fmt: { tag: number; channels: number; rate: number; blockAlign: number; bits: number } | null = null;
  let data: Uint8Array | null = null;
  let streaming = false;
  let pos = 12;
  while (pos + 8 <= u8.byteLength) {
    const id = fourcc(u8, pos);
    const size = view.getUint32(pos + 4, true);
    const body = pos + 8;
    if (id === 'fmt ') {
      if (size < 16) throw fail(`'fmt ' chunk is ${size} bytes, expected at least 16`);
      if (body + size > u8.byteLength) throw fail(`truncated: 'fmt ' chunk declares ${size} bytes, only ${u8.byteLength - body} present`);
      let tag = view.getUint16(body, true);
      const bits = view.getUint16(body + 14, true);
      if (tag === FORMAT_EXTENSIBLE) {
        if (size < 40) throw fail(`WAVE_FORMAT_EXTENSIBLE 'fmt ' chunk is ${size} bytes, expected 40`);
        const guid = u8.subarray(body + 24, body + 40);
        const known = GUID_TAIL.every((b, i) => guid[i + 2] === b);
        if (!known) throw fail('unsupported WAVE_FORMAT_EXTENSIBLE sub-format (not PCM or IEEE float)');
        tag = view.getUint16(body + 24, true);
      }
      fmt = { tag, channels: view.getUint16(body + 2, true), rate: view.getUint32(body + 4, true), blockAlign: view.getUint16(body + 12, true), bits };
    } else if (id === 'data') {
      if (size === STREAMING_SIZE) {
        // Streaming writers leave the size at 0xFFFFFFFF: the samples run to the end of the file.
        data = u8.subarray(body);
        streaming = true;
        break;
      }
      if (body + size > u8.byteLength) {
        throw fail(`truncated: the 'data' chunk declares ${size} bytes, only ${u8.byteLength - body} are present`);
      }
      data = u8.subarray(body, body + size);
      if (fmt) break;
    }
    pos = body + size + (size & 1);
  }
  if (!fmt) throw fail("no 'fmt ' chunk before the end of the file (truncated or not a WAV)");
  if (!data) throw fail("no 'data' chunk (truncated?)");
  const { tag, channels, rate, bits } = fmt;
  let format: WavAudio['format'];
  if (tag === FORMAT_PCM && bits === 16) format = 'pcm16';
  else if (tag === FORMAT_FLOAT && bits === 32) format = 'float32';
  else {
    const kind = tag === FORMAT_PCM ? 'integer PCM' : tag === FORMAT_FLOAT ? 'IEEE float' : `format tag 0x${tag.toString(16)}`;
    throw fail(`unsupported sample format: ${kind} with ${bits} bits per sample; supported are 16-bit PCM and 32-bit float (convert with: sox in.wav -b 16 -e signed-integer out.wav)`);
  }
  if (channels < 1) throw fail(`bad channel count ${channels}`);
  if (rate < WAV_MIN_RATE || rate > WAV_MAX_RATE) throw fail(`sample rate ${rate} Hz in the 'fmt ' chunk is outside [${WAV_MIN_RATE}, ${WAV_MAX_RATE}] Hz`);
  const bytesPer = bits / 8;
  if (fmt.blockAlign !== bytesPer * channels) throw fail(`block align ${fmt.blockAlign} does not match ${channels} channel(s) of ${bits} bits`);
  if (channels > 1 && !options.downmix) {
    throw fail(`has ${channels} channels; Mimi takes mono audio. Convert it (sox in.wav -c 1 out.wav) or ask for a downmix (average of the channels)`);
  }
  if (streaming) data = data.subarray(0, data.byteLength - (data.byteLength % fmt.blockAlign)); // whole frames only
  const frames = Math.floor(data.byteLength / fmt.blockAlign);
  if (frames * fmt.blockAlign !== data.byteLength) {
    throw fail(`truncated: the 'data' chunk has ${data.byteLength} bytes, not a whole number of ${fmt.blockAlign}-byte frames`);
  }
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const samples = new Float32Array(frames);
  const inv = 1 / channels;
  for (let f = 0; f < frames; f++) {
    let acc = 0;
    for (let c = 0; c < channels; c++) {
      const at = (f * channels + c) * bytesPer;
      acc += format === 'pcm16' ? dv.getInt16(at, true) / 32768 : dv.getFloat32(at, true);
    }
    samples[f] = channels === 1 ? acc : acc * inv;
  }
  if (format === 'float32') {
    const bad = countBadSamples(samples);
    if (bad.count) {
      throw fail(`${bad.count} sample(s) are not finite or beyond ±${WAV_MAX_ABS} (first: frame ${bad.first} = ${bad.value}); such a sample would poison the codec's streaming state`);
    }
  }
  return { sampleRate: rate, samples, format, channels };
}

/**
 * Encodes mono f32 samples as a 32-bit IEEE float WAV (RIFF/WAVE, `fmt ` tag 3, `fact`, `data`).
 *
 * @param samples mono samples (any range; float WAV does not clip)
 * @param sampleRate Hz, a positive integer
 * @throws RangeError for a bad sample rate or a file over 4 GiB
 */
export function encodeWavF32(samples: Float32Array, sampleRate: number): Uint8Array {
  if (!Number.isInteger(sampleRate) || sampleRate < 1) throw new RangeError(`sample rate must be a positive integer, got ${sampleRate}`);
  const dataBytes = samples.length * 4;
  const total = 12 + 8 + 18 + 8 + 4 + 8 + dataBytes;
  if (total > 0xffffffff) throw new RangeError(`${samples.length} samples do not fit one WAV file (4 GiB limit)`);
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  const ascii = (at: number, s: string) => {
    for (let i = 0; i < 4; i++) out[at + i] = s.charCodeAt(i);
  };
  ascii(0, 'RIFF');
  dv.setUint32(4, total - 8, true);
  ascii(8, 'WAVE');
  ascii(12, 'fmt ');
  dv.setUint32(16, 18, true);
  dv.setUint16(20, FORMAT_FLOAT, true);
  dv.setUint16(22, 1, true); // channels
  dv.setUint32(24, sampleRate, true);
  dv.setUint32(28, sampleRate * 4, true); // byte rate
  dv.setUint16(32, 4, true); // block align
  dv.setUint16(34, 32, true); // bits per sample
  dv.setUint16(36, 0, true); // cbSize
  ascii(38, 'fact');
  dv.setUint32(42, 4, true);
  dv.setUint32(46, samples.length, true);
  ascii(50, 'data');
  dv.setUint32(54, dataBytes, true);
  for (let i = 0; i < samples.length; i++) dv.setFloat32(58 + 4 * i, samples[i], true);
  return out;
}

/**
 * Encodes samples (interleaved when `channels` > 1) as 16-bit PCM WAV: f32 values clipped to
 * [-1, 1), scaled by 32768 and rounded; an Int16Array is written as it is (the page's conversation
 * recording). The CLI writes float32.
 */
export function encodeWavPcm16(samples: Float32Array | Int16Array, sampleRate: number, channels = 1): Uint8Array {
  if (!Number.isInteger(sampleRate) || sampleRate < 1) throw new RangeError(`sample rate must be a positive integer, got ${sampleRate}`);
  if (samples.length % channels !== 0) throw new RangeError(`${samples.length} interleaved samples are not a whole number of ${channels}-channel frames`);
  const dataBytes = samples.length * 2;
  const out = new Uint8Array(44 + dataBytes);
  const dv = new DataView(out.buffer);
  const ascii = (at: number, s: string) => {
    for (let i = 0; i < 4; i++) out[at + i] = s.charCodeAt(i);
  };
  ascii(0, 'RIFF');
  dv.setUint32(4, 36 + dataBytes, true);
  ascii(8, 'WAVE');
  ascii(12, 'fmt ');
  dv.setUint32(16, 16, true);
  dv.setUint16(20, FORMAT_PCM, true);
  dv.setUint16(22, channels, true);
  dv.setUint32(24, sampleRate, true);
  dv.setUint32(28, sampleRate * 2 * channels, true);
  dv.setUint16(32, 2 * channels, true);
  dv.setUint16(34, 16, true);
  ascii(36, 'data');
  dv.setUint32(40, dataBytes, true);
  if (samples instanceof Int16Array) {
    for (let i = 0; i < samples.length; i++) dv.setInt16(44 + 2 * i, samples[i], true);
    return out;
  }
  for (let i = 0; i < samples.length; i++) {
    const v = Math.round(Math.max(-1, Math.min(32767 / 32768, samples[i])) * 32768);
    dv.setInt16(44 + 2 * i, v, true);
  }
  return out;
}
