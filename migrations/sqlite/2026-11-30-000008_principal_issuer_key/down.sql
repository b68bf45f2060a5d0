ALTER TABLE principals DROP COLUMN certificate_issuer_key;
