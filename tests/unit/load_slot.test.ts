import { describe, expect, it } from 'vitest';
import { LoadSlot } from '../../src/engine/load_slot.ts';

/** A fake model that records its disposal (stands for the GPU buffers of a loaded engine). */
class Model {
  disposed = 0;
  constructor(readonly name: string, private readonly log: string[]) {}
  dispose(): void {
    this.disposed++;
    this.log.push(`dispose ${this.name}`);
  }
}

/** A load that waits until released or aborted. */
function gate() {
  let release!: () => void;
  const p = new Promise<void>((ok) => (release = ok));
  return { p, release };
}

describe('LoadSlot: one model load at a time', () => {
  it('a second load disposes the first model before it starts', async () => {
    const log: string[] = [];
    const slot = new LoadSlot<Model>();
    const a = await slot.run(async () => (log.push('load a'), new Model('a', log)));
    expect(slot.current).toBe(a);
    const b = await slot.run(async () => (log.push('load b'), new Model('b', log)));
    expect(log).toEqual(['load a', 'dispose a', 'load b']);
    expect(slot.current).toBe(b);
    expect(a.disposed).toBe(1);
    expect(b.disposed).toBe(0);
  });

  it('cancel aborts the running load: its signal fires, its late result is disposed, AbortError', async () => {
    const log: string[] = [];
    const slot = new LoadSlot<Model>();
    const g = gate();
    let seen: AbortSignal | null = null;
    const p = slot.run(async (signal) => {
      seen = signal;
      await g.p; // a load that ignores the signal (e.g. a GPU upload step)
      return new Model('late', log);
    });
    await Promise.resolve();
    expect(slot.loading).toBe(true);
    expect(slot.cancel()).toBe(true);
    expect(seen!.aborted).toBe(true);
    g.release();
    await expect(p).rejects.toMatchObject({ name: 'AbortError' });
    expect(log).toEqual(['dispose late']);
    expect(slot.current).toBeNull();
    expect(slot.loading).toBe(false);
    expect(slot.cancel()).toBe(false);
  });

  it('overlapping loads: the older is aborted and awaited, only the newest becomes current, nothing leaks', async () => {
    const log: string[] = [];
    const slot = new LoadSlot<Model>();
    await slot.run(async () => new Model('old', log));
    const ga = gate();
    const pa = slot.run(async (signal) => {
      log.push('start a');
      await Promise.race([ga.p, new Promise((_, rej) => signal.addEventListener('abort', () => rej(signal.reason)))]);
      return new Model('a', log);
    });
    await Promise.resolve();
    const pb = slot.run(async () => (log.push('start b'), new Model('b', log)));
    const pc = slot.run(async () => (log.push('start c'), new Model('c', log)));
    await expect(pa).rejects.toMatchObject({ name: 'AbortError' });
    await expect(pb).rejects.toMatchObject({ name: 'AbortError' }); // superseded before it started
    const c = await pc;
    expect(slot.current).toBe(c);
    expect(log).toEqual(['dispose old', 'start a', 'start c']);
  });

  it('a failing load leaves no model, and the next load still runs', async () => {
    const log: string[] = [];
    const slot = new LoadSlot<Model>();
    await slot.run(async () => new Model('x', log));
    await expect(slot.run(async () => { throw new Error('bad weights'); })).rejects.toThrow('bad weights');
    expect(slot.current).toBeNull();
    expect(log).toEqual(['dispose x']);
    const y = await slot.run(async () => new Model('y', log));
    expect(slot.current).toBe(y);
    await slot.dispose();
    expect(y.disposed).toBe(1);
    expect(slot.current).toBeNull();
  });
});
