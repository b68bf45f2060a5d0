-- Witnesses' cosignatures of checkpoints (C2SP tlog-cosignature): one line per witness and
-- checkpoint, as the witness returned it, served with the checkpoint. History like the
-- checkpoints themselves: never rewritten or removed.
CREATE TABLE audit_cosignatures (
    tree_size      BIGINT NOT NULL REFERENCES audit_checkpoints (tree_size),
    witness        TEXT NOT NULL,
    signature_line TEXT NOT NULL,
    received_at    BIGINT NOT NULL,
    PRIMARY KEY (tree_size, witness)
);
CREATE TRIGGER audit_cosignatures_no_update BEFORE UPDATE ON audit_cosignatures
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER audit_cosignatures_no_delete BEFORE DELETE ON audit_cosignatures
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
