DROP TABLE alert_reviews;
DROP TABLE records;
DROP TABLE agreement_events;
DROP TABLE agreement_approvals;
DROP TABLE agreement_versions;
DROP FUNCTION agreements_records_append_only();
