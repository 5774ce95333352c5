package store

import (
	"context"
	"encoding/hex"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

const sdkKeyColumns = `id, environment_id, kind, name, key_prefix, coalesce(public_key, ''), expires_at, revoked_at,
	coalesce(rotated_from::text, ''), created_at, key_hash`

func scanSDKKey(row pgx.Row) (domain.SDKKey, error) {
	var k domain.SDKKey
	var kind string
	var hash []byte
	err := row.Scan(&k.ID, &k.EnvironmentID, &kind, &k.Name, &k.Prefix, &k.Key, &k.ExpiresAt, &k.RevokedAt, &k.RotatedFrom, &k.CreatedAt, &hash)
	k.Kind = ruleset.KeyKind(kind)
	k.HashHex = hex.EncodeToString(hash)
	return k, err
}

// InsertSDKKey stores an SDK key by hash (client keys also in clear: they are public).
func (t *Tx) InsertSDKKey(ctx context.Context, k domain.SDKKey, hash []byte, publicKey string) (domain.SDKKey, error) {
	return scanSDKKey(t.q().QueryRow(ctx, `INSERT INTO sdk_keys (environment_id, kind, name, key_hash, key_prefix, public_key, rotated_from)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING `+sdkKeyColumns,
		k.EnvironmentID, string(k.Kind), k.Name, hash, k.Prefix, nullable(publicKey), nullable(k.RotatedFrom)))
}

// ListSDKKeys lists an environment's keys, newest first; revoked keys only if asked.
func (t *Tx) ListSDKKeys(ctx context.Context, envID string, includeRevoked bool) ([]domain.SDKKey, error) {
	rows, err := t.q().Query(ctx, listSDKKeysSQL, envID, includeRevoked)
	if err != nil {
		return nil, err
	}
	return collectSDKKeys(rows)
}

const listSDKKeysSQL = `SELECT ` + sdkKeyColumns + ` FROM sdk_keys WHERE environment_id = $1
	AND ($2 OR (revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now()))) ORDER BY created_at DESC, id`

func collectSDKKeys(rows pgx.Rows) ([]domain.SDKKey, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.SDKKey, error) { return scanSDKKey(r) })
}

// SDKKey returns one key of the environment; forUpdate locks it.
func (t *Tx) SDKKey(ctx context.Context, envID, id string, forUpdate bool) (domain.SDKKey, error) {
	q := `SELECT ` + sdkKeyColumns + ` FROM sdk_keys WHERE environment_id = $1 AND id = $2`
	if forUpdate {
		q += ` FOR UPDATE`
	}
	k, err := scanSDKKey(t.q().QueryRow(ctx, q, envID, id))
	return k, notFound(err, "SDK key not found")
}

// ExpireSDKKey sets a key's expiry (the rotation grace period).
func (t *Tx) ExpireSDKKey(ctx context.Context, id string, at time.Time) error {
	_, err := t.q().Exec(ctx, `UPDATE sdk_keys SET expires_at = $2 WHERE id = $1 AND (expires_at IS NULL OR expires_at > $2)`, id, at)
	return err
}

// RevokeSDKKey revokes a key now.
func (t *Tx) RevokeSDKKey(ctx context.Context, id string) error {
	_, err := t.q().Exec(ctx, `UPDATE sdk_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1`, id)
	return err
}
