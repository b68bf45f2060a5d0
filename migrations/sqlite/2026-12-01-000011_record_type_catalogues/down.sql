DROP TABLE record_type_catalogues;
