-- 1,000,000 deterministic rows: a = 1..1000000, b = 20 ASCII letters from a seeded RNG.
-- The same seed gives the same rows on every PostgreSQL 15+ (whose random() is pg_prng), so a
-- test can check a body against a known row. Loading is one INSERT; it is skipped entirely (the
-- guard is evaluated once, before any row is made) when the table already holds rows.

-- One backend must make every row in order, or the sequence of random() calls would change.
SET max_parallel_workers_per_gather = 0;
SELECT setseed(0.20200611);

INSERT INTO test (a, b)
SELECT i,
       -- "20 + 0 * i" ties the subquery to the row, so it runs once per row, not once in all.
       (SELECT string_agg(substr('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz',
                                 1 + floor(random() * 52)::int, 1), '')
          FROM generate_series(1, 20 + 0 * i))
  FROM generate_series(1, 1000000) AS i
 WHERE NOT EXISTS (SELECT 1 FROM test);

ANALYZE test;
