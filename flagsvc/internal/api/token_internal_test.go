package api_test

import (
	"testing"

	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
	"github.com/switchyard-io/switchyard/flagsvc/internal/store"
	"github.com/switchyard-io/switchyard/flagsvc/internal/tokens"
)

// personalToken issues a user's first personal token directly in the store, the way a
// future sign-in flow will (the API only lets users create their own).
func personalToken(t testing.TB, s *stack, userID string) string {
	t.Helper()
	var orgID string
	if err := s.app.Store.Pool.QueryRow(t.Context(), `SELECT org_id FROM memberships WHERE user_id = $1`, userID).Scan(&orgID); err != nil {
		t.Fatal(err)
	}
	id, secret := tokens.RandomString(12), tokens.RandomString(40)
	err := s.app.Store.InTx(t.Context(), func(tx *store.Tx) error {
		_, err := tx.InsertAPIToken(t.Context(), domain.APIToken{OrgID: orgID, TokenID: id, Kind: "personal", Name: "sign-in", UserID: userID},
			tokens.Hash(secret), userID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return tokens.Format("personal", id, secret)
}
