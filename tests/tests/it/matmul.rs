//! `MatmulProof.sol` against the shared vectors (`testdata/matmul_vectors.json`, written by
//! `gridlease_workload::matmul`): the contract regenerates the same input bytes, hashes the same
//! spec, verifies the same Merkle proofs and recomputes the same elements; a tampered result is
//! caught and a proof against a correct one shows no fraud; malformed proofs revert.

use alloy::{
    hex,
    primitives::{Address, B256, Bytes, FixedBytes, I256, U256},
};
use gridlease_bindings::MatmulProofHarness::{self, MatmulProofHarnessErrors};
use gridlease_tests::{assert_revert, evm::Chain, fixture::Account};
use serde_json::Value;

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/matmul_vectors.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("vectors")).expect("json")
}

fn deploy() -> (Chain, Address, Address) {
    let mut chain = Chain::new();
    let me = Account::numbered(1).address;
    chain.fund(me);
    let h = chain.deploy(me, MatmulProofHarness::BYTECODE.clone());
    (chain, me, h)
}

fn b32(v: &Value) -> B256 {
    v.as_str().expect("hex").parse().expect("bytes32")
}

fn bytes(v: &Value) -> Bytes {
    hex::decode(v.as_str().expect("hex")).expect("hex").into()
}

fn u(v: &Value) -> u32 {
    u32::try_from(v.as_u64().expect("number")).expect("u32")
}

fn job(c: &Value) -> gridlease_bindings::MatmulProof::Job {
    gridlease_bindings::MatmulProof::Job {
        seed: b32(&c["seed"]),
        m: u(&c["m"]),
        k: u(&c["k"]),
        n: u(&c["n"]),
    }
}

fn check_call(c: &Value, root: B256, e: &Value) -> MatmulProofHarness::checkCall {
    MatmulProofHarness::checkCall {
        job: job(c),
        root,
        i: U256::from(e["i"].as_u64().expect("i")),
        j: U256::from(e["j"].as_u64().expect("j")),
        leaf: bytes(&e["leaf"]),
        proof: e["proof"]
            .as_array()
            .expect("proof")
            .iter()
            .map(b32)
            .collect(),
    }
}

#[test]
fn contract_reproduces_the_shared_vectors() {
    let v = vectors();
    let (mut chain, _, h) = deploy();
    for c in v["cases"].as_array().expect("cases") {
        let j = job(c);
        let (m, k, n) = (u64::from(j.m), u64::from(j.k), u64::from(j.n));
        let spec = chain.view(h, MatmulProofHarness::specHashCall { job: j.clone() });
        assert_eq!(spec, b32(&c["specHash"]));
        for (tag, key, len) in [(b'A', "a", m * k), (b'B', "bt", n * k)] {
            let got = chain.view(
                h,
                MatmulProofHarness::generateCall {
                    seed: j.seed,
                    tag: FixedBytes([tag]),
                    start: U256::ZERO,
                    count: U256::from(len),
                },
            );
            assert_eq!(
                got,
                bytes(&c[key]),
                "stream {} of case {m}x{k}x{n}",
                tag as char
            );
        }
        // Every element of C, recomputed on chain.
        let cbytes = bytes(&c["c"]);
        for i in 0..m {
            for jj in 0..n {
                let e = (i * n + jj) as usize * 4;
                let want = i32::from_be_bytes(cbytes[e..e + 4].try_into().expect("4 bytes"));
                let got = chain.view(
                    h,
                    MatmulProofHarness::dotCall {
                        seed: j.seed,
                        k: U256::from(k),
                        i: U256::from(i),
                        j: U256::from(jj),
                    },
                );
                assert_eq!(got, I256::try_from(want).expect("fits"), "C[{i}][{jj}]");
            }
        }
        let root = b32(&c["root"]);
        for e in c["elements"].as_array().expect("elements") {
            let r = chain.view(h, check_call(c, root, e));
            let want = (
                e["claimed"].as_i64().expect("c"),
                e["correct"].as_i64().expect("c"),
            );
            assert_eq!((r.claimed.as_i64(), r.correct.as_i64()), want);
            assert_eq!(want.0, want.1, "an honest result shows no fraud");
        }
        let t = &c["tampered"];
        let r = chain.view(h, check_call(c, b32(&t["root"]), &t["fraud"]));
        assert_ne!(
            r.claimed, r.correct,
            "the flipped element is caught on chain"
        );
        assert_eq!(
            r.claimed.as_i64(),
            t["fraud"]["claimed"].as_i64().expect("claimed")
        );
    }
}

#[test]
fn malformed_proofs_revert() {
    let v = vectors();
    let (mut chain, me, h) = deploy();
    let c = &v["cases"][3];
    let root = b32(&c["root"]);
    let e = &c["elements"][1];

    // The leaf of a correct result under the tampered root: not in that result.
    let r = chain.send(me, h, check_call(c, b32(&c["tampered"]["root"]), e));
    assert_revert!(r, MatmulProofHarnessErrors::NotInResult);
    // A proof one level short.
    let mut call = check_call(c, root, e);
    call.proof.pop();
    assert_revert!(
        chain.send(me, h, call),
        MatmulProofHarnessErrors::BadProofLength
    );
    // A leaf with a byte too many.
    let mut call = check_call(c, root, e);
    let mut leaf = call.leaf.to_vec();
    leaf.push(0);
    call.leaf = leaf.into();
    assert_revert!(
        chain.send(me, h, call),
        MatmulProofHarnessErrors::BadLeafLength
    );
    // An element outside C.
    let mut call = check_call(c, root, e);
    call.i = U256::from(c["m"].as_u64().expect("m"));
    assert_revert!(
        chain.send(me, h, call),
        MatmulProofHarnessErrors::ElementOutOfRange
    );
    // The right leaf proven at the wrong position: eight rows up is another full 1 KiB leaf (leaf
    // 0 instead of 1), so the leaf has the right length and only its position is wrong.
    let mut call = check_call(c, root, e);
    assert_eq!(call.i, U256::from(10));
    call.i -= U256::from(8);
    assert_revert!(
        chain.send(me, h, call),
        MatmulProofHarnessErrors::NotInResult
    );
}
