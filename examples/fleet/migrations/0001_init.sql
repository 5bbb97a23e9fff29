CREATE TABLE visits (
    id bigserial PRIMARY KEY,
    version text NOT NULL,
    seen_at timestamptz NOT NULL DEFAULT now()
);
