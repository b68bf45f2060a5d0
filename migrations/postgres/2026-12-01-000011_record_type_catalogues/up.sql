-- Every set of record type definitions the gateway has served under, so that a past
-- decision can be replayed with the types in force when it was made. A gateway appends a
-- version when it starts with definitions that differ from the newest stored; none is ever
-- rewritten, removed or truncated. concordat_app gets SELECT and INSERT through the
-- default privileges of 000003.
CREATE TABLE record_type_catalogues (
    version       INTEGER PRIMARY KEY,
    definition    TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    registered_at BIGINT NOT NULL
);
CREATE TRIGGER record_type_catalogues_append_only BEFORE UPDATE OR DELETE ON record_type_catalogues
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER record_type_catalogues_no_truncate BEFORE TRUNCATE ON record_type_catalogues
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
