-- The role the gateway should run as: it may read and append, never rewrite. Every table
-- of Concordat is append-only or versioned, so the role gets SELECT and INSERT and no
-- UPDATE, DELETE or TRUNCATE, on today's tables and (through default privileges) on the
-- tables later migrations create. Log in as a member of it, e.g.
--   CREATE ROLE gateway LOGIN PASSWORD '...' IN ROLE concordat_app;
-- and keep the owner's credentials for `concordat migrate` only (see README).
-- Roles are cluster-wide: an administrator may have created it once for the cluster, so that
-- the schema's owner needs neither SUPERUSER nor CREATEROLE (PostgreSQL checks the privilege
-- before the name, so CREATE ROLE alone would fail for such an owner even then).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'concordat_app') THEN
        CREATE ROLE concordat_app NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- another database of this cluster created it at the same moment
END
$$;

REVOKE UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA public FROM PUBLIC;
REVOKE UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA public FROM concordat_app;
GRANT USAGE ON SCHEMA public TO concordat_app;
GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO concordat_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO concordat_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT ON TABLES TO concordat_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO concordat_app;
