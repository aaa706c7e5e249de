-- Joins of an import in progress (`POST …/import/joins`): staged in batches as the file streams
-- in, then moved into `joins` in one transaction, so a file of any size is read with flat
-- memory and an import is all or nothing. Rows of an import that never finished are removed an
-- hour later.
CREATE TABLE join_imports (
    id BIGSERIAL PRIMARY KEY,
    import_id BIGINT NOT NULL,
    staged_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    member_id BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    decided_at TIMESTAMPTZ NOT NULL,
    source TEXT NOT NULL,
    invite_code TEXT,
    inviter_id BIGINT,
    -- Space-separated codes.
    candidates TEXT NOT NULL,
    unknown_reason TEXT,
    fake INTEGER NOT NULL,
    left_at TIMESTAMPTZ,
    cleared BOOLEAN NOT NULL
);

CREATE INDEX join_imports_by_import ON join_imports (import_id);
CREATE INDEX join_imports_by_age ON join_imports (staged_at);
