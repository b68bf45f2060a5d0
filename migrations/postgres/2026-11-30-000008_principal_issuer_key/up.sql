-- A principal is bound to the key of the CA that issued its certificate, not only to that
-- CA's name: two configured CAs could share a name. Hex SHA-256 of the CA's public key;
-- NULL on versions registered before, which are accepted only while the name is unique
-- among the configured CAs.
ALTER TABLE principals ADD COLUMN certificate_issuer_key TEXT;
