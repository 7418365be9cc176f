import linearSource from '../../shaders/linear.wgsl?raw';
import matvecSource from '../../shaders/matvec.wgsl?raw';
import matvecSubgroupSource from '../../shaders/matvec_subgroup.wgsl?raw';
import { type DType, type GpuContext, Kernel, ParamsLayout, type Recorder, ShapeError, type Tensor, expectShape, grid1d } from '../gpu/index.ts';

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

/**
 * Subgroup variant of the vectorized matvec (shaders/matvec_subgroup.wgsl appended to
 * shaders/matvec.wgsl under `enable subgroups;`); compiled only on devices with `subgroups`.
 */
export const matvecSubgroupKernel = new Kernel('matvec.subgroup', `enable subgroups;\n${matvecSource}\n${matvecSubgroupSource}`, BINDINGS, matvecKernel.params, 'main_subgroup');

const fixedSubgroupSize = new WeakMap<GpuContext, number>();
/**
 * The device's subgroup size when the `subgroups` feature is enabled and the adapter reports one
 * fixed size (subgroupMinSize == subgroupMaxSize, a power of two in 4..128), else 0. The subgroup
 * matvec relies on a workgroup of that many threads being exactly one subgroup.
 */
export function fixedSubgroupSizeOf(ctx: GpuContext): number {
  let s = fixedSubgroupSize.get(ctx);
  if (s === undefined) {
    const info = ctx.device.adapterInfo as GPUAdapterInfo | undefined;
    const lo = info?.subgroupMinSize ?? 0;
    const hi = info?.subgroupMaxSize ?? 0;
    s = ctx.hasSubgroups && lo === hi && lo >= 4 && lo <= 128 && (lo & (lo - 1)) === 0 ? lo : 0;
    fixedSubgroupSize.set(ctx, s);
  }
  return s;
}

export interface LinearOptions {
  /** Allow the subgroup matvec where the device supports it (default true); false forces the
   *  workgroup-memory reduction (tests and benchmarks compare both). */
  subgroups?: boolean;
}

const MATVEC_WG = 64;
const MATVEC_ROWS = 4; // const ROWS in shaders/matvec.wgsl
const GENERIC_ROWS = 4; // const ROWS in shaders/linear.wgsl
const TILE = 32; // y tile of one matmul workgroup in shaders/linear.wgsl

/** Which shader path `linear` takes for these sizes (exposed for tests and benchmarks). */
export function linearPath(m: number, k: number, dtype: DType): 'matvec' | 'matvec-generic' | 'matmul' {
  // 'matvec' runs as matvec_subgroup.wgsl on devices with a fixed subgroup size (see fixedSubgroupSizeOf).
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
 * M = 1 takes the vectorized matvec (shaders/matvec.wgsl; its subgroup variant
 * shaders/matvec_subgroup.wgsl where the device has `subgroups` with one fixed subgroup size) when
 * K % 8 == 0 (halves) / K % 4 == 0 (f32), else the generic matvec; M > 1 takes the
 * register-blocked matmul (shaders/linear.wgsl).
 * x and y must be distinct buffers. Throws ShapeError naming the tensor whose shape or dtype is wrong.
 */
export function linear(rec: Recorder, x: Tensor, w: Tensor, b: Tensor | null, y: Tensor, opts: LinearOptions = {}): void {
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
  const sg = opts.subgroups === false ? 0 : fixedSubgroupSizeOf(rec.ctx);
  if (path === 'matvec' && sg) {
    rec.dispatch(matvecSubgroupKernel, {
      buffers: [x, w, bias, y],
      params: { n, kw: k / (w.dtype === 'f32' ? 4 : 8), has_bias, pad: 0 },
      constants: { DTYPE: dtype, SG: sg },
      workgroups: grid1d(n, MATVEC_ROWS),
      label: `linear.matvec_sg.${w.dtype}`,
    });
  } else if (path === 'matvec') {
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
