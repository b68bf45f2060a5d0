-- No query looks entries up by request id (searches go by time, principal, subject and
-- the other filters, and a request id is found among them), yet every append had to
-- place a random key in this index: the most page writes per entry of any index.
DROP INDEX audit_entries_by_request;
