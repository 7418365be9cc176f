// matvec_fuse: what the matvec kernels fuse around the product, appended by src/kernels/linear.ts
// to a matvec body (shaders/matvec.wgsl, shaders/matvec_quant.wgsl), before the reduction. The
// body provides the bindings x (array<vec4<f32>>), alpha (array<vec4<f32>>), y (array<f32>),
// `params.n` (weight rows N), `params.k` (K), `params.eps`, and `row_value(row, sum)` (the row's
// scale and bias); it reads x only through `xin` (each x element once per thread's share) and
// `xpeek` (again, no side effect).
//   NORM 0: y = W · x
//   NORM 1: y = W · rms_norm(x) without the normalized copy (moshi/modules/transformer.py
//           `_rms_norm`, f32: x · alpha / sqrt(eps + mean(x²))): the product runs over alpha ⊙ x,
//           Σx² rides along in the same loads, and the row sums are scaled by 1/sqrt(eps + Σx²/K)
//   OUT 0: y[n] = v                      y [N]
//   OUT 1: y[n] = y[n] + s[n] · v        the residual add (x + linear(...)); y [N] is the residual,
//           s = aux (LayerScale, [N]) when has_scale = 1, else 1
//   OUT 2: y[j] = silu(v[j]) · v[H + j]  moshi/modules/gating.py (x.view(2, -1); act(x[0]) · x[1]),
//           H = N / 2 (N % 4 == 0): a workgroup takes rows 2g, 2g+1, H+2g, H+2g+1; y [H]
//   OUT 3: y[n] = v, then RoPE on rows n < rope_rows (the q and k of an attention in_proj: heads of
//           head_dim, interleaved pairs (2i, 2i+1) of a head rotated by θ = aux[i] · f32(offset) (aux =
//           the RoPE frequencies [head_dim / 2]),
//           exactly shaders/rope.wgsl's arithmetic; sincos() from shaders/sincos.wgsl); rows 2p, 2p+1
//           are in one workgroup since row groups start at multiples of 4 and head_dim is even
// where v = row_value(row, sum · scale). Dispatch: ceil(N/4) workgroups in every mode.
override NORM: u32 = 0;
override OUT: u32 = 0;
const ROWS: u32 = 4u; // weight rows per workgroup (one vec4 of partial sums per thread)

var<private> sumsq: f32 = 0.0;

/** x's vec4 i as the product reads it (alpha ⊙ x under NORM 1, Σx² accumulated). */
fn xin(i: u32) -> vec4<f32> {
  let v = x[i];
  if (NORM != 0u) {
    sumsq += dot(v, v);
    return v * alpha[i];
  }
  return v;
}

/** xin without accumulating Σx² (a second read of the same elements). */
fn xpeek(i: u32) -> vec4<f32> {
  if (NORM != 0u) { return x[i] * alpha[i]; }
  return x[i];
}

/** The 4 weight rows of workgroup g (rows past N clamped to N-1; their results are discarded). */
fn rows_of(g: u32) -> vec4<u32> {
  let n = params.n;
  if (OUT == 2u) {
    let h = n / 2u;
    return vec4<u32>(2u * g, 2u * g + 1u, h + 2u * g, h + 2u * g + 1u);
  }
  let r0 = g * ROWS;
  return vec4<u32>(r0, min(r0 + 1u, n - 1u), min(r0 + 2u, n - 1u), min(r0 + 3u, n - 1u));
}

/** Thread t < 4 of workgroup g writes its output from the reduced row sums s and Σx² ss. */
fn finish(g: u32, t: u32, s: vec4<f32>, ss: f32) {
  var scale = 1.0;
  if (NORM != 0u) { scale = 1.0 / sqrt(params.eps + ss / f32(params.k)); }
  let r = rows_of(g);
  if (OUT == 2u) {
    if (t < 2u) {
      let a = row_value(r[t], s[t] * scale);
      let c = row_value(r[t + 2u], s[t + 2u] * scale);
      y[2u * g + t] = a / (1.0 + exp(-a)) * c;
    }
    return;
  }
  let row = g * ROWS + t;
  if (t < ROWS && row < params.n) {
    let v = row_value(row, s[t] * scale);
    if (OUT == 1u) {
      var ls = 1.0;
      if (params.has_scale != 0u) { ls = aux[row]; }
      y[row] = y[row] + ls * v;
    } else if (OUT == 3u && row < params.rope_rows) {
      // The pair (row & ~1, row | 1): both values are in this workgroup's sums.
      let p = t & ~1u;
      let re = row_value(row & ~1u, s[p] * scale);
      let im = row_value(row | 1u, s[p + 1u] * scale);
      let i = (row % params.head_dim) / 2u;
      let sc = sincos(aux[i] * f32(params.offset));
      if ((t & 1u) == 0u) { y[row] = re * sc.y - im * sc.x; } else { y[row] = re * sc.x + im * sc.y; }
    } else {
      y[row] = v;
    }
  }
}
