/**
 * Errors across the engine Worker boundary with their fields: comlink's own 'throw' handler keeps
 * only `name`, `message` and `stack`, so the page lost e.g. ModelSourceError's `code` ('http',
 * 'network', 'integrity', …), `status` and `file`, and had to guess from the message. This handler
 * (installed on both sides: workers/engine_worker.ts and src/ui/engine_client.ts) also carries
 * every own enumerable field of the error whose value is a string, a finite number, a boolean or
 * null; the page gets an Error with the same name, message and those fields.
 */
import * as Comlink from 'comlink';

type Field = string | number | boolean | null;

/** The fields of `e` that survive the boundary: name, message, stack and its plain own fields. */
export function errorFields(e: Error): Record<string, Field> {
  const out: Record<string, Field> = { name: e.name, message: e.message };
  if (typeof e.stack === 'string') out.stack = e.stack;
  for (const [k, v] of Object.entries(e)) {
    if (v === null || typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))) out[k] = v;
  }
  return out;
}

/** Replaces comlink's 'throw' transfer handler by one that keeps errorFields. Idempotent. */
export function installErrorTransfer(): void {
  const base = Comlink.transferHandlers.get('throw');
  if (!base || (base as { solace?: boolean }).solace) return;
  const handler: Comlink.TransferHandler<{ value: unknown }, { isError: boolean; value: unknown }> & { solace: true } = {
    solace: true,
    canHandle: (v): v is { value: unknown } => base.canHandle(v),
    serialize: ({ value }) => [value instanceof Error ? { isError: true, value: errorFields(value) } : { isError: false, value }, []],
    deserialize: (s) => {
      if (!s.isError) throw s.value;
      const f = s.value as Record<string, Field>;
      throw Object.assign(new Error(String(f.message ?? '')), f);
    },
  };
  Comlink.transferHandlers.set('throw', handler as Comlink.TransferHandler<unknown, unknown>);
}
