#!/usr/bin/env python3
"""Writes the hand-made seed inputs of every target to fuzz/corpus/<target>/seed-*.

Sources: config/agreements/*.toml, config/record-types.toml (one valid record per type),
the request examples of docs/api.md, the identifiers of the unit tests, a checkpoint note
and verifier key made with the checkpoint_note target's fixed test seed, and audit entries
in the gateway's canonical (RFC 8785) form. Needs Python 3.11+ and `cryptography`.
"""

import base64
import hashlib
import json
import pathlib
import tomllib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

FUZZ = pathlib.Path(__file__).resolve().parent.parent
REPO = FUZZ.parent


def write(target, name, data):
    directory = FUZZ / "corpus" / target
    directory.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (directory / f"seed-{name}").write_bytes(data)


def compact(value):
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# agreement: each shipped TOML file, and the same document as JSON.
for path in sorted((REPO / "config" / "agreements").glob("*.toml")):
    text = path.read_text()
    write("agreement", path.stem + ".toml", text)
    write("agreement", path.stem + ".json", json.dumps(tomllib.loads(text), indent=1))

# record_submission: one complete record per configured type.
SAMPLE = {
    "string": "text",
    "integer": 3,
    "number": 2.5,
    "boolean": True,
    "date": "2026-03-01",
    "datetime": "2026-03-01T09:00:00Z",
    "string[]": ["a", "b"],
}
types = tomllib.loads((REPO / "config" / "record-types.toml").read_text())["types"]
for name, spec in types.items():
    data = {f: SAMPLE[s.get("type", "string")] for f, s in spec["fields"].items()}
    body = {"type": name, "occurred_at": "2026-03-01T09:00:00.123456+01:00", "data": data}
    write("record_submission", name, compact(body))
write(
    "record_submission",
    "docs-example",
    '{"type": "health.crisis_plan", "occurred_at": "2026-03-01T09:00:00Z",\n'
    ' "data": {"updated_on": "2026-03-01", "triggers": "Anniversaries", '
    '"what_helps": "A quiet room", "diagnosis": "\u2026", "medication": "\u2026"}}',
)

# enrolment_body: the docs example and variants with one identifier each.
enrol = {
    "nhs_number": "943 476 5919",
    "pnc_id": "19/0001234E",
    "given_name": "Marigold",
    "family_name": "Quillfeather",
    "date_of_birth": "1988-04-02",
    "enrolled_on": "2026-01-15",
}
write("enrolment_body", "docs-example", json.dumps(enrol))
write("enrolment_body", "nhs-only", compact({**enrol, "pnc_id": None}))
write("enrolment_body", "pnc-only", compact({k: v for k, v in enrol.items() if k != "nhs_number"}))

# consent_body: the docs examples for a consent and a withdrawal.
consent = {
    "level": "coordination",
    "agencies": ["iow-nhs", "iow-recovery"],
    "excluded_categories": ["clinical"],
    "evidence": "Signed form, witnessed by the mentor",
    "given_on": "2026-01-15",
    "expires_on": "2027-01-15",
}
write("consent_body", "docs-consent", json.dumps(consent))
write(
    "consent_body",
    "minimal-consent",
    compact({"level": "full", "evidence": "verbal", "given_on": "2025-02-28"}),
)
write(
    "consent_body",
    "docs-withdraw",
    '{"evidence": "Telephone call to the coordinator", "withdrawn_on": "2026-05-02"}',
)

# identifiers: from the unit tests of domain::subject.
for i, raw in enumerate(
    ["9434765919", "943 476 5919", "4010232137", "12/1234567C", " 12/1234567c ",
     "19/0001234E", "00/0000000Z", "subj_abcdefghijklmnopqrstuvwxyz", "rec_234567abcdefghijklmnopqrst"]
):
    write("identifiers", str(i), raw)

# checkpoint_note: the fixed test key's verifier key and a note it signed.
SEED = b"concordat fuzz checkpoint key 01"
NAME = "concordat.fuzz/log"
key = Ed25519PrivateKey.from_private_bytes(SEED)
public = key.public_key().public_bytes_raw()
key_id = hashlib.sha256(NAME.encode() + b"\n\x01" + public).digest()[:4]
encoded = base64.b64encode(b"\x01" + public).decode()
vkey = f"{NAME}+{key_id.hex()}+{encoded}"
write("checkpoint_note", "vkey", vkey + "\n")
body = f"{NAME}\n42\n{base64.b64encode(bytes(range(32))).decode()}\n"
signature = base64.b64encode(key_id + key.sign(body.encode())).decode()
write("checkpoint_note", "note", f"{body}\n\u2014 {NAME} {signature}\n")

# audit_export: canonical entries as an NDJSON export holds them.
def entry(index, **changes):
    value = {
        "action": "records.read",
        "agency_id": "hampshire-police",
        "agreements": ["isa-iow-recovery@1"],
        "break_glass": False,
        "certificate_sha256": None,
        "consent_version": 2,
        "decision": "granted",
        "justification": None,
        "leaf_index": index,
        "principal_id": "police-mentor",
        "purpose": "care_coordination",
        "reason": "ok",
        "record_ids": [],
        "released": ["health.crisis_plan.triggers:crisis_plan"],
        "request_id": f"req-{index}",
        "response_sha256": None,
        "roles": ["practitioner"],
        "subject_id": "subj_abcdefghijklmnopqrstuvwxyz",
        "time": "2026-03-01T09:00:00.123456Z",
        "withheld": [],
    }
    value.update(changes)
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


lines = [
    entry(0),
    entry(1, action="whoami.read", decision="denied", reason="role", purpose=None),
    entry(2, break_glass=True, justification="Ambulance crew on scene, \"urgent\"\n"),
    entry(3, decision="error", consent_version=None, time="1970-01-01T00:00:00.000000Z"),
    # An entry standing for several refused requests (`audit::refusals`).
    entry(4, action="whoami.read", decision="denied", reason="role", refusals=499),
    # A records read names the record type definitions it decided by.
    entry(5, record_types_sha256=hashlib.sha256(b"record types").hexdigest()),
]
write("audit_export", "export", "\n".join(lines) + "\n")
write("audit_export", "one", lines[0])

# merkle_proofs: a few sizes and indices with no proof, and one with a short proof.
write("merkle_proofs", "small", bytes([7, 0]) + (3).to_bytes(8, "little") * 3)
write("merkle_proofs", "large", bytes([43, 1]) + (200).to_bytes(8, "little") * 3 + bytes(64))
