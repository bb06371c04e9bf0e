-- LOCAL DEVELOPMENT ONLY: throwaway passwords. Runs once, when the postgres container
-- initialises its data directory. The roles of the project (scripts/db-roles.sql says the
-- same for your own PostgreSQL; migrations 0003 and 0006): the owner runs the migrations
-- and owns the tables; the ingest worker, the recovery worker and the operators' CLIs each
-- have a role of their own and append to the audit trail only their own entries.
CREATE ROLE login_ingest_owner LOGIN PASSWORD 'owner';
CREATE ROLE login_ingest_app LOGIN PASSWORD 'app';
CREATE ROLE login_ingest_recovery LOGIN PASSWORD 'recovery';
CREATE ROLE login_ingest_operator LOGIN PASSWORD 'operator';
CREATE DATABASE logins OWNER login_ingest_owner;
