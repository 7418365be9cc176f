import { TextTokenizer, TokenizerError } from '../../../src/text/tokenizer.ts';
import modelUrl from '../../fixtures/spm/tiny_unigram.model?url';
import expectedUrl from '../../fixtures/spm/expected.json?url';
import type { BrowserSuite } from '../protocol.ts';

interface Expected {
  piece_size: number;
  sentences: { text: string; ids: number[]; pieces: string[] }[];
}

function check(cond: boolean, what: string): void {
  if (!cond) throw new Error(what);
}

/** The SentencePiece detokenizer inside a module Worker (the library's wasm runs there too). */
const run: BrowserSuite = async (_ctx, env) => {
  const [model, expected] = await Promise.all([
    fetch(modelUrl).then((r) => r.arrayBuffer()),
    fetch(expectedUrl).then((r) => r.json() as Promise<Expected>),
  ]);
  const tok = await TextTokenizer.fromBytes(new Uint8Array(model), { source: 'tiny_unigram.model' });
  await env.test('reads the vocabulary', async () => {
    check(tok.vocabSize === expected.piece_size, `vocabSize ${tok.vocabSize} != ${expected.piece_size}`);
    check(tok.piece(3) === '<pad>', `piece 3 is '${tok.piece(3)}'`);
  });
  await env.test('decodes spm_encode ids like server.py', async () => {
    for (const s of expected.sentences) {
      const got = tok.decode([3, 0, ...s.ids, 3]);
      check(got === ` ${s.text}`, `decode gave '${got}', expected ' ${s.text}'`);
    }
  });
  await env.test('unknown id throws TokenizerError', async () => {
    let err: unknown = null;
    try { tok.decodePiece(expected.piece_size); } catch (e) { err = e; }
    check(err instanceof TokenizerError && /outside the tokenizer's vocabulary/.test(err.message), `got ${String(err)}`);
  });
};
export default run;
