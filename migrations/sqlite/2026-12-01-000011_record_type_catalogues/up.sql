-- Every set of record type definitions the gateway has served under, so that a past
-- decision can be replayed with the types in force when it was made. A gateway appends a
-- version when it starts with definitions that differ from the newest stored; none is ever
-- rewritten or removed.
CREATE TABLE record_type_catalogues (
    version       INTEGER PRIMARY KEY NOT NULL,
    definition    TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    registered_at BIGINT NOT NULL
);
CREATE TRIGGER record_type_catalogues_no_update BEFORE UPDATE ON record_type_catalogues
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER record_type_catalogues_no_delete BEFORE DELETE ON record_type_catalogues
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
