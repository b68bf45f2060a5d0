-- Agencies and versioned principals. Timestamps are integer microseconds since the Unix
-- epoch (UTC) so both backends store and compare them the same way.
CREATE TABLE agencies (
    id          TEXT PRIMARY KEY NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('police', 'health', 'ambulance', 'local_authority', 'programme')),
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- One row per version of a principal; a change adds a row and history stays.
CREATE TABLE principals (
    id                   TEXT NOT NULL,
    version              INTEGER NOT NULL CHECK (version >= 1),
    agency_id            TEXT NOT NULL REFERENCES agencies (id),
    certificate_subject  TEXT NOT NULL,
    certificate_issuer   TEXT NOT NULL,
    roles                TEXT NOT NULL,
    status               TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    changed_at           BIGINT NOT NULL,
    PRIMARY KEY (id, version)
);

CREATE INDEX principals_by_certificate ON principals (certificate_subject, certificate_issuer);

-- Versions are history: nothing rewrites or removes one.
CREATE TRIGGER principals_no_update BEFORE UPDATE ON principals
BEGIN SELECT RAISE(ABORT, 'principal versions are append-only'); END;
CREATE TRIGGER principals_no_delete BEFORE DELETE ON principals
BEGIN SELECT RAISE(ABORT, 'principal versions are append-only'); END;
