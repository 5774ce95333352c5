-- +goose Up
-- The token a token was created with, so that revoking a token with cascade revokes every token
-- made with it, directly or through others (a leaked token must not live on in the tokens it
-- minted). Tokens created before this migration have none recorded: no cascade reaches them.
ALTER TABLE api_tokens ADD COLUMN created_by_token uuid REFERENCES api_tokens(id) ON DELETE SET NULL;
CREATE INDEX api_tokens_created_by_token ON api_tokens (created_by_token) WHERE created_by_token IS NOT NULL;

-- +goose Down
DROP INDEX api_tokens_created_by_token;
ALTER TABLE api_tokens DROP COLUMN created_by_token;
