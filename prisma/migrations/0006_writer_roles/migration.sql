-- Each writer of the audit trail appends only its own entries (issue 18). Three roles the
-- owner cannot be used by, one per writer, each a group role that a login role is granted:
--
--   login_ingest_app       the ingest worker: the data tables, reads the trail (the recorded
--                          key rotations), appends only `reencrypt_skipped`
--   login_ingest_recovery  the recovery worker: reads the records a request names and the
--                          trail, appends the recovery's own entries (received, authorised,
--                          judged, granted, read, completed ...)
--   login_ingest_operator  the operators' CLIs: read the trail and who owns a record (never a
--                          ciphertext), append only `decision_signed`, an approver's signed
--                          decision, which the recovery side then verifies itself
--
-- The owner writes anything (it owns the table; `keys_rotated` is its alone, migration 0005).
-- A login that holds two writer roles is refused for every event: it would let one
-- credential speak for two writers. Roles belong to the cluster: the embedded default
-- creates them; elsewhere an administrator runs scripts/db-roles.sql once (README).

DO $$
DECLARE
  v_role TEXT;
BEGIN
  FOREACH v_role IN ARRAY ARRAY['login_ingest_app', 'login_ingest_recovery', 'login_ingest_operator'] LOOP
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = v_role) THEN
      RAISE EXCEPTION 'role % does not exist: as an administrator run scripts/db-roles.sql (README, "Your own PostgreSQL"), then run the migrations again as the owner role (DATABASE_OWNER_URL)', v_role;
    END IF;
    IF pg_has_role(v_role, current_user, 'USAGE') THEN
      RAISE EXCEPTION 'migrations run as the owner role, and % is usable by the writer role %: set DATABASE_OWNER_URL to a role no writer can use', current_user, v_role;
    END IF;
  END LOOP;
END
$$;

-- The chain's lock (as pii_audit_append takes it): appends under way commit first, later ones see the new rule.
SELECT pg_advisory_xact_lock(7233002);

-- The recovery worker: finds and decrypts the records a request names; nothing else of the data.
GRANT USAGE ON SCHEMA public TO login_ingest_recovery;
GRANT SELECT ON "user_logins", "quarantine", "pii_audit_log", "schema_migrations" TO login_ingest_recovery;
GRANT EXECUTE ON FUNCTION "pii_key_rotations_trusted_after"() TO login_ingest_recovery;

-- The operators' CLIs: the trail (audit verify, requests, approve, deny), and of the data only
-- what shows an approver whose records a request names: IDs, owners and masks, no ciphertext.
GRANT USAGE ON SCHEMA public TO login_ingest_operator;
GRANT SELECT ON "pii_audit_log", "schema_migrations" TO login_ingest_operator;
GRANT SELECT ("id", "message_id", "user_id", "masked_ip", "masked_device_id") ON "user_logins" TO login_ingest_operator;
GRANT SELECT ("id", "message_id") ON "quarantine" TO login_ingest_operator;

GRANT EXECUTE ON FUNCTION "pii_audit_append"(TEXT, TEXT, TEXT, JSONB) TO login_ingest_recovery, login_ingest_operator;

-- Which writer may append which event. The trigger replaces migration 0005's owner-only
-- check and keeps it: `keys_rotated` (and anything not listed) is the owner's alone.
CREATE FUNCTION "pii_audit_writer_of"(p_event TEXT) RETURNS TEXT LANGUAGE sql IMMUTABLE SET search_path = pg_catalog AS $$
  SELECT CASE
    WHEN p_event IN ('request_received', 'request_refused', 'authorised', 'approval_refused', 'approved', 'denied',
                     'expired', 'grant_consumed', 'record_read', 'completed', 'failed') THEN 'login_ingest_recovery'
    WHEN p_event = 'decision_signed' THEN 'login_ingest_operator'
    WHEN p_event = 'reencrypt_skipped' THEN 'login_ingest_app'
    ELSE NULL
  END
$$;

CREATE FUNCTION "pii_audit_check_writer"() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
DECLARE
  v_owner OID := (SELECT c.relowner FROM pg_class c WHERE c.oid = TG_RELID);
  v_writer TEXT := public.pii_audit_writer_of(NEW.event);
  v_held INT;
BEGIN
  IF pg_has_role(session_user, v_owner, 'USAGE') THEN
    RETURN NEW; -- the owner owns the table: no rule binds it that it could not lift
  END IF;
  SELECT count(*) INTO v_held FROM unnest(ARRAY['login_ingest_app', 'login_ingest_recovery', 'login_ingest_operator']) AS r(name)
   WHERE pg_has_role(session_user, r.name, 'MEMBER');
  IF v_held > 1 THEN
    RAISE EXCEPTION 'pii_audit_append: the login % holds more than one writer role (login_ingest_app, login_ingest_recovery, login_ingest_operator): give each process a login of its own', session_user
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF v_writer IS NULL THEN
    RAISE EXCEPTION 'pii_audit_append: % entries are written by the owner role only', NEW.event USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF NOT pg_has_role(session_user, v_writer, 'MEMBER') THEN
    RAISE EXCEPTION 'pii_audit_append: % entries are written by % only, and the login % is not it', NEW.event, v_writer, session_user
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END
$$;

DROP TRIGGER "pii_audit_log_owner_only_events" ON "pii_audit_log";
DROP FUNCTION "pii_audit_owner_only_events"();
CREATE TRIGGER "pii_audit_log_writer_events" BEFORE INSERT ON "pii_audit_log"
    FOR EACH ROW EXECUTE FUNCTION "pii_audit_check_writer"();

REVOKE ALL ON FUNCTION "pii_audit_check_writer"() FROM PUBLIC;
REVOKE ALL ON FUNCTION "pii_audit_writer_of"(TEXT) FROM PUBLIC;

-- Entries written before this migration may come from any writer (the application's role
-- could append every event but `keys_rotated`): the recovery trusts a request only when
-- its entries are newer than this.
DO $$
DECLARE
  v_last BIGINT;
BEGIN
  SELECT coalesce(max(id), 0) INTO v_last FROM public.pii_audit_log;
  EXECUTE format('CREATE FUNCTION "pii_audit_writers_trusted_after"() RETURNS BIGINT LANGUAGE sql IMMUTABLE AS %L', format('SELECT %s::bigint', v_last));
END
$$;
REVOKE ALL ON FUNCTION "pii_audit_writers_trusted_after"() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION "pii_audit_writers_trusted_after"() TO login_ingest_recovery, login_ingest_operator;
