-- Live workers per stream: each worker claims about partitions / live workers.
CREATE TABLE workers (
    stream TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    last_seen TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (stream, worker_id)
);
