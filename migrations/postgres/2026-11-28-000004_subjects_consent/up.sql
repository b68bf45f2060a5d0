-- Subjects and their consent. Identifiers, names, date of birth, discharge reasons and
-- consent evidence are stored only as AES-256-GCM ciphertexts (BYTEA); lookups go through
-- keyed blind indexes. Nothing here is updated or deleted: consent is history.
CREATE TABLE subjects (
    id                 TEXT PRIMARY KEY NOT NULL,
    nhs_number_index   TEXT UNIQUE,
    pnc_id_index       TEXT UNIQUE,
    nhs_number         BYTEA,
    pnc_id             BYTEA,
    given_name         BYTEA NOT NULL,
    family_name        BYTEA NOT NULL,
    date_of_birth      BYTEA NOT NULL,
    enrolled_on        TEXT NOT NULL,
    enrolled_by        TEXT NOT NULL,
    created_at         BIGINT NOT NULL
);

CREATE TABLE subject_discharges (
    subject_id     TEXT PRIMARY KEY NOT NULL REFERENCES subjects (id),
    discharged_on  TEXT NOT NULL,
    reason         BYTEA NOT NULL,
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
    evidence             BYTEA NOT NULL,
    effective_on         TEXT NOT NULL,
    expires_on           TEXT,
    recorded_by          TEXT NOT NULL,
    recorded_at          BIGINT NOT NULL,
    PRIMARY KEY (subject_id, version)
);

CREATE FUNCTION subjects_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'subjects, discharges and consent history are append-only';
END;
$$;
CREATE TRIGGER subjects_append_only BEFORE UPDATE OR DELETE ON subjects
    FOR EACH ROW EXECUTE FUNCTION subjects_append_only();
CREATE TRIGGER subject_discharges_append_only BEFORE UPDATE OR DELETE ON subject_discharges
    FOR EACH ROW EXECUTE FUNCTION subjects_append_only();
CREATE TRIGGER consents_append_only BEFORE UPDATE OR DELETE ON consents
    FOR EACH ROW EXECUTE FUNCTION subjects_append_only();
