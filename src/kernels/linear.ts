import linearSource from '../../shaders/linear.wgsl?raw';
import matvecSource from '../../shaders/matvec.wgsl?raw';
import { type DType, Kernel, ParamsLayout, type Recorder, ShapeError, type Tensor, expectShape, grid1d } from '../gpu/index.ts';

/** Override constant DTYPE of shaders/linear.wgsl and shaders/matvec.wgsl. */
const DTYPE_CODE: Partial<Record<DType, number>> = { f32: 0, f16: 1, bf16: 2 };
/** Weight dtypes `linear` accepts. */
export const LINEAR_WEIGHT_DTYPES: readonly DType[] = ['f32', 'f16', 'bf16'];

const BINDINGS = [
  { name: 'x', access: 'read' },
  { name: 'w', access: 'read' },
  { name: 'b', access: 'read' },
  { name: 'y', access: 'read_write' },
] as const;

const linearParams = new ParamsLayout([
  ['m', 'u32'],
  ['n', 'u32'],
  ['k', 'u32'],
  ['has_bias', 'u32'],
]);
/** Tiled register-blocked GEMM (M > 1), shaders/linear.wgsl `matmul`. */
export const matmulKernel = new Kernel('linear.matmul', linearSource, BINDINGS, linearParams, 'matmul');
/** Generic scalar matrix-vector product (M = 1, any K), shaders/linear.wgsl `matvec`. */
export const matvecGenericKernel = new Kernel('linear.matvec', linearSource, BINDINGS, linearParams, 'matvec');
/** Vectorized matrix-vector product (M = 1, 16-byte aligned rows), shaders/matvec.wgsl. */
export const matvecKernel = new Kernel('matvec', matvecSource, BINDINGS, new ParamsLayout([
  ['n', 'u32'],
  ['kw', 'u32'],
  ['has_bias', 'u32'],
  ['pad', 'u32'],
]));

const MATVEC_WG = 64;
const MATVEC_ROWS = 4; // const ROWS in shaders/matvec.wgsl
const GENERIC_ROWS = 4; // const ROWS in shaders/linear.wgsl
const TILE = 32; // y tile of one matmul workgroup in shaders/linear.wgsl

/** Which shader path `linear` takes for these sizes (exposed for tests and benchmarks). */
export function linearPath(m: number, k: number, dtype: DType): 'matvec' | 'matvec-generic' | 'matmul' {
  if (m !== 1) return 'matmul';
  return k % (dtype === 'f32' ? 4 : 8) === 0 ? 'matvec' : 'matvec-generic';
}

/**
 * y = x · Wᵀ + b (torch.nn.functional.linear; nn.Linear in moshi/modules/transformer.py,
 * gating.py, lm.py). f32 accumulation.
 * - x: f32 [..., K] (rank ≥ 1; M = product of the leading dims, 1 for a vector)
 * - w: [N, K] in PyTorch layout, f32 | f16 | bf16 (halves packed two per u32)
 * - b: f32 [N] or null
 * - y: f32 [..., N] with the same leading dims as x
 * M = 1 takes the vectorized matvec (shaders/matvec.wgsl) when K % 8 == 0 (halves) / K % 4 == 0
 * (f32), else the generic matvec; M > 1 takes the tiled matmul (shaders/linear.wgsl).
 * x and y must be distinct buffers. Throws ShapeError naming the tensor whose shape or dtype is wrong.
 */
export function linear(rec: Recorder, x: Tensor, w: Tensor, b: Tensor | null, y: Tensor): void {
  expectShape('linear weight', w, [-1, -1], LINEAR_WEIGHT_DTYPES);
  const [n, k] = w.shape;
  if (x.rank < 1) throw new ShapeError(`linear input '${x.label}' must have rank ≥ 1, got a scalar`);
  expectShape('linear input', x, [...x.shape.slice(0, -1), k], ['f32']);
  expectShape('linear output', y, [...x.shape.slice(0, -1), n], ['f32']);
  if (b) expectShape('linear bias', b, [n], ['f32']);
  if (x.buffer === y.buffer) throw new ShapeError(`linear: input '${x.label}' and output '${y.label}' share a buffer; use distinct tensors`);
  if (k === 0) throw new ShapeError(`linear weight '${w.label}' has K = 0 (shape [${w.shape.join(', ')}])`);
  const m = x.numel / k;
  if (m === 0 || n === 0) return;
  const dtype = DTYPE_CODE[w.dtype] as number;
  const has_bias = b ? 1 : 0;
  const bias = b ?? x; // bound but never read when has_bias = 0
  const path = linearPath(m, k, w.dtype);
  if (path === 'matvec') {
    rec.dispatch(matvecKernel, {
      buffers: [x, w, bias, y],
      params: { n, kw: k / (w.dtype === 'f32' ? 4 : 8), has_bias, pad: 0 },
      constants: { DTYPE: dtype, WG: MATVEC_WG },
      workgroups: grid1d(n, MATVEC_ROWS),
      label: `linear.matvec.${w.dtype}`,
    });
  } else if (path === 'matvec-generic') {
    rec.dispatch(matvecGenericKernel, {
      buffers: [x, w, bias, y],
      params: { m, n, k, has_bias },
      constants: { DTYPE: dtype, WG: MATVEC_WG },
      workgroups: grid1d(n, GENERIC_ROWS),
      label: `linear.matvec_generic.${w.dtype}`,
    });
  } else {
    const gx = Math.ceil(n / TILE);
    const gy = Math.ceil(m / TILE);
    if (gx > 65535 || gy > 65535) throw new ShapeError(`linear: M=${m}, N=${n} exceed the 65535×32 tile grid`);
    rec.dispatch(matmulKernel, {
      buffers: [x, w, bias, y],
      params: { m, n, k, has_bias },
      constants: { DTYPE: dtype },
      workgroups: [gx, gy],
      label: `linear.matmul.${w.dtype}`,
    });
  }
}
