// Generates the PWA icons in public/icons/ (PNG, RGBA) with no image library: a sky-blue disc on
// a slate background with five "voice level" bars, 4x4 supersampled. Run: node scripts/make_icons.mjs
import { mkdirSync, writeFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';

const CRC_TABLE = new Uint32Array(256).map((_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'ascii');
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}
function png(size, rgba) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // RGBA
  const raw = Buffer.alloc(size * (4 * size + 1));
  for (let y = 0; y < size; y++) {
    raw[y * (4 * size + 1)] = 0; // filter: none
    rgba.copy(raw, y * (4 * size + 1) + 1, y * 4 * size, (y + 1) * 4 * size);
  }
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw, { level: 9 })), chunk('IEND', Buffer.alloc(0))]);
}

const BG = [15, 23, 42]; // #0f172a
const FG = [56, 189, 248]; // #38bdf8
const BARS = [0.08, 0.17, 0.25, 0.14, 0.06]; // half-heights, fraction of the icon

/** Colour at (u, v) in [0,1]²; `scale` shrinks the motif (maskable icons keep a safe zone). */
function shade(u, v, scale) {
  const x = (u - 0.5) / scale;
  const y = (v - 0.5) / scale;
  if (Math.hypot(x, y) > 0.36) return BG;
  for (let i = 0; i < BARS.length; i++) {
    const cx = (i - 2) * 0.1;
    const hw = 0.028;
    const hh = BARS[i];
    // Rounded bar: a capsule of radius hw around the segment x = cx, |y| ≤ hh - hw.
    const dy = Math.max(0, Math.abs(y) - (hh - hw));
    if (Math.hypot(x - cx, dy) <= hw) return BG;
  }
  return FG;
}

function render(size, scale) {
  const rgba = Buffer.alloc(size * size * 4);
  const S = 4;
  for (let py = 0; py < size; py++) {
    for (let px = 0; px < size; px++) {
      const acc = [0, 0, 0];
      for (let sy = 0; sy < S; sy++) {
        for (let sx = 0; sx < S; sx++) {
          const c = shade((px + (sx + 0.5) / S) / size, (py + (sy + 0.5) / S) / size, scale);
          acc[0] += c[0];
          acc[1] += c[1];
          acc[2] += c[2];
        }
      }
      const o = 4 * (py * size + px);
      rgba[o] = Math.round(acc[0] / (S * S));
      rgba[o + 1] = Math.round(acc[1] / (S * S));
      rgba[o + 2] = Math.round(acc[2] / (S * S));
      rgba[o + 3] = 255;
    }
  }
  return png(size, rgba);
}

const dir = new URL('../public/icons/', import.meta.url);
mkdirSync(dir, { recursive: true });
for (const [name, size, scale] of [
  ['icon-192.png', 192, 1.25],
  ['icon-512.png', 512, 1.25],
  ['icon-maskable-512.png', 512, 1.0],
  ['apple-touch-icon.png', 180, 1.2],
]) {
  writeFileSync(new URL(name, dir), render(size, scale));
  console.log(`public/icons/${name} ${size}x${size}`);
}
