#!/usr/bin/env python3
"""Check witness cosignatures on a Concordat checkpoint without any Concordat code.

Usage: verify_cosignatures.py CHECKPOINT LOG_VKEY QUORUM WITNESS_VKEY...

CHECKPOINT    `GET /v1/audit/checkpoint`: a C2SP signed note, the gateway's signature line
              followed by the witnesses' cosignature lines.
LOG_VKEY      the gateway's verifier key (`GET /v1/audit/checkpoint/key`), type 0x01.
QUORUM        how many of the witnesses must have cosigned.
WITNESS_VKEY  each witness's key as its agency publishes it (`concordat witness key`):
              `<name>+<8 hex key id>+<base64(0x04 || Ed25519 public key)>`.

Written from the C2SP specifications alone (signed-note, tlog-checkpoint and
tlog-cosignature `cosignature/v1`): the log's signature over the body, then for each
witness a line `— <name> base64(key id || 8-byte big-endian time || signature)` whose
signature covers `cosignature/v1\\ntime <time>\\n` followed by the body. Exits 0 printing
who cosigned when at least QUORUM witnesses did, else 1. Needs Python 3 and `cryptography`.
"""

import base64
import hashlib
import struct
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

SIGNATURE_PREFIX = "\u2014 "


class Fault(Exception):
    pass


def parse_vkey(text, key_type):
    try:
        name, key_id, key = text.strip().split("+", 2)
        raw = base64.b64decode(key, validate=True)
    except ValueError as error:
        raise Fault(f"verifier key: {error}") from error
    if len(raw) != 33 or raw[0] != key_type:
        raise Fault(f"verifier key {name}: not an Ed25519 key of type {key_type:#04x}")
    expected = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    if expected.hex() != key_id:
        raise Fault(f"verifier key {name}: key id does not match the key")
    return name, expected, Ed25519PublicKey.from_public_bytes(raw[1:])


def signature_lines(signatures, name):
    for line in signatures.splitlines():
        if line.startswith(f"{SIGNATURE_PREFIX}{name} "):
            try:
                yield base64.b64decode(line.split(" ")[-1], validate=True)
            except ValueError:
                continue


def main(checkpoint_path, log_vkey, quorum, *witness_vkeys):
    with open(checkpoint_path, encoding="utf-8") as f:
        note = f.read()
    body, sep, signatures = note.partition("\n\n")
    if not sep:
        raise Fault("checkpoint: no blank line before the signatures")
    body += "\n"

    name, key_id, key = parse_vkey(log_vkey, 0x01)
    signed = False
    for sig in signature_lines(signatures, name):
        if len(sig) == 68 and sig[:4] == key_id:
            try:
                key.verify(sig[4:], body.encode())
                signed = True
            except InvalidSignature:
                pass
    if not signed:
        raise Fault("checkpoint: no valid signature by the log's key")

    cosigned = []
    names = set()
    for vkey in witness_vkeys:
        name, key_id, key = parse_vkey(vkey, 0x04)
        if name in names:
            raise Fault(f"witness {name} given twice: it would count twice")
        names.add(name)
        for sig in signature_lines(signatures, name):
            if len(sig) != 76 or sig[:4] != key_id:
                continue
            (timestamp,) = struct.unpack(">Q", sig[4:12])
            message = f"cosignature/v1\ntime {timestamp}\n{body}".encode()
            try:
                key.verify(sig[12:], message)
            except InvalidSignature:
                continue
            cosigned.append(f"{name} at {timestamp}")
            break
    origin, size = body.split("\n")[:2]
    if len(cosigned) < int(quorum):
        raise Fault(f"{origin} at size {size}: {len(cosigned)} valid cosignature(s), {quorum} required")
    print(f"OK: {origin} at size {size} cosigned by {len(cosigned)}: {'; '.join(cosigned)}")


if __name__ == "__main__":
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    try:
        main(*sys.argv[1:])
    except Fault as fault:
        print(f"FAILED: {fault}", file=sys.stderr)
        sys.exit(1)
