-- Subjects and their consent. Identifiers, names, date of birth, discharge reasons and
-- consent evidence are stored only as AES-256-GCM ciphertexts (BLOB); lookups go through
-- keyed blind indexes. Nothing here is updated or deleted: consent is history.
CREATE TABLE subjects (
    id                 TEXT PRIMARY KEY NOT NULL,
    nhs_number_index   TEXT UNIQUE,
    pnc_id_index       TEXT UNIQUE,
    nhs_number         BLOB,
    pnc_id             BLOB,
    given_name         BLOB NOT NULL,
    family_name        BLOB NOT NULL,
    date_of_birth      BLOB NOT NULL,
    enrolled_on        TEXT NOT NULL,
    enrolled_by        TEXT NOT NULL,
    created_at         BIGINT NOT NULL
);

CREATE TABLE subject_discharges (
    subject_id     TEXT PRIMARY KEY NOT NULL REFERENCES subjects (id),
    discharged_on  TEXT NOT NULL,
    reason         BLOB NOT NULL,
    recorded_by    TEXT NOT NULL,
    recorded_at    BIGINT NOT NULL
);

CREATE TABLE consents (
    subject_id           TEXT NOT NULL REFERENCES subjects (id),
    version              INTEGER NOT NULL CHECK (version >= 1),
    kind                 TEXT NOT NULL CHECK (kind IN ('given', 'withdrawn')),
    level                TEXT CHECK (level IN ('none', 'crisis', 'coordination', 'full')),
    agencies             TEXT,
    excluded_categories  TEXT NOT NULL,
    evidence             BLOB NOT NULL,
    effective_on         TEXT NOT NULL,
    expires_on           TEXT,
    recorded_by          TEXT NOT NULL,
    recorded_at          BIGINT NOT NULL,
    PRIMARY KEY (subject_id, version)
);

CREATE TRIGGER subjects_no_update BEFORE UPDATE ON subjects
BEGIN SELECT RAISE(ABORT, 'subjects are append-only'); END;
CREATE TRIGGER subjects_no_delete BEFORE DELETE ON subjects
BEGIN SELECT RAISE(ABORT, 'subjects are append-only'); END;
CREATE TRIGGER subject_discharges_no_update BEFORE UPDATE ON subject_discharges
BEGIN SELECT RAISE(ABORT, 'discharges are append-only'); END;
CREATE TRIGGER subject_discharges_no_delete BEFORE DELETE ON subject_discharges
BEGIN SELECT RAISE(ABORT, 'discharges are append-only'); END;
CREATE TRIGGER consents_no_update BEFORE UPDATE ON consents
BEGIN SELECT RAISE(ABORT, 'consent history is append-only'); END;
CREATE TRIGGER consents_no_delete BEFORE DELETE ON consents
BEGIN SELECT RAISE(ABORT, 'consent history is append-only'); END;
