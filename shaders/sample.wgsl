// sample: tokens per row of logits, as moshi/utils/sampling.py `sample_token` does.
//   temp <= 0 (greedy):  out[r] = argmax_v logits[r, v], ties to the lowest index (torch.argmax).
//   temp > 0:            S = the top_k largest logits of the row (top_k = 0 or >= V: the whole row;
//                        ties at the k-th value go to the lowest indices), then for draw d
//                        out[r, d] = argmax_{v in S} logits[r, v] / temp - log(E_{d,v}),  E ~ Exp(1)
//                      = a draw from softmax(logits / temp) restricted to S (the exponential race of
//                        `multinomial(..., num_samples=1)`: argmax p_v / E_v; ties to the lower index).
//   E_{d,v} = -log(u), u uniform in (0, 1) from a counter-based hash of (seed, draw + d, r, v): the
//   same seed and draw give the same token; another draw index gives an independent one.
// Draws: `draws` tokens per row (1 for the model; many for statistical tests, which then pay the
//   top-k threshold search once per row, not once per draw). Draw d of row r uses the random
//   stream of draw index draw + d, and goes to out[out_offset + r * draws + d].
// Finiteness (check_bit != 0; src/kernels/finite.ts's finite_check folded into the read of the
//   logits that sampling does anyway): flags[0] |= check_bit when any logit of any row is NaN or
//   ±Infinity (is_nonfinite, shaders/nonfinite.wgsl, appended by src/kernels/sample.ts). flags is
//   never cleared here; with check_bit = 0 it is not touched (the caller binds any u32 word).
// Layouts: logits f32, row r at logits[logits_offset + r * v .. + v); out i32 as above; flags u32.
// Dispatch: one workgroup of WG threads per row (workgroups = [rows, 1, 1]); thread t owns the
// contiguous chunk [t * ceil(V / WG), (t + 1) * ceil(V / WG)) of its row.
// Top-k: the k-th largest value is found by a 32-round bitwise search over order-preserving u32 keys
// (each round counts keys >= a candidate); elements equal to it are admitted in index order.
// When 0 < k <= KMAX the k admitted logits are compacted, in index order, into workgroup memory
// (value / temp, index) and each draw is one thread's serial race over those k; otherwise (whole
// row, k > KMAX, greedy) every draw is a race over the chunks with a tree reduction.
override WG: u32 = 256;
const KMAX: u32 = 256u;

// Embedding (EMB 1, one row, one draw; the depformer's next input, moshi/models/lm.py
//   `forward_depformer`: depformer_in(h) + depformer_emb[k](token)): after the draw, the
//   workgroup adds row `token` of the table w [emb_v, emb_d] (any format of
//   shaders/weight_formats.wgsl, prepended by src/kernels/sample.ts) to
//   emb_y[emb_offset .. + emb_d): emb_y[emb_offset + d] += w[token, d] (a token outside
//   [0, emb_v) adds nothing, as shaders/embedding.wgsl). EMB 0 binds any buffers there, never read.
override EMB: u32 = 0;

struct Params { v: u32, rows: u32, top_k: u32, temp: f32, seed: u32, draw: u32, logits_offset: u32, out_offset: u32, draws: u32, check_bit: u32, emb_d: u32, emb_v: u32, emb_offset: u32 }

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<i32>;
@group(0) @binding(2) var<storage, read_write> flags: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read> w: array<u32>;
@group(0) @binding(4) var<storage, read> wscale: array<u32>;
@group(0) @binding(5) var<storage, read> wbias: array<u32>;
@group(0) @binding(6) var<storage, read_write> emb_y: array<f32>;
@group(0) @binding(7) var<uniform> params: Params;

var<workgroup> emb_tok: u32;

/** EMB 1: emb_y[emb_offset + d] += w[emb_tok, d] by the WG threads (t); call in uniform control flow after emb_tok is set. */
fn add_embedding(t: u32) {
  if (EMB == 0u) { return; }
  workgroupBarrier();
  let tok = emb_tok;
  let dd = params.emb_d;
  if (tok < params.emb_v) {
    for (var d = t; d < dd; d += WG) { emb_y[params.emb_offset + d] += weight_at(tok * dd + d, dd); }
  }
}

var<workgroup> counter: atomic<u32>;
var<workgroup> scan: array<u32, WG>;
var<workgroup> best_val: array<f32, WG>;
var<workgroup> best_idx: array<u32, WG>;
var<workgroup> sel_val: array<f32, KMAX>;
var<workgroup> sel_idx: array<u32, KMAX>;

// Order-preserving map f32 -> u32 (larger float, larger key).
fn key_of(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  return select(b ^ 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

fn hash(a: u32) -> u32 {
  // lowbias32 (Chris Wellons): full-avalanche 32-bit integer hash.
  var x = a;
  x = x ^ (x >> 16u);
  x = x * 0x7feb352du;
  x = x ^ (x >> 15u);
  x = x * 0x846ca68bu;
  x = x ^ (x >> 16u);
  return x;
}

// The per-(draw, row) part of the random stream: hash(hash(hash(seed) ^ draw) ^ r).
fn stream(draw: u32, r: u32) -> u32 {
  return hash(hash(hash(params.seed) ^ draw) ^ r);
}

// Uniform in (0, 1) for element v of a stream: 24 random bits, centred in their bucket so that 0
// and 1 never occur.
fn uniform01(s: u32, v: u32) -> f32 {
  let h = hash(s ^ v);
  return (f32(h >> 8u) + 0.5) * (1.0 / 16777216.0);
}

// Is (a, ia) a better pick than (b, ib)? Larger value, then lower index.
fn better(a: f32, ia: u32, b: f32, ib: u32) -> bool {
  return a > b || (a == b && ia < ib);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let r = wid.x;
  let t = lid.x;
  let n = params.v;
  let base = params.logits_offset + r * n;
  let chunk = (n + WG - 1u) / WG;
  let lo = min(t * chunk, n);
  let hi = min(lo + chunk, n);
  let sampling = params.temp > 0.0;
  let k = select(n, min(params.top_k, n), params.top_k > 0u);
  let use_top_k = sampling && k < n;
  let compact = use_top_k && k <= KMAX;
  let draws = params.draws;
  let out_base = params.out_offset + r * draws;

  // Finiteness of this thread's chunk (no barrier: only the flag word is shared).
  if (params.check_bit != 0u) {
    var bad = false;
    for (var i = lo; i < hi; i++) {
      bad = bad || is_nonfinite(logits[base + i]);
    }
    if (bad) { atomicOr(&flags[0], params.check_bit); }
  }

  // Top-k threshold: thr = the k-th largest key of the row.
  var thr = 0u;
  var need = 0u;
  var before = 0u;
  if (use_top_k) {
    for (var bit = 31i; bit >= 0i; bit--) {
      let cand = thr | (1u << u32(bit));
      var c = 0u;
      for (var i = lo; i < hi; i++) {
        c += select(0u, 1u, key_of(logits[base + i]) >= cand);
      }
      if (t == 0u) { atomicStore(&counter, 0u); }
      workgroupBarrier();
      atomicAdd(&counter, c);
      workgroupBarrier();
      let total = atomicLoad(&counter);
      workgroupBarrier();
      if (total >= k) { thr = cand; }
    }
    // Elements strictly above thr are all in; `need` ties at thr are admitted in index order.
    var above = 0u;
    var equal = 0u;
    for (var i = lo; i < hi; i++) {
      let kk = key_of(logits[base + i]);
      above += select(0u, 1u, kk > thr);
      equal += select(0u, 1u, kk == thr);
    }
    if (t == 0u) { atomicStore(&counter, 0u); }
    scan[t] = equal;
    workgroupBarrier();
    atomicAdd(&counter, above);
    if (t == 0u) {
      var acc = 0u;
      for (var j = 0u; j < WG; j++) {
        let e = scan[j];
        scan[j] = acc;
        acc += e;
      }
    }
    workgroupBarrier();
    need = k - atomicLoad(&counter);
    before = scan[t];
  }

  if (compact) {
    // Compact the k admitted logits (divided by temp) into sel_*, in index order.
    var mine = 0u;
    var ties = before;
    for (var i = lo; i < hi; i++) {
      let kk = key_of(logits[base + i]);
      var admit = kk > thr;
      if (kk == thr) {
        admit = ties < need;
        ties += 1u;
      }
      mine += select(0u, 1u, admit);
    }
    workgroupBarrier(); // everyone has read scan[t] (before) above
    scan[t] = mine;
    workgroupBarrier();
    if (t == 0u) {
      var acc = 0u;
      for (var j = 0u; j < WG; j++) {
        let e = scan[j];
        scan[j] = acc;
        acc += e;
      }
    }
    workgroupBarrier();
    var at = scan[t];
    ties = before;
    for (var i = lo; i < hi; i++) {
      let x = logits[base + i];
      let kk = key_of(x);
      var admit = kk > thr;
      if (kk == thr) {
        admit = ties < need;
        ties += 1u;
      }
      if (admit) {
        sel_val[at] = x / params.temp;
        sel_idx[at] = i;
        at += 1u;
      }
    }
    workgroupBarrier();
    // One thread per draw: the race over the k admitted logits (index order: strict > keeps the lowest index on ties).
    for (var d = t; d < draws; d += WG) {
      let s = stream(params.draw + d, r);
      var bv = 0.0;
      var bi = 0xffffffffu;
      for (var j = 0u; j < k; j++) {
        let i = sel_idx[j];
        let score = sel_val[j] - log(-log(uniform01(s, i)));
        if (bi == 0xffffffffu || score > bv) {
          bv = score;
          bi = i;
        }
      }
      if (r < params.rows) { out[out_base + d] = i32(bi); }
      if (d == 0u) { emb_tok = bi; }
    }
    add_embedding(t);
    return;
  }

  // Chunked race: per draw, every thread's best over its chunk, then a tree reduction.
  for (var d = 0u; d < draws; d++) {
    let s = stream(params.draw + d, r);
    var bv = 0.0;  // unused until bi is set
    var bi = 0xffffffffu;
    var ties_seen = before;
    for (var i = lo; i < hi; i++) {
      let x = logits[base + i];
      var score = x;
      if (sampling) {
        if (use_top_k) {
          let kk = key_of(x);
          if (kk < thr) { continue; }
          if (kk == thr) {
            let admitted = ties_seen < need;
            ties_seen += 1u;
            if (!admitted) { continue; }
          }
        }
        score = x / params.temp - log(-log(uniform01(s, i)));
      }
      if (bi == 0xffffffffu || better(score, i, bv, bi)) {
        bv = score;
        bi = i;
      }
    }
    workgroupBarrier(); // the previous draw's reduction is read out
    best_val[t] = bv;
    best_idx[t] = bi;
    workgroupBarrier();
    for (var st = WG / 2u; st > 0u; st = st / 2u) {
      if (t < st) {
        let ov = best_val[t + st];
        let oi = best_idx[t + st];
        if (oi != 0xffffffffu && (best_idx[t] == 0xffffffffu || better(ov, oi, best_val[t], best_idx[t]))) {
          best_val[t] = ov;
          best_idx[t] = oi;
        }
      }
      workgroupBarrier();
    }
    if (t == 0u && r < params.rows) {
      out[out_base + d] = i32(best_idx[0]);
    }
  }
  if (EMB != 0u) {
    if (t == 0u) { emb_tok = best_idx[0]; }
    add_embedding(t);
  }
}
