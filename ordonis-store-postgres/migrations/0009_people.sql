-- The people directory: a workspace's principals (host user and agent ids), their e-mails and
-- the provider accounts mapped to them by hand, and the provider accounts adapters have seen.
CREATE TABLE ordonis.principals (
    workspace_id text NOT NULL,
    principal    text NOT NULL,
    -- 'human' or 'agent'.
    kind         text NOT NULL CHECK (kind IN ('human', 'agent')),
    display_name text NOT NULL,
    -- The whole principal (name, kind, e-mails, accounts) as serde JSON, read in one
    -- statement; the two tables below index it and are rewritten with it.
    doc          jsonb NOT NULL,
    PRIMARY KEY (workspace_id, principal)
);

-- E-mails, lowercase. One e-mail may be listed by several principals (then it matches none).
CREATE TABLE ordonis.principal_emails (
    workspace_id text NOT NULL,
    principal    text NOT NULL,
    email        text NOT NULL,
    PRIMARY KEY (workspace_id, principal, email)
);
CREATE INDEX principal_emails_email_idx
    ON ordonis.principal_emails (workspace_id, email);

-- Accounts mapped by hand. The primary key is the store's guard that one account maps to
-- one principal.
CREATE TABLE ordonis.principal_accounts (
    workspace_id   text NOT NULL,
    integration_id uuid NOT NULL,
    account_id     text NOT NULL,
    principal      text NOT NULL,
    PRIMARY KEY (workspace_id, integration_id, account_id)
);
CREATE INDEX principal_accounts_principal_idx
    ON ordonis.principal_accounts (workspace_id, principal);

-- Accounts seen by the adapters, with what the provider last told of them.
CREATE TABLE ordonis.seen_accounts (
    workspace_id   text        NOT NULL,
    integration_id uuid        NOT NULL,
    account_id     text        NOT NULL,
    display_name   text,
    email          text,
    kind           text        NOT NULL CHECK (kind IN ('human', 'agent')),
    seen_at        timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, integration_id, account_id)
);
