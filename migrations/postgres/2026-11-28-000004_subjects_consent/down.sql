DROP TABLE consents;
DROP TABLE subject_discharges;
DROP TABLE subjects;
DROP FUNCTION subjects_append_only();
