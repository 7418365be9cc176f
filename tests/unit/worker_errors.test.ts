// Errors across a comlink boundary (src/engine/worker_errors.ts): a ModelSourceError thrown on one
// side of a MessageChannel arrives with its name, message and fields (code, status, file); a
// thrown non-Error value arrives as itself; fields that cannot be sent (functions, objects) are left out.
import { afterAll, expect, it } from 'vitest';
import * as Comlink from 'comlink';
import { errorFields, installErrorTransfer } from '../../src/engine/worker_errors.ts';
import { ModelSourceError } from '../../src/weights/verify.ts';

installErrorTransfer();
const { port1, port2 } = new MessageChannel();
afterAll(() => {
  port1.close();
  port2.close();
});
class Odd extends Error {
  override name = 'OddError';
  readonly fn = () => 1;
  readonly nested = { a: 1 };
  readonly count = 3;
}
const api = {
  fail404: (): void => {
    throw new ModelSourceError('model.safetensors', 'HTTP 404 Not Found', 404);
  },
  failNetwork: (): void => {
    throw new ModelSourceError('mimi.safetensors', 'could not fetch', undefined, 'network');
  },
  failValue: (): void => {
    throw 'plain string';
  },
  failOdd: (): void => {
    throw new Odd('odd');
  },
};
Comlink.expose(api, port1 as unknown as Comlink.Endpoint);
const remote = Comlink.wrap<typeof api>(port2 as unknown as Comlink.Endpoint);

it('a ModelSourceError keeps its name, message, code, status and file', async () => {
  const e = await remote.fail404().then(() => null, (x: unknown) => x as Error & Record<string, unknown>);
  expect(e).toBeInstanceOf(Error);
  expect(e!.name).toBe('ModelSourceError');
  expect(e!.message).toBe('model.safetensors: HTTP 404 Not Found');
  expect({ code: e!.code, status: e!.status, file: e!.file }).toEqual({ code: 'http', status: 404, file: 'model.safetensors' });
  const n = await remote.failNetwork().then(() => null, (x: unknown) => x as Error & Record<string, unknown>);
  expect(n!.code).toBe('network');
  expect(n!.status).toBeUndefined();
});

it('a thrown non-Error arrives as itself; fields that cannot travel are left out', async () => {
  await expect(remote.failValue()).rejects.toBe('plain string');
  const o = await remote.failOdd().then(() => null, (x: unknown) => x as Error & Record<string, unknown>);
  expect(o!.name).toBe('OddError');
  expect(o!.count).toBe(3);
  expect('fn' in o! || 'nested' in o!).toBe(false);
  expect(Object.keys(errorFields(new Odd('x'))).sort()).toEqual(['count', 'message', 'name', 'stack']);
});
