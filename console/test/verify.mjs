// The browser's own checks of a matmul_i8 result (console/src/verify.ts) against the vectors the
// Rust workload writes (testdata/matmul_vectors.json): generator bytes, products, result roots,
// Merkle proofs, spec hashes, and for each tampered product the element Freivalds and the exact
// recomputation find, with its proof. Two implementations that agree on every case.
//
//   node console/test/verify.mjs

import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import ts from "typescript";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
// verify.ts compiled by TypeScript itself into a module beside the console's node_modules.
const out = join(here, ".build");
mkdirSync(out, { recursive: true });
const js = ts.transpileModule(readFileSync(join(here, "..", "src", "verify.ts"), "utf8"), {
  compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
}).outputText;
const file = join(out, "verify.mjs");
writeFileSync(file, js);
const v = await import(pathToFileURL(file).href);

let failures = 0;
let checks = 0;
function check(ok, what) {
  checks += 1;
  if (!ok) {
    failures += 1;
    console.log(`FAIL ${what}`);
  }
}

const hex = (arr) => `0x${Array.from(new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength), (b) => b.toString(16).padStart(2, "0")).join("")}`;
const bytes = (h) => Uint8Array.from(Buffer.from(h.slice(2), "hex"));

const vectors = JSON.parse(readFileSync(join(root, "testdata", "matmul_vectors.json"), "utf8"));
const random = v.randomSeed();
for (const [n_, c] of vectors.cases.entries()) {
  const name = `case ${n_} (${c.m}x${c.k}x${c.n})`;
  const a = v.generate(c.seed, "A", 0, c.m * c.k);
  const bt = v.generate(c.seed, "B", 0, c.n * c.k);
  check(hex(a) === c.a, `${name}: A from the seed`);
  check(hex(bt) === c.bt, `${name}: B (by columns) from the seed`);
  check(v.specHash(c.seed, c.m, c.k, c.n) === c.specHash, `${name}: spec hash`);
  const cb = bytes(c.c);
  check(v.resultRoot(cb) === c.root, `${name}: result root`);
  check(v.freivalds(a, bt, v.decodeC(cb), c.m, c.k, c.n, random).length === 0, `${name}: Freivalds accepts the product`);
  check(v.localize(a, bt, cb, c.m, c.k, c.n, random) === undefined, `${name}: nothing to prove on the product`);
  for (const e of c.elements) {
    const p = v.proofFor(cb, v.decodeC(cb), c.n, e.i, e.j, e.correct);
    check(
      p.leafIndex === e.leafIndex && p.leaf === e.leaf && JSON.stringify(p.proof) === JSON.stringify(e.proof),
      `${name}: element (${e.i}, ${e.j}) leaf and proof`,
    );
  }
  // The tampered product: one element changed.
  const f = c.tampered.fraud;
  const t = bytes(c.c);
  new DataView(t.buffer).setInt32((f.i * c.n + f.j) * 4, f.claimed, false);
  check(v.resultRoot(t) === c.tampered.root, `${name}: the tampered product's root`);
  const found = v.localize(a, bt, t, c.m, c.k, c.n, random);
  check(
    found !== undefined &&
      found.i === f.i &&
      found.j === f.j &&
      found.claimed === f.claimed &&
      found.correct === f.correct &&
      found.leaf === f.leaf &&
      JSON.stringify(found.proof) === JSON.stringify(f.proof),
    `${name}: the wrong element found, with its proof (${JSON.stringify(found && { i: found.i, j: found.j })})`,
  );
}
// An empty result is one empty leaf: its root is keccak256(0x00), never zero.
check(
  v.resultRoot(new Uint8Array(0)) === "0xbc36789e7a1e281436464229828f817d6612f7b477d66591ff96a9e064bcc98a",
  "an empty result's root is keccak256(0x00)",
);

rmSync(out, { recursive: true, force: true });
console.log(`${checks - failures}/${checks} checks of ${vectors.cases.length} vector cases passed`);
process.exit(failures ? 1 : 0);
