-- The audit trail of PII recovery (model PiiAuditLog in schema.prisma). IDs are taken
-- from the sequence by the writer before hashing, so the ID is part of the hash.

CREATE SEQUENCE "pii_audit_log_id_seq";

CREATE TABLE "pii_audit_log" (
    "id" BIGINT NOT NULL,
    "at" TIMESTAMPTZ(3) NOT NULL,
    "request_id" VARCHAR(64) NOT NULL,
    "event" VARCHAR(48) NOT NULL,
    "actor" VARCHAR(64),
    "details" JSONB NOT NULL,
    "prev_hash" VARCHAR(64) NOT NULL,
    "hash" VARCHAR(64) NOT NULL,

    CONSTRAINT "pii_audit_log_pkey" PRIMARY KEY ("id")
);

CREATE UNIQUE INDEX "pii_audit_log_hash_key" ON "pii_audit_log"("hash");
CREATE INDEX "pii_audit_log_request_id_idx" ON "pii_audit_log"("request_id");

-- Append-only for every role, the table owner included: an entry, once written, can
-- neither change nor go. (Disabling these triggers takes ALTER TABLE rights: in
-- production the application's role must not own this table.)
CREATE FUNCTION "pii_audit_log_append_only"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'pii_audit_log is append-only: % is not allowed', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER "pii_audit_log_no_update_delete" BEFORE UPDATE OR DELETE ON "pii_audit_log"
    FOR EACH ROW EXECUTE FUNCTION "pii_audit_log_append_only"();
CREATE TRIGGER "pii_audit_log_no_truncate" BEFORE TRUNCATE ON "pii_audit_log"
    FOR EACH STATEMENT EXECUTE FUNCTION "pii_audit_log_append_only"();

REVOKE UPDATE, DELETE, TRUNCATE ON "pii_audit_log" FROM PUBLIC;
