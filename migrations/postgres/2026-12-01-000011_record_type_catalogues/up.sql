-- Every set of record type definitions a gateway has decided by, once each, by digest: a
-- read's audit entry names the digest (`record_types_sha256`), so that replaying it uses
-- exactly those definitions. None is ever rewritten, removed or truncated. concordat_app
-- gets SELECT and INSERT through the default privileges of 000003.
CREATE TABLE record_type_catalogues (
    version       INTEGER PRIMARY KEY,
    definition    TEXT NOT NULL,
    sha256        TEXT NOT NULL UNIQUE,
    registered_at BIGINT NOT NULL
);
CREATE TRIGGER record_type_catalogues_append_only BEFORE UPDATE OR DELETE ON record_type_catalogues
    FOR EACH ROW EXECUTE FUNCTION history_append_only();
CREATE TRIGGER record_type_catalogues_no_truncate BEFORE TRUNCATE ON record_type_catalogues
    FOR EACH STATEMENT EXECUTE FUNCTION history_append_only();
