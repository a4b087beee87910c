-- Semantic drift: one quantised embedding per finished run of an agent watched with
-- DriftWatch(semantic=...), with the start of the text it was made from (an alert's evidence).
-- The vector is one signed byte per dimension; multiplied by scale it is the unit vector.
CREATE TABLE drift_embeddings (
    agent   TEXT NOT NULL,
    run_id  TEXT NOT NULL,
    at      {REAL} NOT NULL,
    model   TEXT NOT NULL,
    scale   {REAL} NOT NULL,
    vector  {BLOB} NOT NULL,
    excerpt TEXT NOT NULL,
    PRIMARY KEY (agent, run_id)
);
CREATE INDEX drift_embeddings_by_model ON drift_embeddings (agent, model, at);
