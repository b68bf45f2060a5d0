-- Agreements (versions, approvals, lifecycle events), records (payloads sealed with
-- AES-256-GCM) and reviews of break-glass alerts. All append-only: an agreement's status
-- is derived from its events, never stored as a mutable column.
CREATE TABLE agreement_versions (
    agreement_id  TEXT NOT NULL,
    version       INTEGER NOT NULL CHECK (version >= 1),
    document      TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (agreement_id, version)
);

CREATE TABLE agreement_approvals (
    agreement_id  TEXT NOT NULL,
    version       INTEGER NOT NULL,
    agency_id     TEXT NOT NULL REFERENCES agencies (id),
    approved_by   TEXT NOT NULL,
    approved_at   BIGINT NOT NULL,
    PRIMARY KEY (agreement_id, version, agency_id),
    FOREIGN KEY (agreement_id, version) REFERENCES agreement_versions (agreement_id, version)
);

CREATE TABLE agreement_events (
    agreement_id  TEXT NOT NULL,
    seq           INTEGER NOT NULL CHECK (seq >= 1),
    kind          TEXT NOT NULL CHECK (kind IN ('approved', 'imported', 'suspended', 'terminated')),
    version       INTEGER,
    reason        TEXT,
    recorded_by   TEXT NOT NULL,
    recorded_at   BIGINT NOT NULL,
    PRIMARY KEY (agreement_id, seq)
);

CREATE TABLE records (
    id            TEXT PRIMARY KEY NOT NULL,
    subject_id    TEXT NOT NULL REFERENCES subjects (id),
    record_type   TEXT NOT NULL,
    holder        TEXT NOT NULL REFERENCES agencies (id),
    occurred_at   BIGINT NOT NULL,
    payload       BYTEA NOT NULL,
    submitted_by  TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX records_by_subject ON records (subject_id, occurred_at);

CREATE TABLE alert_reviews (
    leaf_index   BIGINT PRIMARY KEY NOT NULL,
    outcome      TEXT NOT NULL CHECK (outcome IN ('justified', 'unjustified')),
    note         BYTEA NOT NULL,
    reviewed_by  TEXT NOT NULL,
    reviewed_at  BIGINT NOT NULL
);

CREATE FUNCTION agreements_records_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'agreements, records and alert reviews are append-only';
END;
$$;
CREATE TRIGGER agreement_versions_append_only BEFORE UPDATE OR DELETE ON agreement_versions
    FOR EACH ROW EXECUTE FUNCTION agreements_records_append_only();
CREATE TRIGGER agreement_approvals_append_only BEFORE UPDATE OR DELETE ON agreement_approvals
    FOR EACH ROW EXECUTE FUNCTION agreements_records_append_only();
CREATE TRIGGER agreement_events_append_only BEFORE UPDATE OR DELETE ON agreement_events
    FOR EACH ROW EXECUTE FUNCTION agreements_records_append_only();
CREATE TRIGGER records_append_only BEFORE UPDATE OR DELETE ON records
    FOR EACH ROW EXECUTE FUNCTION agreements_records_append_only();
CREATE TRIGGER alert_reviews_append_only BEFORE UPDATE OR DELETE ON alert_reviews
    FOR EACH ROW EXECUTE FUNCTION agreements_records_append_only();
