INSERT INTO notes (text) VALUES
    ('Stagecraft started PostgreSQL with docker compose up --wait'),
    ('and applied these migrations before the dev servers started');
