-- The people directory: a workspace's principals (host user and agent ids), their e-mails and
-- the provider accounts mapped to them by hand, and the provider accounts adapters have seen.
CREATE TABLE ordonis_principals (
    workspace_id TEXT NOT NULL,
    principal    TEXT NOT NULL,
    -- 'human' or 'agent'.
    kind         TEXT NOT NULL CHECK (kind IN ('human', 'agent')),
    display_name TEXT NOT NULL,
    -- The whole principal (name, kind, e-mails, accounts) as serde JSON, read in one
    -- statement; the two tables below index it and are rewritten with it.
    doc          TEXT NOT NULL,
    PRIMARY KEY (workspace_id, principal)
);

-- E-mails, lowercase. One e-mail may be listed by several principals (then it matches none).
CREATE TABLE ordonis_principal_emails (
    workspace_id TEXT NOT NULL,
    principal    TEXT NOT NULL,
    email        TEXT NOT NULL,
    PRIMARY KEY (workspace_id, principal, email)
);
CREATE INDEX ordonis_principal_emails_email_idx
    ON ordonis_principal_emails (workspace_id, email);

-- Accounts mapped by hand. The primary key is the store's guard that one account maps to
-- one principal.
CREATE TABLE ordonis_principal_accounts (
    workspace_id   TEXT NOT NULL,
    integration_id BLOB NOT NULL,
    account_id     TEXT NOT NULL,
    principal      TEXT NOT NULL,
    PRIMARY KEY (workspace_id, integration_id, account_id)
);
CREATE INDEX ordonis_principal_accounts_principal_idx
    ON ordonis_principal_accounts (workspace_id, principal);

-- Accounts seen by the adapters, with what the provider last told of them.
CREATE TABLE ordonis_seen_accounts (
    workspace_id   TEXT    NOT NULL,
    integration_id BLOB    NOT NULL,
    account_id     TEXT    NOT NULL,
    display_name   TEXT,
    email          TEXT,
    kind           TEXT    NOT NULL CHECK (kind IN ('human', 'agent')),
    seen_at        INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, integration_id, account_id)
);
