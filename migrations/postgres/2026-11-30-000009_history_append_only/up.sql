-- Agencies, whose kind decides which records an agency may hold, are history like every
-- other table that says who could see what; and TRUNCATE, which fires no row trigger, is
-- refused on every such table (the audit tables refused it already).
CREATE FUNCTION history_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$;

CREATE TRIGGER agencies_append_only BEFORE UPDATE OR DELETE ON agencies
    FOR EACH ROW EXECUTE FUNCTION history_append_only();

CREATE TRIGGER agencies_no_truncate BEFORE TRUNCATE ON agencies
    FOR EACH STATEMENT EXECUTE FUNCTION history_append_only();
CREATE TRIGGER principals_no_truncate BEFORE TRUNCATE ON principals
    FOR EACH STATEMENT EXECUTE FUNCTION history_append_only();
CREATE TRIGGER subjects_no_truncate BEFORE TRUNCATE ON subjects
    FOR EACH STATEMENT EXECUTE FUNCTION history_append_only();
CREATE TRIGGER subject_discharges_no_truncate BEFORE TRUNCATE ON subject_discharges
    FOR EACH STATEMENT EXECUTE FUNCTION history_append_only();
CREATE TRIGGER consents_no_truncate BEFORE TRUNCATE ON consents
    FOR EACH STATEMENT EXECUTE FUNCTION history_append_only();
CREATE TRIGGER agreement_versions_no_truncate BEFORE TRUNCATE ON agreement_versions
    FOR EACH STATEMENT EXECUTE FUNCTION history_append_only();
CREATE TRIGGER agreement_approvals_no_truncate BEFORE TRUNCATE ON agreement_approvals
    FOR EACH STATEMENT EXECUTE FUNCTION history_append_only();
CREATE TRIGGER agreement_events_no_truncate BEFORE TRUNCATE ON agreement_events
    FOR EACH STATEMENT EXECUTE FUNCTION history_append_only();
CREATE TRIGGER records_no_truncate BEFORE TRUNCATE ON records
    FOR EACH STATEMENT EXECUTE FUNCTION history_append_only();
CREATE TRIGGER alert_reviews_no_truncate BEFORE TRUNCATE ON alert_reviews
    FOR EACH STATEMENT EXECUTE FUNCTION history_append_only();
