#!/usr/bin/env python3
"""Verify a Concordat audit export without any Concordat code.

Usage: verify_export.py EXPORT.ndjson CHECKPOINT VKEY

EXPORT.ndjson  `GET /v1/audit/export?format=ndjson` or `concordat audit export --format ndjson`
               (from the first entry, no --from): one entry a line, exactly the leaf data.
CHECKPOINT     `GET /v1/audit/checkpoint`: a C2SP signed note.
VKEY           `GET /v1/audit/checkpoint/key`: `<name>+<8 hex key id>+<base64(0x01 || key)>`.

Checks the checkpoint's Ed25519 signature with the verifier key, that every line is the
RFC 8785 canonical JSON of an entry whose leaf_index is its line number, and that the
RFC 9162 Merkle root of the first <tree size> lines equals the signed root. Exits 0 and
prints a summary, or exits 1 naming the first fault. Needs Python 3 and `cryptography`.
"""

import base64
import hashlib
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

SIGNATURE_PREFIX = "\u2014 "


class Fault(Exception):
    pass


def parse_vkey(text):
    try:
        name, key_id, key = text.strip().split("+", 2)
        raw = base64.b64decode(key, validate=True)
    except ValueError as error:
        raise Fault(f"verifier key: {error}") from error
    if len(raw) != 33 or raw[0] != 0x01:
        raise Fault("verifier key: not an Ed25519 key")
    expected = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    if expected.hex() != key_id:
        raise Fault("verifier key: key id does not match the key")
    return name, expected, Ed25519PublicKey.from_public_bytes(raw[1:])


def verify_checkpoint(note, name, key_id, public_key):
    body, sep, signatures = note.partition("\n\n")
    if not sep:
        raise Fault("checkpoint: no blank line before the signatures")
    body += "\n"
    for line in signatures.splitlines():
        if not line.startswith(f"{SIGNATURE_PREFIX}{name} "):
            continue
        signature = base64.b64decode(line.split(" ")[-1])
        if len(signature) != 68 or signature[:4] != key_id:
            continue
        try:
            public_key.verify(signature[4:], body.encode())
        except InvalidSignature:
            continue
        origin, size, root = body.split("\n")[:3]
        return origin, int(size), base64.b64decode(root)
    raise Fault("checkpoint: no valid signature by this key")


def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root(leaves):
    """RFC 9162 MTH, by merging perfect subtrees as leaves arrive."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    peaks = []  # (height, hash)
    for leaf in leaves:
        height, current = 0, leaf
        while peaks and peaks[-1][0] == height:
            current = node_hash(peaks.pop()[1], current)
            height += 1
        peaks.append((height, current))
    root = peaks[-1][1]
    for _, peak in reversed(peaks[:-1]):
        root = node_hash(peak, root)
    return root


def canonical(entry):
    """RFC 8785 for the values entries hold (strings, integers, booleans, null, lists)."""
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def main(export_path, checkpoint_path, vkey_path):
    with open(vkey_path, encoding="utf-8") as f:
        name, key_id, public_key = parse_vkey(f.read())
    with open(checkpoint_path, encoding="utf-8") as f:
        origin, size, root = verify_checkpoint(f.read(), name, key_id, public_key)

    leaves = []
    with open(export_path, "rb") as f:
        for position, line in enumerate(f):
            if len(leaves) == size:
                break
            data = line.rstrip(b"\n")
            try:
                entry = json.loads(data)
            except ValueError as error:
                raise Fault(f"leaf {position}: not JSON ({error})") from error
            if entry.get("leaf_index") != position:
                raise Fault(f"leaf {position}: the entry records leaf index {entry.get('leaf_index')}")
            if canonical(entry) != data:
                raise Fault(f"leaf {position}: not in RFC 8785 canonical form")
            leaves.append(leaf_hash(data))
    if len(leaves) < size:
        raise Fault(f"the checkpoint covers {size} entries but the export holds {len(leaves)}")
    if merkle_root(leaves) != root:
        raise Fault(f"the root of the first {size} entries does not match the signed checkpoint")
    print(f"OK: {size} entries match the checkpoint signed by {name} for {origin}")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    try:
        main(*sys.argv[1:])
    except Fault as fault:
        print(f"FAILED: {fault}", file=sys.stderr)
        sys.exit(1)
