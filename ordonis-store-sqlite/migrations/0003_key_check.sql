-- The key-check record: a fixed text sealed with the host's secret key when the store is
-- first used; a process started with another key is refused at start-up.
CREATE TABLE ordonis_key_check (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    sealed BLOB NOT NULL
);
