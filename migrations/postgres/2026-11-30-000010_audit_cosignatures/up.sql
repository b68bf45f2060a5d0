-- Witnesses' cosignatures of checkpoints (C2SP tlog-cosignature): one line per witness and
-- checkpoint, as the witness returned it, served with the checkpoint. History like the
-- checkpoints themselves: never rewritten, removed or truncated. concordat_app gets SELECT
-- and INSERT through the default privileges of 000003.
CREATE TABLE audit_cosignatures (
    tree_size      BIGINT NOT NULL REFERENCES audit_checkpoints (tree_size),
    witness        TEXT NOT NULL,
    signature_line TEXT NOT NULL,
    received_at    BIGINT NOT NULL,
    PRIMARY KEY (tree_size, witness)
);
CREATE TRIGGER audit_cosignatures_append_only BEFORE UPDATE OR DELETE ON audit_cosignatures
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_cosignatures_no_truncate BEFORE TRUNCATE ON audit_cosignatures
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
