-- Two database roles. The owner (the role that runs this migration, DATABASE_OWNER_URL)
-- owns every table and function. The application (login_ingest_app: the worker and the
-- CLI, DATABASE_URL) reads and writes the data tables, reads the audit trail, and appends
-- to it only through pii_audit_append, which runs with the owner's rights and chooses the
-- entry's id, time, prev_hash and hash itself. Not owning the table, the application can
-- neither alter it (DISABLE TRIGGER, DROP INDEX) nor write it directly.
--
-- login_ingest_app must exist before this runs (roles belong to the cluster, not to a
-- database): the embedded default creates it; elsewhere an administrator runs
--   CREATE ROLE login_ingest_app NOLOGIN;  GRANT login_ingest_app TO <the app's login role>;

DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'login_ingest_app') THEN
    RAISE EXCEPTION 'role login_ingest_app does not exist: as an administrator run CREATE ROLE login_ingest_app NOLOGIN; GRANT login_ingest_app TO <the application''s login role>; then run the migrations again as the owner role (DATABASE_OWNER_URL)';
  END IF;
  IF pg_has_role('login_ingest_app', current_user, 'USAGE') THEN
    RAISE EXCEPTION 'migrations run as the owner role, and % is (or is usable by) the application role login_ingest_app: set DATABASE_OWNER_URL to a role the application cannot use', current_user;
  END IF;
END
$$;

REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM login_ingest_app;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM login_ingest_app;

GRANT USAGE ON SCHEMA public TO login_ingest_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON "user_logins", "quarantine", "ingested_messages" TO login_ingest_app;
GRANT USAGE, SELECT ON SEQUENCE "user_logins_id_seq", "quarantine_id_seq" TO login_ingest_app;
GRANT SELECT ON "schema_migrations" TO login_ingest_app;
GRANT SELECT ON "pii_audit_log" TO login_ingest_app;

-- Tables later migrations add (as the owner) are the application's data tables too; a
-- migration that adds a protected table revokes what it must.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO login_ingest_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO login_ingest_app;

-- What an entry's hash covers: the previous hash, a newline, and this text, made by
-- PostgreSQL from the values as stored (so a value the database cannot store as given,
-- such as a lone surrogate, is hashed as it was stored). `audit verify` builds the same
-- text with the same expression, and anyone can check an entry with psql and sha256sum.
CREATE FUNCTION "pii_audit_content"(p_id BIGINT, p_at TIMESTAMPTZ, p_request_id TEXT, p_event TEXT, p_actor TEXT, p_details JSONB)
RETURNS TEXT LANGUAGE sql STABLE SET search_path = pg_catalog AS $$
  SELECT jsonb_build_array(p_id::text, to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), p_request_id, p_event, p_actor, p_details)::text
$$;

CREATE FUNCTION "pii_audit_append"(p_request_id TEXT, p_event TEXT, p_actor TEXT, p_details JSONB)
RETURNS TABLE (id BIGINT, at TIMESTAMPTZ, prev_hash TEXT, hash TEXT)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
  v_prev TEXT;
  v_id BIGINT;
  v_at TIMESTAMPTZ;
  v_hash TEXT;
BEGIN
  IF p_request_id IS NULL OR p_request_id !~ '^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|unknown)$' THEN
    RAISE EXCEPTION 'pii_audit_append: request_id must be a lower-case UUID or unknown' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF p_event IS NULL OR p_event !~ '^[a-z_]{1,48}$' THEN
    RAISE EXCEPTION 'pii_audit_append: event must be 1..48 of a-z and _' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF p_actor IS NOT NULL AND p_actor !~ '^[a-z0-9][a-z0-9._-]{0,63}$' THEN
    RAISE EXCEPTION 'pii_audit_append: actor must be an operator name or null' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF p_details IS NULL OR jsonb_typeof(p_details) <> 'object' THEN
    RAISE EXCEPTION 'pii_audit_append: details must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  -- One writer at a time, so the chain never forks; held until the caller's transaction ends.
  PERFORM pg_advisory_xact_lock(7233002);
  SELECT l.hash INTO v_prev FROM public.pii_audit_log l ORDER BY l.id DESC LIMIT 1;
  v_prev := coalesce(v_prev, repeat('0', 64));
  v_id := nextval('public.pii_audit_log_id_seq');
  v_at := date_trunc('milliseconds', clock_timestamp());
  v_hash := encode(sha256(convert_to(v_prev || E'\n' || public.pii_audit_content(v_id, v_at, p_request_id, p_event, p_actor, p_details), 'UTF8')), 'hex');
  INSERT INTO public.pii_audit_log (id, at, request_id, event, actor, details, prev_hash, hash)
  VALUES (v_id, v_at, p_request_id, p_event, p_actor, p_details, v_prev, v_hash);
  RETURN QUERY SELECT v_id, v_at, v_prev, v_hash;
END
$$;

REVOKE ALL ON FUNCTION "pii_audit_append"(TEXT, TEXT, TEXT, JSONB) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION "pii_audit_append"(TEXT, TEXT, TEXT, JSONB) TO login_ingest_app;
REVOKE ALL ON SEQUENCE "pii_audit_log_id_seq" FROM PUBLIC, login_ingest_app;
