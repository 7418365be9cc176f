// norm: row-wise normalization of x [M, D] f32 into y [M, D] f32, chosen at compile time by OP:
//   0 LayerNorm (torch.nn.LayerNorm, biased variance):
//       mean = Σx/D, var = Σ(x-mean)²/D, y = (x - mean) · (1/sqrt(var + eps)) · w + b
//   1 RMSNorm (moshi/modules/transformer.py `_rms_norm`, computed in f32):
//       var = eps + Σx²/D, y = x · (w · (1/sqrt(var)))        (w = alpha; b is not read)
// w, b: [D] f32. One workgroup of WG threads per row (WG a power of two), two-pass reductions
// in workgroup memory; rows folded over x/y workgroups (row = wid.x + wid.y · nwg.x).
override OP: u32 = 0;
override WG: u32 = 256;

struct Params { m: u32, d: u32, eps: f32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

var<workgroup> red: array<f32, WG>;

// Sum of `v` over the workgroup (every thread gets the result).
fn wg_sum(lid: u32, v: f32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s) { red[lid] = red[lid] + red[lid + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;   // uniform per workgroup
  let d = params.d;
  // Rows past m (fold padding) still run the reductions so barriers stay uniform; they write nothing.
  let live = row < params.m;
  let base = min(row, params.m - 1u) * d;
  let fd = f32(d);
  switch OP {
    case 0u: {
      var s = 0.0;
      for (var i = lid; i < d; i += WG) { s += x[base + i]; }
      let mean = wg_sum(lid, s) / fd;
      var q = 0.0;
      for (var i = lid; i < d; i += WG) { let c = x[base + i] - mean; q += c * c; }
      let rstd = 1.0 / sqrt(wg_sum(lid, q) / fd + params.eps);
      if (live) {
        for (var i = lid; i < d; i += WG) { y[base + i] = (x[base + i] - mean) * rstd * w[i] + b[i]; }
      }
    }
    default: {
      var q = 0.0;
      for (var i = lid; i < d; i += WG) { let v = x[base + i]; q += v * v; }
      let rs = 1.0 / sqrt(params.eps + wg_sum(lid, q) / fd);
      if (live) {
        for (var i = lid; i < d; i += WG) { y[base + i] = x[base + i] * (w[i] * rs); }
      }
    }
  }
}
