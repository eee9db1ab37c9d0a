// A second, independent implementation of the checks on a `matmul_i8` result, for the browser:
// the generator of A and B, the result tree (root and proofs), Freivalds' check over GF(2^61 - 1)
// and the wrong element's proof material. Written from the specification in
// workload/src/matmul.rs and workload/src/merkle.rs (not from their code) and held to
// testdata/matmul_vectors.json by console/test/verify.mjs: the tenant's browser need not trust
// the provider, the keeper or our Rust to know whether a product is right.

import { type Hex, encodeAbiParameters, hexToBytes, keccak256, toBytes } from "viem";

/** Bytes per leaf of a result tree. */
export const LEAF_BYTES = 1024;
/** Elements of C (big-endian int32) per leaf. */
export const LEAF_ELEMS = LEAF_BYTES / 4;
/** The field of Freivalds' check: 2^61 - 1. */
export const P = (1n << 61n) - 1n;

const keccak = (b: Uint8Array): Uint8Array => keccak256(b, "bytes");

/** keccak256(0x00 ‖ bytes). */
export function leafHash(bytes: Uint8Array): Uint8Array {
  const buf = new Uint8Array(1 + bytes.length);
  buf.set(bytes, 1);
  return keccak(buf);
}

/** keccak256(0x01 ‖ left ‖ right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  const buf = new Uint8Array(65);
  buf[0] = 1;
  buf.set(left, 1);
  buf.set(right, 33);
  return keccak(buf);
}

/** The levels of the positional tree over `result`, leaves first, padded with bytes32(0). */
function levels(result: Uint8Array): Uint8Array[][] {
  const count = Math.max(1, Math.ceil(result.length / LEAF_BYTES));
  let width = 1;
  while (width < count) width *= 2;
  const leaves: Uint8Array[] = [];
  for (let i = 0; i < width; i++) {
    leaves.push(i < count ? leafHash(result.subarray(i * LEAF_BYTES, (i + 1) * LEAF_BYTES)) : new Uint8Array(32));
  }
  const out = [leaves];
  while (out[out.length - 1].length > 1) {
    const below = out[out.length - 1];
    const up: Uint8Array[] = [];
    for (let i = 0; i < below.length; i += 2) up.push(nodeHash(below[i], below[i + 1]));
    out.push(up);
  }
  return out;
}

/** The root of the result tree over `result`. */
export function resultRoot(result: Uint8Array): Hex {
  const l = levels(result);
  return toHex32(l[l.length - 1][0]);
}

/** Leaf `index`'s proof: its siblings, bottom-up. */
export function resultProof(result: Uint8Array, index: number): Hex[] {
  const l = levels(result);
  const proof: Hex[] = [];
  let i = index;
  for (let d = 0; d < l.length - 1; d++) {
    proof.push(toHex32(l[d][i ^ 1]));
    i >>= 1;
  }
  return proof;
}

function toHex32(b: Uint8Array): Hex {
  return `0x${Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("")}` as Hex;
}

/** `count` generator bytes from element `start` of stream `tag` ('A' or 'B'), as int8. */
export function generate(seed: Hex, tag: "A" | "B", start: number, count: number): Int8Array {
  const out = new Int8Array(count);
  const buf = new Uint8Array(41);
  buf.set(hexToBytes(seed), 0);
  buf[32] = tag.charCodeAt(0);
  const view = new DataView(buf.buffer);
  let x = start;
  let o = 0;
  const end = start + count;
  while (x < end) {
    const block = Math.floor(x / 32);
    view.setBigUint64(33, BigInt(block), false);
    const h = keccak(buf);
    const to = Math.min(end - block * 32, 32);
    for (let b = x % 32; b < to; b++) out[o++] = (h[b] << 24) >> 24;
    x = block * 32 + to;
  }
  return out;
}

/** C as committed (row-major big-endian int32s), decoded. */
export function decodeC(bytes: Uint8Array): Int32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const c = new Int32Array(bytes.length / 4);
  for (let i = 0; i < c.length; i++) c[i] = view.getInt32(i * 4, false);
  return c;
}

/** The order's spec hash of a seeded job: keccak256(abi.encode(TYPEHASH, seed, m, k, n)). */
export function specHash(seed: Hex, m: number, k: number, n: number): Hex {
  const typehash = keccak256(toBytes("gridlease.matmul_i8.v1(bytes32 seed,uint32 m,uint32 k,uint32 n)"));
  return keccak256(
    encodeAbiParameters(
      [{ type: "bytes32" }, { type: "bytes32" }, { type: "uint32" }, { type: "uint32" }, { type: "uint32" }],
      [typehash, seed, m, k, n],
    ),
  );
}

const mod = (x: bigint): bigint => ((x % P) + P) % P;

/** The random field vector of length `len` from `rSeed`: keccak256(rSeed ‖ uint64_be(j)) mod P. */
export function fieldVector(rSeed: Hex, len: number): bigint[] {
  const buf = new Uint8Array(40);
  buf.set(hexToBytes(rSeed), 0);
  const view = new DataView(buf.buffer);
  const r: bigint[] = [];
  for (let j = 0; j < len; j++) {
    view.setBigUint64(32, BigInt(j), false);
    r.push(BigInt(toHex32(keccak(buf))) % P);
  }
  return r;
}

/**
 * Freivalds' check of C against A·B (A m x k row-major, Bᵀ n x k row-major): the rows i where
 * A(B r) != C r over GF(2^61 - 1). Empty: accepted (a wrong product passes with probability at
 * most 1 / (2^61 - 1) for a random `rSeed`).
 */
export function freivalds(
  a: Int8Array,
  bt: Int8Array,
  c: Int32Array,
  m: number,
  k: number,
  n: number,
  rSeed: Hex,
): number[] {
  const r = fieldVector(rSeed, n);
  const s: bigint[] = new Array(k).fill(0n);
  for (let j = 0; j < n; j++) {
    const rj = r[j];
    const col = j * k;
    for (let t = 0; t < k; t++) if (bt[col + t] !== 0) s[t] += BigInt(bt[col + t]) * rj;
  }
  for (let t = 0; t < k; t++) s[t] = mod(s[t]);
  const bad: number[] = [];
  for (let i = 0; i < m; i++) {
    let y = 0n;
    for (let t = 0; t < k; t++) if (a[i * k + t] !== 0) y += BigInt(a[i * k + t]) * s[t];
    let z = 0n;
    for (let j = 0; j < n; j++) if (c[i * n + j] !== 0) z += BigInt(c[i * n + j]) * r[j];
    if (mod(y) !== mod(z)) bad.push(i);
  }
  return bad;
}

/** A wrong element of C and what proves it (`Results.proveMatmulFraud`'s i, j, leaf, proof). */
export interface Fraud {
  i: number;
  j: number;
  claimed: number;
  correct: number;
  leafIndex: number;
  leaf: Hex;
  proof: Hex[];
}

/** The proof material for element (i, j) of the result `bytes` (n columns). */
export function proofFor(bytes: Uint8Array, c: Int32Array, n: number, i: number, j: number, correct: number): Fraud {
  const e = i * n + j;
  const leafIndex = Math.floor(e / LEAF_ELEMS);
  const leaf = bytes.subarray(leafIndex * LEAF_BYTES, Math.min((leafIndex + 1) * LEAF_BYTES, bytes.length));
  return { i, j, claimed: c[e], correct, leafIndex, leaf: toHex32(leaf), proof: resultProof(bytes, leafIndex) };
}

/** Find a wrong element (Freivalds, then the first suspect row recomputed exactly), or none. */
export function localize(
  a: Int8Array,
  bt: Int8Array,
  bytes: Uint8Array,
  m: number,
  k: number,
  n: number,
  rSeed: Hex,
): Fraud | undefined {
  const c = decodeC(bytes);
  const rows = freivalds(a, bt, c, m, k, n, rSeed);
  if (rows.length === 0) return undefined;
  const i = rows[0];
  for (let j = 0; j < n; j++) {
    let dot = 0;
    for (let t = 0; t < k; t++) dot += a[i * k + t] * bt[j * k + t];
    if (dot !== c[i * n + j]) return proofFor(bytes, c, n, i, j, dot);
  }
  return undefined;
}

/** A fresh random seed for Freivalds' vector (the checker's secret: a cheat cannot aim at it). */
export function randomSeed(): Hex {
  return toHex32(crypto.getRandomValues(new Uint8Array(32)));
}
