// softmax: row-wise, max-subtracted, f32:  y[r, j] = exp(x[r, j] - max_j x[r, :]) / Σ_j exp(x[r, j] - max)
// x, y: [M, N] f32, contiguous. One workgroup of WG threads (a power of two) per row, three passes
// over the row (max, sum, write) with workgroup-memory reductions; rows folded over x/y
// workgroups (row = wid.x + wid.y · nwg.x). A row of all -inf gives NaN, as torch does.
override WG: u32 = 256;

struct Params { m: u32, n: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;   // uniform per workgroup
  let n = params.n;
  let live = row < params.m;
  let base = min(row, params.m - 1u) * n;

  var mx = -3.402823e38;
  for (var i = lid; i < n; i += WG) { mx = max(mx, x[base + i]); }
  red[lid] = mx;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s) { red[lid] = max(red[lid], red[lid + s]); }
    workgroupBarrier();
  }
  let rmax = red[0];
  workgroupBarrier();

  var sum = 0.0;
  for (var i = lid; i < n; i += WG) { sum += exp(x[base + i] - rmax); }
  red[lid] = sum;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s) { red[lid] = red[lid] + red[lid + s]; }
    workgroupBarrier();
  }
  let inv = 1.0 / red[0];

  if (live) {
    for (var i = lid; i < n; i += WG) { y[base + i] = exp(x[base + i] - rmax) * inv; }
  }
}
