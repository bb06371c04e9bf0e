-- Key rotations in the audit trail are the owner's to record. `keys rotate` (run by whoever
-- holds the key file and the owner role, DATABASE_OWNER_URL) appends a `keys_rotated` entry
-- naming the new active key, and the re-encryption activity moves data only towards the key
-- the newest such entry names (activities/keys.ts). Until now the application's role could
-- append any event through pii_audit_append, so:
--  * a trigger refuses a `keys_rotated` entry unless the session's login role can act as
--    the trail's owner (the application's role cannot: migration 0003 checks that). It holds
--    whatever inserts the entry, a pii_audit_append call already waiting for the chain's
--    lock included;
--  * pii_key_rotations_trusted_after() returns the ID of the last entry written before the
--    trigger existed: a `keys_rotated` entry up to it may be the application's and counts
--    for nothing, so an upgraded deployment runs `keys rotate` once before it re-encrypts.

-- The chain's lock (as pii_audit_append takes it): every append under way commits first, and
-- every later one inserts after this transaction, when the trigger is there.
SELECT pg_advisory_xact_lock(7233002);

CREATE FUNCTION "pii_audit_owner_only_events"() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
  IF NEW.event = 'keys_rotated' AND NOT pg_has_role(session_user, (SELECT c.relowner FROM pg_class c WHERE c.oid = TG_RELID), 'USAGE') THEN
    RAISE EXCEPTION 'pii_audit_append: % entries are written by the owner role only: run keys rotate with DATABASE_OWNER_URL set to the owner', NEW.event
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END
$$;

CREATE TRIGGER "pii_audit_log_owner_only_events" BEFORE INSERT ON "pii_audit_log"
    FOR EACH ROW EXECUTE FUNCTION "pii_audit_owner_only_events"();

DO $$
DECLARE
  v_last BIGINT;
BEGIN
  SELECT coalesce(max(id), 0) INTO v_last FROM public.pii_audit_log;
  EXECUTE format('CREATE FUNCTION "pii_key_rotations_trusted_after"() RETURNS BIGINT LANGUAGE sql IMMUTABLE AS %L', format('SELECT %s::bigint', v_last));
END
$$;

REVOKE ALL ON FUNCTION "pii_audit_owner_only_events"() FROM PUBLIC;
REVOKE ALL ON FUNCTION "pii_key_rotations_trusted_after"() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION "pii_key_rotations_trusted_after"() TO login_ingest_app;
