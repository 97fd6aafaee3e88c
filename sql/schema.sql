-- The one table of the suite (Paterson 2020): a key and 20 letters.
CREATE TABLE IF NOT EXISTS test (a integer PRIMARY KEY, b text NOT NULL);
