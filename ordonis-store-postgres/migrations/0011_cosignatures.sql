-- Witness cosignatures (c2sp.org/tlog-cosignature) of a workspace's VERA checkpoints: one line
-- per witness key (`name+keyid`) and checkpoint size, the first one given kept.
CREATE TABLE ordonis.vera_cosignatures (
    workspace_id text    NOT NULL,
    size         bigint  NOT NULL,
    witness      text    NOT NULL,
    line         text    NOT NULL,
    PRIMARY KEY (workspace_id, size, witness)
);

-- The tile server's cache of full-subtree roots (c2sp.org/tlog-tiles): hash `idx` of `level`
-- (>= 1) is the root of leaves idx*256^level .. (idx+1)*256^level. Derived from the immutable
-- leaves, so never stale; it makes an upper-level tile one range read instead of a walk of
-- the log.
CREATE TABLE ordonis.vera_tile_hashes (
    workspace_id text    NOT NULL,
    level        bigint  NOT NULL,
    idx          bigint  NOT NULL,
    hash         bytea   NOT NULL,
    PRIMARY KEY (workspace_id, level, idx)
);
