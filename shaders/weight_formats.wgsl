// weight_formats: element e of a weight matrix [N, K] (or embedding table [V, D]) in any stored
// format, as f32. Prepended by the TS side (src/kernels/weight_format.ts) to the shaders that read
// weights (shaders/linear.wgsl, shaders/matvec_quant.wgsl, shaders/embedding.wgsl); the including
// shader declares the storage arrays `w`, `wscale`, `wbias` (array<u32>; `wscale` / `wbias` are
// bound to any buffer and never read for the unquantized formats).
// DTYPE (override):
//   0 f32: w[e] bitcast
//   1 f16, 2 bf16: packed two per u32, element 2i in the low 16 bits of word i
//   3 q8 (PyTorch bitsandbytes int8, moshi/utils/quantize.py): w = int8 CB packed four per word
//     (element e in byte e mod 4 of word e / 4), wscale = f32 SCB [N]; W = CB · SCB[n] / 127
//   4 affine (MLX nn.quantize): w = u32 words, element i of a row in bits BITS·(i mod 32/BITS)
//     of word i / (32/BITS) (rows start on a word: K·BITS % 32 == 0); wscale, wbias = bf16 [N, K/GS]
//     packed two per u32; W = scale · q + bias in f32 (group g = k / GS; K % GS == 0, so the
//     group of flat element e is e / GS)
override DTYPE: u32 = 0;
override BITS: u32 = 4;   // affine bits: 2, 4 or 8
override GS: u32 = 32;    // affine group size: 32, 64 or 128

/** bf16 element i of a packed array (two per u32, element 2j in the low half of word j). */
fn wscale_bf16(i: u32) -> f32 { return bitcast<f32>(((wscale[i >> 1u] >> ((i & 1u) * 16u)) & 0xffffu) << 16u); }
fn wbias_bf16(i: u32) -> f32 { return bitcast<f32>(((wbias[i >> 1u] >> ((i & 1u) * 16u)) & 0xffffu) << 16u); }

/** Sign-extended int8 byte `b` (0..255) of a q8 weight as f32. */
fn i8_value(b: u32) -> f32 { return f32(bitcast<i32>(b << 24u) >> 24u); }

/** Weight element e (flat row-major index into [N, K]) as f32; k = K, the row length. */
fn weight_at(e: u32, k: u32) -> f32 {
  if (DTYPE == 0u) { return bitcast<f32>(w[e]); }
  if (DTYPE == 1u || DTYPE == 2u) {
    let half = (w[e >> 1u] >> ((e & 1u) * 16u)) & 0xffffu;
    if (DTYPE == 1u) { return unpack2x16float(half).x; }
    return bitcast<f32>(half << 16u);
  }
  if (DTYPE == 3u) {
    let q = i8_value((w[e >> 2u] >> ((e & 3u) * 8u)) & 0xffu);
    return q * bitcast<f32>(wscale[e / k]) / 127.0;
  }
  let epw = 32u / BITS;
  let q = (w[e / epw] >> (BITS * (e % epw))) & ((1u << BITS) - 1u);
  let g = e / GS;
  return wscale_bf16(g) * f32(q) + wbias_bf16(g);
}

/** Elements per stored u32 word of `w`: 1 (f32), 2 (f16, bf16), 4 (q8), 32 / BITS (affine); rows start on a word when K is a multiple. */
fn weight_epw() -> u32 {
  if (DTYPE == 0u) { return 1u; }
  if (DTYPE <= 2u) { return 2u; }
  if (DTYPE == 3u) { return 4u; }
  return 32u / BITS;
}

/**
 * Element i (< weight_epw()) of the stored word `word` = w[e / weight_epw()] as f32, where e is that
 * element's flat index into [N, K] and k = K: weight_at(e, k) without re-reading the word, for
 * kernels that walk a row word by word (shaders/layer_block.wgsl). An affine word lies in one group.
 */
fn weight_in_word(word: u32, i: u32, e: u32, k: u32) -> f32 {
  if (DTYPE == 0u) { return bitcast<f32>(word); }
  if (DTYPE == 1u) { return unpack2x16float(word)[i]; }
  if (DTYPE == 2u) { return bitcast<f32>(((word >> (16u * i)) & 0xffffu) << 16u); }
  if (DTYPE == 3u) { return i8_value((word >> (8u * i)) & 0xffu) * bitcast<f32>(wscale[e / k]) / 127.0; }
  let q = (word >> (BITS * i)) & ((1u << BITS) - 1u);
  let g = e / GS;
  return wscale_bf16(g) * f32(q) + wbias_bf16(g);
}
