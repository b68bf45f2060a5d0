-- Agencies, whose kind decides which records an agency may hold, are history like every
-- other table that says who could see what: nothing rewrites or removes one. (SQLite has
-- no TRUNCATE; a DELETE without WHERE fires these row triggers too.)
CREATE TRIGGER agencies_no_update BEFORE UPDATE ON agencies
BEGIN SELECT RAISE(ABORT, 'agencies are append-only'); END;
CREATE TRIGGER agencies_no_delete BEFORE DELETE ON agencies
BEGIN SELECT RAISE(ABORT, 'agencies are append-only'); END;
