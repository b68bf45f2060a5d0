DROP TABLE consents;
DROP TABLE subject_discharges;
DROP TABLE subjects;
