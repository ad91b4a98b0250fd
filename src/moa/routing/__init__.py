"""Getting one call answered: retries, breakers, failover, concurrency caps."""
