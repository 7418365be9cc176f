// public/manifest.webmanifest: names the app, PNG icons of the declared sizes. (The service
// worker, workers/sw.ts, is tested over a real build in tests/browser/offline.browser.test.ts.)
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../harness/browser.ts';

describe('PWA', () => {
  it('manifest names the app and lists PNG icons that exist with the declared sizes', () => {
    const m = JSON.parse(readFileSync(resolve(ROOT, 'public/manifest.webmanifest'), 'utf8'));
    expect(m.name).toBe('SolaceLive');
    expect(m.start_url).toBeTruthy();
    expect(m.display).toBe('standalone');
    for (const icon of m.icons as { src: string; sizes: string; type: string }[]) {
      const png = readFileSync(resolve(ROOT, 'public', icon.src));
      expect(png.subarray(1, 4).toString('ascii')).toBe('PNG');
      const [w, h] = icon.sizes.split('x').map(Number);
      expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([w, h]);
      expect(icon.type).toBe('image/png');
    }
    expect(m.icons.some((i: { purpose?: string }) => i.purpose === 'maskable')).toBe(true);
  });
});
