-- Break-glass alerts are a handful among millions of entries: a partial index holds only
-- those, so the alerts page reads them without scanning the trail, and ordinary appends
-- never touch it.
CREATE INDEX audit_entries_break_glass ON audit_entries (leaf_index) WHERE break_glass;
