/**
 * Text detokenizer for Moshi's inner-monologue text stream.
 *
 * Reads a SentencePiece model (`tokenizer_spm_32k_3.model` for Moshi: the serialized
 * `sentencepiece.ModelProto` protobuf) with `@mlc-ai/web-tokenizers` (the SentencePiece C++ library
 * compiled to WebAssembly, the tokenizer that web-llm ships; it runs in Node, on a page and in a
 * module Worker, with the wasm embedded in the package: no network). The pieces are read once at
 * load time into a JS array, so decoding afterwards is plain string work.
 *
 * Turning a text token into text follows the official clients exactly
 * (moshi/moshi/server.py `ServerState.handle_chat` / `recv_loop`, and
 * moshi/moshi/run_inference.py `InferenceState.run`):
 *
 * ```python
 * if text_token not in (0, 3):
 *     _text = text_tokenizer.id_to_piece(text_token).replace("▁", " ")
 * ```
 *
 * id 3 is the text padding token (`existing_text_padding_id` in the LM config) and id 0 is the
 * end-of-padding token; both are never printed. Every other id prints its raw piece with U+2581
 * (`▁`, SentencePiece's word-boundary marker) turned into a space. Control pieces (`<s>`, `</s>`)
 * and byte-fallback pieces (`<0x0A>`) print literally, as they do in the official clients.
 */

/** Ids the official clients never print: 0 (end of padding) and 3 (text padding). */
export const MOSHI_SKIPPED_TEXT_IDS: readonly number[] = [0, 3];

/** SentencePiece's word-boundary marker (U+2581 LOWER ONE EIGHTH BLOCK). */
export const SPM_SPACE = '\u2581';

/** A tokenizer file that cannot be read, or a token id the tokenizer does not know. */
export class TokenizerError extends Error {
  override name = 'TokenizerError';
}

/** Options of {@link TextTokenizer.fromBytes}. */
export interface TextTokenizerOptions {
  /** Ids that decode to nothing (default {@link MOSHI_SKIPPED_TEXT_IDS}). */
  skipIds?: readonly number[];
  /** Name of the model file, used in error messages. */
  source?: string;
}

/** The subset of `@mlc-ai/web-tokenizers`' `Tokenizer` this module uses. */
interface WasmTokenizer {
  getVocabSize(): number;
  idToToken(id: number): string;
  dispose(): void;
}
interface WasmTokenizerClass {
  fromSentencePiece(model: ArrayBuffer | Uint8Array): Promise<WasmTokenizer>;
}

let tokenizerClass: Promise<WasmTokenizerClass> | null = null;

/**
 * Loads the wasm tokenizer library once. Its bundle is a UMD file inside a `"type": "module"`
 * package: bundlers (Vite, esbuild) see CommonJS and give named exports, while Node's native ESM
 * loader runs the UMD's global branch, which sets `globalThis.tokenizers` and reads the CommonJS
 * globals `require` and `__filename` while it initialises. In Node those two are provided for the
 * duration of the first load and removed again afterwards.
 */
function loadTokenizerClass(): Promise<WasmTokenizerClass> {
  tokenizerClass ??= (async () => {
    const g = globalThis as Record<string, unknown>;
    const isNode = typeof document === 'undefined' && typeof location === 'undefined' &&
      typeof process !== 'undefined' && typeof process.versions?.node === 'string';
    const shimmed: string[] = [];
    try {
      if (isNode && typeof g['require'] === 'undefined') {
        const nodeModule = 'node:module';
        const { createRequire } = (await import(/* @vite-ignore */ nodeModule)) as typeof import('node:module');
        g['require'] = createRequire(import.meta.url);
        g['__filename'] = new URL(import.meta.url).pathname;
        shimmed.push('require', '__filename');
      }
      const mod = (await import('@mlc-ai/web-tokenizers')) as Record<string, unknown>;
      const fromDefault = (mod['default'] as Record<string, unknown> | undefined)?.['Tokenizer'];
      const fromGlobal = (g['tokenizers'] as Record<string, unknown> | undefined)?.['Tokenizer'];
      const cls = (mod['Tokenizer'] ?? fromDefault ?? fromGlobal) as WasmTokenizerClass | undefined;
      if (!cls || typeof cls.fromSentencePiece !== 'function') {
        throw new TokenizerError('@mlc-ai/web-tokenizers loaded but exposes no Tokenizer.fromSentencePiece (unsupported version?)');
      }
      // The library initialises its wasm module on first use; do that while the shims exist.
      await cls.fromSentencePiece(new Uint8Array(0)).then((t) => t.dispose(), () => undefined);
      return cls;
    } finally {
      for (const k of shimmed) delete g[k];
    }
  })();
  tokenizerClass.catch(() => { tokenizerClass = null; });
  return tokenizerClass;
}

/**
 * A SentencePiece vocabulary used to turn Moshi's text tokens into text.
 *
 * Errors: {@link TokenizerError} for a file that is not a SentencePiece model, and for ids that are
 * not integers in `[0, vocabSize)`.
 */
export class TextTokenizer {
  private readonly skip: ReadonlySet<number>;

  private constructor(
    /** Raw pieces by id (`id_to_piece`), `▁` kept. */
    private readonly pieces: readonly string[],
    skipIds: readonly number[],
    /** Where the model came from (error messages). */
    readonly source: string,
  ) {
    this.skip = new Set(skipIds);
  }

  /**
   * Parses a SentencePiece `.model` file (serialized ModelProto).
   * @param bytes the file's bytes.
   * @throws TokenizerError when the bytes hold no SentencePiece vocabulary, or when a skipped id is
   *   outside it.
   */
  static async fromBytes(bytes: Uint8Array, options: TextTokenizerOptions = {}): Promise<TextTokenizer> {
    const source = options.source ?? '<bytes>';
    const skipIds = options.skipIds ?? MOSHI_SKIPPED_TEXT_IDS;
    if (!(bytes instanceof Uint8Array) || bytes.byteLength === 0) {
      throw new TokenizerError(`tokenizer ${source}: empty file, expected a SentencePiece .model (serialized ModelProto)`);
    }
    const cls = await loadTokenizerClass();
    let wasm: WasmTokenizer;
    try {
      // Copy: the library may keep or detach the buffer it is given.
      wasm = await cls.fromSentencePiece(bytes.slice());
    } catch (e) {
      throw new TokenizerError(`tokenizer ${source}: not a readable SentencePiece model (${e instanceof Error ? e.message : String(e)})`);
    }
    try {
      const n = wasm.getVocabSize();
      if (!Number.isInteger(n) || n <= 0) {
        throw new TokenizerError(`tokenizer ${source}: no vocabulary found (${bytes.byteLength} bytes); is this a SentencePiece .model file?`);
      }
      const pieces = new Array<string>(n);
      for (let id = 0; id < n; id++) {
        const p = wasm.idToToken(id);
        if (p.length === 0) throw new TokenizerError(`tokenizer ${source}: piece ${id} of ${n} is empty; the file is not a valid SentencePiece model`);
        pieces[id] = p;
      }
      for (const s of skipIds) {
        if (!Number.isInteger(s) || s < 0 || s >= n) {
          throw new TokenizerError(`tokenizer ${source}: skipped id ${s} is outside the vocabulary [0, ${n})`);
        }
      }
      return new TextTokenizer(pieces, skipIds, source);
    } finally {
      wasm.dispose();
    }
  }

  /** Number of pieces (`GetPieceSize()`); valid ids are `[0, vocabSize)`. */
  get vocabSize(): number {
    return this.pieces.length;
  }

  /** Ids that decode to nothing. */
  get skipIds(): number[] {
    return [...this.skip];
  }

  /**
   * The raw piece of `id`, as SentencePiece's `id_to_piece` (with `▁`).
   * @throws TokenizerError when `id` is not an integer in `[0, vocabSize)`.
   */
  piece(id: number): string {
    if (!Number.isInteger(id) || id < 0 || id >= this.pieces.length) {
      throw new TokenizerError(`text token id ${id} is outside the tokenizer's vocabulary [0, ${this.pieces.length}) (${this.source}); the LM's text_card must not exceed the tokenizer's size`);
    }
    return this.pieces[id]!;
  }

  /**
   * The text one token adds to the transcript, exactly as server.py prints it: `null` for a skipped
   * id (padding 3, end of padding 0), otherwise the piece with every `▁` replaced by a space.
   * @throws TokenizerError for an id outside the vocabulary.
   */
  decodePiece(id: number): string | null {
    const p = this.piece(id);
    if (this.skip.has(id)) return null;
    return p.split(SPM_SPACE).join(' ');
  }

  /**
   * The transcript of a token stream: the concatenation of {@link decodePiece} over `ids`, skipped
   * ids dropped. A word-initial piece starts with a space, so the transcript usually starts with one
   * (server.py streams it that way); `decode(ids).trimStart()` equals SentencePiece's own
   * `decode_ids` for plain text pieces.
   * @throws TokenizerError for an id outside the vocabulary (naming its position).
   */
  decode(ids: Iterable<number>): string {
    let out = '';
    let i = 0;
    for (const id of ids) {
      let t: string | null;
      try {
        t = this.decodePiece(id);
      } catch (e) {
        if (e instanceof TokenizerError) throw new TokenizerError(`token ${i}: ${e.message}`);
        throw e;
      }
      if (t !== null) out += t;
      i++;
    }
    return out;
  }
}
