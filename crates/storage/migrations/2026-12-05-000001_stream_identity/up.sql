-- Which stream a partition's progress counts in: a stream made again under the same name (NATS
-- lost its store, the bus moved to a cluster) starts its sequences again at 1, and its creation
-- time tells it apart.
ALTER TABLE partition_progress ADD COLUMN stream_created_at TIMESTAMPTZ;
