DROP TABLE principals;
DROP FUNCTION principals_append_only();
DROP TABLE agencies;
