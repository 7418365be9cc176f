// elementwise: small f32 ops of the transformer, chosen at compile time by OP (one thread per
// output element; flat index i folded over x/y workgroups, i = gid.x + gid.y · nwg.x · WG):
//   0 add:        y[i] += a[i]                              y, a: [n]            (b not read)
//   1 add_scaled: y[i] += b[i % cols] · a[i]                y, a: [rows, cols], b: [cols]
//                 (LayerScale residual: x + scale ⊙ update, moshi/modules/transformer.py)
//   2 gated_silu: y[r, j] = silu(a[r, j]) · a[r, cols + j]  a: [rows, 2·cols], y: [rows, cols]
//                 (moshi/modules/gating.py: x.view(B, T, 2, -1); act(x[..., 0, :]) * x[..., 1, :])
//   3 transpose:  y[c, r] = a[r, c]                         a: [rows, cols], y: [cols, rows]
// n = number of elements of y. All f32, contiguous; y never aliases a or b.
override OP: u32 = 0;
override WG: u32 = 64;

struct Params { n: u32, rows: u32, cols: u32 }

@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= params.n) { return; }
  let cols = params.cols;
  switch OP {
    case 0u: { y[i] = y[i] + a[i]; }
    case 1u: { y[i] = y[i] + b[i % cols] * a[i]; }
    case 2u: {
      let r = i / cols;
      let j = i - r * cols;
      let g = a[r * 2u * cols + j];
      y[i] = g / (1.0 + exp(-g)) * a[r * 2u * cols + cols + j];
    }
    default: {
      // i indexes y [cols, rows]: c = i / rows, r = i % rows.
      let rows = params.rows;
      let c = i / rows;
      let r = i - c * rows;
      y[i] = a[r * cols + c];
    }
  }
}
