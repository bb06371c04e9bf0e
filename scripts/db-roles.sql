-- The database roles of login-ingest, for your own PostgreSQL (the embedded default and
-- docker compose make them themselves). Run once, as an administrator (a role with
-- CREATEROLE), before the first `npm run db:migrate`:
--
--   psql "$ADMIN_URL" -v owner_password="..." -v app_password="..." \
--        -v recovery_password="..." -v operator_password="..." -f scripts/db-roles.sql
--
-- Then create the database owned by the owner (CREATE DATABASE logins OWNER login_ingest_owner;)
-- and run the migrations with DATABASE_OWNER_URL set to the owner. Each process gets a
-- login of its own, and no login holds two writer roles (migration 0006 refuses it):
--
--   login_ingest_owner     DATABASE_OWNER_URL       migrations, `keys rotate`; owns every table
--   login_ingest_app       DATABASE_URL             the ingest worker
--   login_ingest_recovery  RECOVERY_DATABASE_URL    the recovery worker (the only one that decrypts)
--   login_ingest_operator  OPERATOR_DATABASE_URL    the operators' CLIs: requests, approve, deny, audit verify
--
-- The roles here log in themselves. To keep your own login names instead, create the four
-- as NOLOGIN and GRANT each to one login of yours.
\set ON_ERROR_STOP on
CREATE ROLE login_ingest_owner LOGIN NOSUPERUSER NOCREATEROLE PASSWORD :'owner_password';
CREATE ROLE login_ingest_app LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB PASSWORD :'app_password';
CREATE ROLE login_ingest_recovery LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB PASSWORD :'recovery_password';
CREATE ROLE login_ingest_operator LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB PASSWORD :'operator_password';
