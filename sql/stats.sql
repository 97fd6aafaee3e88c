-- pg_stat_statements counts statement executions: the contract allows one per request.
-- Needs shared_preload_libraries = 'pg_stat_statements' and a superuser.
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
