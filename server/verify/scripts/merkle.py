#!/usr/bin/env python3
"""Recompute the RFC 6962 Merkle tree of an aims-evidence bundle and compare it with the signed
checkpoint body: python3 merkle.py [EXTRACTED-BUNDLE-DIR] (default: the current directory; exit 0
match, 1 not). This script belongs to the aims-verify sources; never run a copy that came inside
a bundle, since whoever made the bundle controls that copy.

Full export: the root over every line of log/entries.jsonl must equal the root in checkpoint.body.
Partial export: each line must verify against its receipt in proofs/ (RFC 9162 2.1.3.2)."""
import base64, glob, hashlib, json, os, sys

HERE = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else ".")

def sha(b): return hashlib.sha256(b).digest()
def leaf(entry): return sha(b"\x00" + entry)
def node(l, r): return sha(b"\x01" + l + r)

def mth(leaves):
    if not leaves: return sha(b"")
    if len(leaves) == 1: return leaves[0]
    k = 1
    while k * 2 < len(leaves): k *= 2
    return node(mth(leaves[:k]), mth(leaves[k:]))

def included(lh, index, size, path, root):
    if index >= size: return False
    fn, sn, r = index, size - 1, lh
    for p in path:
        if sn == 0: return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0: fn >>= 1; sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1; sn >>= 1
    return sn == 0 and r == root

def read(name):
    with open(os.path.join(HERE, name), "rb") as f: return f.read()

def main():
    origin, size, root = read("checkpoint.body").decode().split("\n")[:3]
    size, root = int(size), base64.b64decode(root)
    data = read("log/entries.jsonl")
    if data and not data.endswith(b"\n"): return fail("log/entries.jsonl: last line has no newline")
    lines = data[:-1].split(b"\n") if data else []
    if json.loads(read("MANIFEST.json"))["scope"] == "full":
        got = mth([leaf(l) for l in lines])
        if len(lines) != size or got != root:
            return fail("%d entries, root %s; checkpoint says %d entries, root %s"
                        % (len(lines), base64.b64encode(got).decode(), size, base64.b64encode(root).decode()))
        print("OK %s size %d: root recomputed over %d entries matches checkpoint.body" % (origin, size, len(lines)))
        return 0
    indices = [int(x) for x in read("log/index.txt").decode().split()]
    proofs = {}
    for p in glob.glob(os.path.join(HERE, "proofs", "*.tlog-proof")):
        head = open(p, "rb").read().decode().split("\n\n")[0].split("\n")
        k = next(n for n, x in enumerate(head) if x.startswith("index "))
        proofs[int(head[k].split()[1])] = [base64.b64decode(h) for h in head[k + 1:] if h]
    for n, (i, l) in enumerate(zip(indices, lines), 1):
        if not included(leaf(l), i, size, proofs.get(i, []), root):
            return fail("log/entries.jsonl line %d (leaf %d): not included in the checkpoint's tree" % (n, i))
    print("OK %s size %d: %d entries verify against their receipts" % (origin, size, len(lines)))
    return 0

def fail(msg):
    print("FAIL " + msg)
    return 1

if __name__ == "__main__":
    sys.exit(main())
