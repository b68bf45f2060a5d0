DROP TABLE principals;
DROP TABLE agencies;
