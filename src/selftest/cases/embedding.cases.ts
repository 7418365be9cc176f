import { bf16BitsToF32, roundThrough } from '../../gpu/dtype.ts';
import { embedding, stackTables } from '../../kernels/embedding.ts';
import { assertClose } from '../check.ts';
import { type KernelCase, type KernelSuite, sentinelTensor } from '../kernel_case.ts';
import { Tensor } from '../../gpu/index.ts';
import { Rng } from '../rng.ts';

type TDType = 'f32' | 'f16' | 'bf16';

/**
 * CPU reference of `embedding`: y (copy of y0) with rows m < rows set to (or incremented by)
 * table[ids[off+m], :], zeros for ids < 0 or ≥ V. table [V,D] as f32 values, y0 [M',D].
 */
export function embeddingRef(table: Float32Array, v: number, d: number, ids: Int32Array, off: number, rows: number, y0: Float32Array, accumulate: boolean): Float32Array {
  const y = Float32Array.from(y0);
  for (let m = 0; m < rows; m++) {
    const id = ids[off + m];
    for (let j = 0; j < d; j++) {
      const e = id >= 0 && id < v ? table[id * d + j] : 0;
      y[m * d + j] = (accumulate ? y[m * d + j] : 0) + e;
    }
  }
  return y;
}

interface EmbCfg {
  dtype: TDType;
  v: number;
  d: number;
  /** Rows of y; `rows` of them are written. */
  outRows: number;
  rows?: number;
  idsOffset?: number;
  accumulate: boolean;
  /** Shape of the ids tensor (its numel ≥ idsOffset + rows). */
  idsShape: number[];
}

/** ids with valid, -1, other negative and too-large values mixed in. */
function makeIds(rng: Rng, n: number, v: number): Int32Array {
  const ids = new Int32Array(n);
  const odd = [-1, -7, v, v + 3, 2147483647, -2147483648];
  for (let i = 0; i < n; i++) ids[i] = i % 4 === 3 ? odd[rng.int(odd.length)] : rng.int(v);
  return ids;
}

function embCase(cfg: EmbCfg, seed: number): KernelCase {
  const rows = cfg.rows ?? cfg.outRows;
  const off = cfg.idsOffset ?? 0;
  const nIds = cfg.idsShape.reduce((a, b) => a * b, 1);
  return {
    name: `${cfg.dtype} V=${cfg.v} D=${cfg.d} rows=${rows}/${cfg.outRows} off=${off} ids[${cfg.idsShape.join(',')}]${cfg.accumulate ? ' accumulate' : ''}`,
    setup(ctx) {
      const rng = new Rng(seed);
      const tv = roundThrough(rng.normals(cfg.v * cfg.d), cfg.dtype);
      const idv = makeIds(rng, nIds, cfg.v);
      const table = ctx.upload(tv, [cfg.v, cfg.d], cfg.dtype, 'table');
      const ids = ctx.upload(idv, cfg.idsShape, 'i32', 'ids');
      let y0: Float32Array;
      let y;
      if (cfg.accumulate) {
        y0 = rng.normals(cfg.outRows * cfg.d);
        y = ctx.upload(y0, [cfg.outRows, cfg.d], 'f32', 'y');
      } else {
        y = sentinelTensor(ctx, [cfg.outRows, cfg.d], 'y');
        y0 = new Float32Array(cfg.outRows * cfg.d).fill(-12345.678);
      }
      const yt = y;
      return {
        record: (rec) => embedding(rec, table, ids, yt, { accumulate: cfg.accumulate, idsOffset: cfg.idsOffset, rows: cfg.rows }),
        async check(c) {
          const got = await c.readF32(yt);
          const want = embeddingRef(tv, cfg.v, cfg.d, idv, off, rows, y0, cfg.accumulate);
          assertClose(`embedding ${cfg.dtype} V=${cfg.v} D=${cfg.d}`, got, want, { atol: 0, rtol: 1e-6, shape: [cfg.outRows, cfg.d] });
        },
        flops: cfg.accumulate ? rows * cfg.d : 0,
        bytes: rows * cfg.d * ((cfg.dtype === 'f32' ? 4 : 2) + (cfg.accumulate ? 8 : 4)) + rows * 4,
        tensors: [table, ids, yt],
      };
    },
  };
}

const DTYPES: TDType[] = ['f32', 'f16', 'bf16'];
const tests: KernelCase[] = [];
let seed = 1;
for (const [di, dtype] of DTYPES.entries()) {
  for (const [v, d, m] of [
    [1, 1, 1],
    [3, 17, 3],
    [17, 63, 17],
    [315, 3, 63],
    [2179, 315, 17],
    [63, 2179, 3],
  ] as const) {
    for (const accumulate of [false, true]) {
      tests.push(embCase({ dtype, v, d, outRows: m, accumulate, idsShape: [m] }, seed++));
    }
  }
  // idsOffset into a [K, T]-shaped id buffer (one codebook's column), fewer rows than y has.
  tests.push(embCase({ dtype, v: 17, d: 63, outRows: 5, rows: 3, idsOffset: 7 + di, accumulate: di !== 1, idsShape: [4, 5] }, seed++));
  // Odd D with an odd start row: half-precision rows straddle u32 words.
  tests.push(embCase({ dtype, v: 2049, d: 7, outRows: 1, idsOffset: 2, accumulate: false, idsShape: [3] }, seed++));
}
// More than 65535 workgroups of 256: the flat grid folds into y.
tests.push(embCase({ dtype: 'bf16', v: 3, d: 17, outRows: 1_000_003, accumulate: true, idsShape: [1_000_003] }, seed++));

/**
 * Stacked tables (stackTables + embedding's `stacked`): T tables [R, D] of `dtype` copied into one
 * [T·R, D]; tables first .. first + n - 1 looked up for `rows` output rows in ONE dispatch (ids
 * row-major [rows, n], odd ids mixed in: -1, negatives, R and beyond, which must give zeros, not
 * the next table's rows). Compared exactly (atol 0) with the CPU's f32 sum in table order, and
 * with the same lookups made one dispatch per original table (today's path): the same bits.
 */
function stackedCase(dtype: TDType, T: number, R: number, d: number, rows: number, first: number, n: number, accumulate: boolean, seed: number): KernelCase {
  return {
    name: `stacked ${dtype} ${T}×[${R}, ${d}] tables ${first}..${first + n - 1} rows=${rows}${accumulate ? ' accumulate' : ''}`,
    async setup(ctx) {
      const rng = new Rng(seed);
      const tv = Array.from({ length: T }, () => roundThrough(rng.normals(R * d), dtype));
      const tables = tv.map((v, t) => ctx.upload(v, [R, d], dtype, `table ${t}`));
      const stack = await stackTables(ctx, tables, 'stack');
      if (!stack) throw new Error(`stackTables refused ${T} ${dtype} tables [${R}, ${d}]`);
      if (stack.shape[0] !== T * R || stack.shape[1] !== d) throw new Error(`stack shape [${stack.shape}]`);
      const idv = makeIds(rng, rows * n, R);
      const ids = ctx.upload(idv, [rows * n], 'i32', 'ids');
      const y0 = accumulate ? rng.normals(rows * d) : new Float32Array(rows * d);
      const y = ctx.upload(y0, [rows, d], 'f32', 'y');
      const yRef = ctx.upload(y0, [rows, d], 'f32', 'y (one dispatch per table)');
      return {
        record(rec) {
          embedding(rec, stack, ids, y, { accumulate, stacked: { tables: n, firstTable: first, tableRows: R } });
          // Today's path: one accumulating dispatch per table and output row (row windows of yRef: rows > 1 need d·4 a multiple of 256).
          for (let m = 0; m < rows; m++) {
            for (let j = 0; j < n; j++) embedding(rec, tables[first + j], ids, new Tensor(yRef.buffer, [1, d], 'f32', `yRef[${m}]`, yRef.byteOffset + m * d * 4, false), { accumulate: accumulate || j > 0, idsOffset: m * n + j, rows: 1 });
          }
        },
        async check(c) {
          const got = await c.readF32(y);
          const want = new Float32Array(rows * d);
          for (let m = 0; m < rows; m++) {
            for (let e = 0; e < d; e++) {
              let acc = accumulate ? y0[m * d + e] : 0;
              for (let j = 0; j < n; j++) {
                const id = idv[m * n + j];
                if (id >= 0 && id < R) acc = Math.fround(acc + tv[first + j][id * d + e]);
              }
              want[m * d + e] = acc;
            }
          }
          assertClose(`stacked embedding ${dtype}`, got, want, { atol: 0, rtol: 0, shape: [rows, d] });
          assertClose(`stacked vs per-table embedding ${dtype}`, got, await c.readF32(yRef), { atol: 0, rtol: 0, shape: [rows, d] });
        },
        flops: rows * n * d,
        bytes: rows * n * d * (dtype === 'f32' ? 4 : 2) + rows * d * 8,
        tensors: [...tables, stack, ids, y, yRef],
      };
    },
  };
}
for (const [i, dtype] of DTYPES.entries()) {
  tests.push(stackedCase(dtype, 3, 17, dtype === 'f32' ? 63 : 62, 1, 0, 3, false, 900 + i));
  tests.push(stackedCase(dtype, 5, 65, 64, 3, 1, 3, true, 910 + i));
  tests.push(stackedCase(dtype, 16, 2049, 17 + (dtype === 'f32' ? 0 : 1), 1, 0, 16, true, 920 + i));
}
tests.push(stackedCase('bf16', 2, 4, 315, 1, 0, 2, false, 930));

/** A real-size lookup: `lookups` rows of one [V, D] bf16 table accumulated into y [1, D] (ids valid). */
function benchCase(label: string, v: number, d: number, lookups: number): KernelCase {
  return {
    name: `${label}: bf16 V=${v} D=${d} ×${lookups}`,
    setup(ctx) {
      const rng = new Rng(v + d + lookups);
      const words = new Uint32Array(Math.ceil((v * d) / 2));
      for (let i = 0; i < words.length; i++) words[i] = ((rng.next() * 4294967296) >>> 0) & 0x3fff3fff; // |x| < 2
      const idv = new Int32Array(lookups);
      for (let i = 0; i < lookups; i++) idv[i] = rng.int(v);
      const table = ctx.upload(words, [v, d], 'bf16', 'table');
      const ids = ctx.upload(idv, [lookups], 'i32', 'ids');
      const y = sentinelTensor(ctx, [1, d], 'y');
      return {
        record(rec) {
          for (let i = 0; i < lookups; i++) embedding(rec, table, ids, y, { accumulate: i > 0, idsOffset: i, rows: 1 });
        },
        async check(c) {
          const got = await c.readF32(y);
          const want = new Float32Array(d);
          for (let i = 0; i < lookups; i++) {
            for (let j = 0; j < d; j++) {
              const e = idv[i] * d + j;
              want[j] += bf16BitsToF32((words[e >> 1] >>> ((e & 1) * 16)) & 0xffff);
            }
          }
          assertClose(`${label} embedding`, got, want, { atol: 1e-6, rtol: 1e-6, shape: [1, d] });
        },
        flops: (lookups - 1) * d,
        bytes: lookups * d * 2 + d * 4 * (2 * lookups - 1) + lookups * 4,
        tensors: [table, ids, y],
      };
    },
  };
}

export const embeddingSuite: KernelSuite = {
  name: 'embedding',
  tests,
  bench: [
    // Moshi 7B: text_emb [32001, 4096]; 8 audio codebook embeddings [2049, 4096] summed into the input.
    benchCase('moshi text', 32001, 4096, 1),
    benchCase('moshi audio', 2049, 4096, 8),
    // Depformer: per-step text/audio embedding into dim 1024.
    benchCase('depformer', 2049, 1024, 1),
  ],
};
