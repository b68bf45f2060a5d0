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
    payload       BLOB NOT NULL,
    submitted_by  TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX records_by_subject ON records (subject_id, occurred_at);

CREATE TABLE alert_reviews (
    leaf_index   BIGINT PRIMARY KEY NOT NULL,
    outcome      TEXT NOT NULL CHECK (outcome IN ('justified', 'unjustified')),
    note         BLOB NOT NULL,
    reviewed_by  TEXT NOT NULL,
    reviewed_at  BIGINT NOT NULL
);

CREATE TRIGGER agreement_versions_no_update BEFORE UPDATE ON agreement_versions BEGIN SELECT RAISE(ABORT, 'append-only'); END;
CREATE TRIGGER agreement_versions_no_delete BEFORE DELETE ON agreement_versions BEGIN SELECT RAISE(ABORT, 'append-only'); END;
CREATE TRIGGER agreement_approvals_no_update BEFORE UPDATE ON agreement_approvals BEGIN SELECT RAISE(ABORT, 'append-only'); END;
CREATE TRIGGER agreement_approvals_no_delete BEFORE DELETE ON agreement_approvals BEGIN SELECT RAISE(ABORT, 'append-only'); END;
CREATE TRIGGER agreement_events_no_update BEFORE UPDATE ON agreement_events BEGIN SELECT RAISE(ABORT, 'append-only'); END;
CREATE TRIGGER agreement_events_no_delete BEFORE DELETE ON agreement_events BEGIN SELECT RAISE(ABORT, 'append-only'); END;
CREATE TRIGGER records_no_update BEFORE UPDATE ON records BEGIN SELECT RAISE(ABORT, 'append-only'); END;
CREATE TRIGGER records_no_delete BEFORE DELETE ON records BEGIN SELECT RAISE(ABORT, 'append-only'); END;
CREATE TRIGGER alert_reviews_no_update BEFORE UPDATE ON alert_reviews BEGIN SELECT RAISE(ABORT, 'append-only'); END;
CREATE TRIGGER alert_reviews_no_delete BEFORE DELETE ON alert_reviews BEGIN SELECT RAISE(ABORT, 'append-only'); END;
