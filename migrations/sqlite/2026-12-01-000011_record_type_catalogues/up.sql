-- Every set of record type definitions a gateway has decided by, once each, by digest: a
-- read's audit entry names the digest (`record_types_sha256`), so that replaying it uses
-- exactly those definitions. None is ever rewritten or removed.
CREATE TABLE record_type_catalogues (
    version       INTEGER PRIMARY KEY NOT NULL,
    definition    TEXT NOT NULL,
    sha256        TEXT NOT NULL UNIQUE,
    registered_at BIGINT NOT NULL
);
CREATE TRIGGER record_type_catalogues_no_update BEFORE UPDATE ON record_type_catalogues
BEGIN SELECT RAISE(ABORT, 'record type definitions are append-only'); END;
CREATE TRIGGER record_type_catalogues_no_delete BEFORE DELETE ON record_type_catalogues
BEGIN SELECT RAISE(ABORT, 'record type definitions are append-only'); END;
