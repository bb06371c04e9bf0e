-- Initial schema. Written to match prisma/schema.prisma the way `prisma migrate dev` would
-- (same names for tables, columns, constraints and indexes); the schema-drift test
-- checks that it still does.

CREATE TABLE "user_logins" (
    "id" BIGSERIAL NOT NULL,
    "message_id" VARCHAR(128) NOT NULL,
    "user_id" VARCHAR(128) NOT NULL,
    "device_type" VARCHAR(32) NOT NULL,
    "masked_ip" VARCHAR(64) NOT NULL,
    "masked_device_id" VARCHAR(64) NOT NULL,
    "ip_ciphertext" BYTEA NOT NULL,
    "device_id_ciphertext" BYTEA NOT NULL,
    "pii_key_id" VARCHAR(64) NOT NULL,
    "locale" VARCHAR(35),
    "app_version" VARCHAR(32) NOT NULL,
    "app_version_major" INTEGER NOT NULL,
    "app_version_minor" INTEGER NOT NULL,
    "app_version_patch" INTEGER NOT NULL,
    "login_fingerprint" VARCHAR(64) NOT NULL,
    "create_date" TIMESTAMPTZ(3) NOT NULL,
    "ingested_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "user_logins_pkey" PRIMARY KEY ("id")
);

CREATE TABLE "quarantine" (
    "id" BIGSERIAL NOT NULL,
    "message_id" VARCHAR(128) NOT NULL,
    "reasons" TEXT[],
    "body_ciphertext" BYTEA NOT NULL,
    "pii_key_id" VARCHAR(64) NOT NULL,
    "body_bytes" INTEGER NOT NULL,
    "body_truncated" BOOLEAN NOT NULL,
    "sent_at" TIMESTAMPTZ(3),
    "quarantined_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "quarantine_pkey" PRIMARY KEY ("id")
);

CREATE TABLE "ingested_messages" (
    "message_id" VARCHAR(128) NOT NULL,
    "outcome" VARCHAR(16) NOT NULL,
    "ingested_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ingested_messages_pkey" PRIMARY KEY ("message_id")
);

CREATE UNIQUE INDEX "user_logins_message_id_key" ON "user_logins"("message_id");
CREATE INDEX "user_logins_masked_ip_idx" ON "user_logins"("masked_ip");
CREATE INDEX "user_logins_masked_device_id_idx" ON "user_logins"("masked_device_id");
CREATE INDEX "user_logins_login_fingerprint_idx" ON "user_logins"("login_fingerprint");
CREATE INDEX "user_logins_app_version_idx" ON "user_logins"("app_version_major", "app_version_minor", "app_version_patch");
CREATE UNIQUE INDEX "quarantine_message_id_key" ON "quarantine"("message_id");
