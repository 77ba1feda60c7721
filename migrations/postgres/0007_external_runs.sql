-- External runs: a run whose rows stay in a dataset outside Strata (a local Parquet dataset now;
-- a Spark table later). `source` is the JSON of the app's `RunSource` (`{"parquet": "/data/p/"}`);
-- NULL for an uploaded run, whose rows are in run_data.
ALTER TABLE runs ADD COLUMN source TEXT;
