-- The sealed secret of an external run's source (a Spark Connect token), kept apart from `source`
-- (which is listed to users): ChaCha20-Poly1305 under the server key (server/src/secrets.rs), read
-- only when a query needs it. NULL when the source needs none.
ALTER TABLE runs ADD COLUMN source_secret TEXT;
