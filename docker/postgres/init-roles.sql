-- LOCAL DEVELOPMENT ONLY: throwaway passwords. Runs once, when the postgres container
-- initialises its data directory. The two roles of the project (see migration 0003):
-- the owner runs the migrations and owns the tables; the application role reads and
-- writes the data tables and appends to the audit trail only through pii_audit_append.
CREATE ROLE login_ingest_owner LOGIN PASSWORD 'owner';
CREATE ROLE login_ingest_app LOGIN PASSWORD 'app';
CREATE DATABASE logins OWNER login_ingest_owner;
