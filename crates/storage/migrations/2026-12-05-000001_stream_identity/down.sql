ALTER TABLE partition_progress DROP COLUMN stream_created_at;
