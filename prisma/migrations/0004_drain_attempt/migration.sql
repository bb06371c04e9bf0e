-- Which drain attempt claimed each message (`<workflow run>/<activity>/<attempt>`): when a
-- worker dies mid-drain, the retry counts what the dead attempt committed from here, so
-- the ingest's summary equals the database's counts. No index: it is read only on such a
-- retry (a scan of the ledger), and an index would cost every insert.
ALTER TABLE "ingested_messages" ADD COLUMN "drain_attempt" VARCHAR(200);
