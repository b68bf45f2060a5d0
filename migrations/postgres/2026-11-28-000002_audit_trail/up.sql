-- The audit trail: entries (leaf data exactly as hashed, plus columns to search by),
-- every perfect subtree hash of the Merkle tree, and signed checkpoints. Append-only.
CREATE TABLE audit_entries (
    leaf_index    BIGINT PRIMARY KEY NOT NULL CHECK (leaf_index >= 0),
    time_micros   BIGINT NOT NULL,
    request_id    TEXT NOT NULL,
    principal_id  TEXT,
    agency_id     TEXT,
    subject_id    TEXT,
    action        TEXT NOT NULL,
    decision      TEXT NOT NULL CHECK (decision IN ('granted', 'denied', 'error')),
    purpose       TEXT,
    break_glass   BOOLEAN NOT NULL,
    leaf_data     BYTEA NOT NULL
);
CREATE INDEX audit_entries_by_time ON audit_entries (time_micros);
CREATE INDEX audit_entries_by_subject ON audit_entries (subject_id, leaf_index);
CREATE INDEX audit_entries_by_principal ON audit_entries (principal_id, leaf_index);
CREATE INDEX audit_entries_by_request ON audit_entries (request_id);

-- Perfect subtree hashes keyed by the last leaf they cover, then level (0 = the leaf
-- hash). See the SQLite migration for why this key.
CREATE TABLE audit_nodes (
    covers_to  BIGINT NOT NULL,
    level      INTEGER NOT NULL CHECK (level >= 0 AND level < 64),
    hash       BYTEA NOT NULL,
    PRIMARY KEY (covers_to, level)
);

CREATE TABLE audit_checkpoints (
    tree_size    BIGINT PRIMARY KEY NOT NULL CHECK (tree_size > 0),
    root_hash    BYTEA NOT NULL,
    signed_note  TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);

CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only';
END;
$$;
CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_nodes_append_only BEFORE UPDATE OR DELETE ON audit_nodes
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_nodes_no_truncate BEFORE TRUNCATE ON audit_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
