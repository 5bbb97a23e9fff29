-- Notes shown by the quickstart frontend.
CREATE TABLE notes (
    id serial PRIMARY KEY,
    text text NOT NULL CHECK (length(text) > 0),
    created_at timestamptz NOT NULL DEFAULT now()
);
