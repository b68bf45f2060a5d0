-- SQLite has no roles: the triggers of the earlier migrations are its guard. This
-- migration exists so that both backends carry the same versions.
SELECT 1;
