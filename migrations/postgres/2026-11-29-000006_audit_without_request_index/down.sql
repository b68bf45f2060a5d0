CREATE INDEX audit_entries_by_request ON audit_entries (request_id);
