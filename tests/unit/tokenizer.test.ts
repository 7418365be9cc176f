import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MOSHI_SKIPPED_TEXT_IDS, TextTokenizer, TokenizerError } from '../../src/text/tokenizer.ts';

// Fixture made by tests/fixtures/spm/regenerate.sh with Debian's spm_train/spm_encode/spm_decode:
// a 300-piece unigram model with Moshi's special-id layout (0 <unk>, 1 <s>, 2 </s>, 3 <pad>) and
// the spm_encode ids/pieces and spm_decode text of the sentences in sentences.txt.
const DIR = new URL('../fixtures/spm/', import.meta.url);
const MODEL = new Uint8Array(readFileSync(new URL('tiny_unigram.model', DIR)));
interface Expected {
  piece_size: number;
  sentences: { text: string; ids: number[]; pieces: string[]; spm_decode: string }[];
}
const EXPECTED = JSON.parse(readFileSync(new URL('expected.json', DIR), 'utf8')) as Expected;
const VOCAB = readFileSync(new URL('tiny_unigram.vocab', DIR), 'utf8').trimEnd().split('\n').map((l) => l.split('\t')[0]!);

const load = () => TextTokenizer.fromBytes(MODEL, { source: 'tiny_unigram.model' });

describe('TextTokenizer (SentencePiece .model)', () => {
  it('reads every piece of the model, as spm_train listed them in the .vocab file', async () => {
    const tok = await load();
    expect(tok.vocabSize).toBe(EXPECTED.piece_size);
    expect(VOCAB.length).toBe(EXPECTED.piece_size);
    for (let id = 0; id < VOCAB.length; id++) expect(tok.piece(id), `piece ${id}`).toBe(VOCAB[id]);
    expect([tok.piece(0), tok.piece(1), tok.piece(2), tok.piece(3)]).toEqual(['<unk>', '<s>', '</s>', '<pad>']);
  });

  it('round-trips spm_encode ids of known sentences to their text', async () => {
    const tok = await load();
    expect(EXPECTED.sentences.length).toBeGreaterThan(3);
    for (const s of EXPECTED.sentences) {
      // server.py streams ' Hello there, ...': the first piece carries the word-boundary space.
      expect(tok.decode(s.ids)).toBe(` ${s.text}`);
      expect(tok.decode(s.ids).trimStart()).toBe(s.spm_decode);
      // Piece by piece: spm_encode's pieces with ▁ -> ' ', the way server.py prints each token.
      expect(s.ids.map((id) => tok.decodePiece(id))).toEqual(s.pieces.map((p) => p.replaceAll('\u2581', ' ')));
    }
  });

  it('skips ids 0 and 3 the way server.py does, and prints other control pieces literally', async () => {
    const tok = await load();
    expect(MOSHI_SKIPPED_TEXT_IDS).toEqual([0, 3]);
    expect(tok.decodePiece(0)).toBeNull();
    expect(tok.decodePiece(3)).toBeNull();
    expect(tok.decodePiece(1)).toBe('<s>');
    expect(tok.decodePiece(2)).toBe('</s>');
    const s = EXPECTED.sentences[0]!;
    // A Moshi-like stream: padding (3) between words, end-of-padding (0) before each word.
    const stream = s.ids.flatMap((id) => [3, 3, 0, id]);
    expect(tok.decode([3, 3, ...stream, 3])).toBe(` ${s.text}`);
    // Custom skip list.
    const noSkip = await TextTokenizer.fromBytes(MODEL, { skipIds: [] });
    expect(noSkip.decodePiece(3)).toBe('<pad>');
  });

  it('throws a clear error for unknown ids and unreadable files', async () => {
    const tok = await load();
    expect(() => tok.decodePiece(300)).toThrow(TokenizerError);
    expect(() => tok.decodePiece(300)).toThrow(/text token id 300 is outside the tokenizer's vocabulary \[0, 300\) \(tiny_unigram\.model\)/);
    expect(() => tok.decodePiece(-1)).toThrow(/-1 is outside/);
    expect(() => tok.decodePiece(1.5)).toThrow(/1\.5 is outside/);
    expect(() => tok.decode([85, 114, 32000])).toThrow(/token 2: text token id 32000 is outside/);
    await expect(TextTokenizer.fromBytes(new Uint8Array(0), { source: 'empty.model' })).rejects.toThrow(/empty\.model: empty file/);
    await expect(TextTokenizer.fromBytes(new Uint8Array([1, 2, 3, 4, 5]), { source: 'junk.model' })).rejects.toThrow(TokenizerError);
    await expect(TextTokenizer.fromBytes(new TextEncoder().encode('{"not": "a model"}'), { source: 'x.json' })).rejects.toThrow(/x\.json/);
    await expect(TextTokenizer.fromBytes(MODEL, { skipIds: [0, 300] })).rejects.toThrow(/skipped id 300 is outside the vocabulary \[0, 300\)/);
  });
});
