DROP INDEX audit_entries_break_glass;
